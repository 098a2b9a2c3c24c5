"""LightGBM threads shared between the chunks batch scores at once: the last chunk in flight predicts
with every thread, and the scores do not depend on how the threads were shared."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch import BatchOptions, score_manifest
from scoring import model as scoring_model
from scoring.model import ThreadShare
from scoring.registry import LoadedModel


def test_a_share_is_the_total_over_the_chunks_being_scored() -> None:
    share = ThreadShare(2)
    assert share.threads() == 2
    with share.scoring():
        assert share.threads() == 2
        with share.scoring():
            assert share.threads() == 1
        assert share.threads() == 2
    assert share.busy == 0
    assert ThreadShare(0).threads() == 1


def _recording(model) -> list[int]:
    """Record the threads of every LightGBM predict call (the real booster still predicts)."""
    used: list[int] = []
    real = model.booster.predict
    lock = threading.Lock()

    def predict(X, *args, **kw):
        with lock:
            used.append(int(kw.get("num_threads", 0)))
        return real(X, *args, **kw)

    model.booster.predict = predict
    return used


def test_predict_in_blocks_equals_one_call_and_asks_the_share(tiny_model, monkeypatch) -> None:
    model = tiny_model.model
    scored = model.score_batch(tiny_model.traffic[:300])
    whole = model.predict_raw(scored.X)
    monkeypatch.setattr(scoring_model, "PREDICT_BLOCK", 64)
    share = ThreadShare(2)
    model.__dict__["_thread_share"] = share
    try:
        used = _recording(model)
        with share.scoring(), share.scoring():
            busy_two = model.predict_raw(scored.X)
        n_busy = len(used)
        with share.scoring():
            alone = model.predict_raw(scored.X)
            model.predict_raw(scored.X[:10])  # smaller than a block: one call, still the share's threads
    finally:
        model.__dict__.pop("_thread_share", None)
        del model.booster.predict  # back to the class's method
    assert np.array_equal(busy_two, whole) and np.array_equal(alone, whole)
    assert used[:n_busy] == [1] * 5 and used[n_busy:] == [2] * 6  # 300 rows in blocks of 64, then 10 rows


def test_pipelined_batch_shares_the_threads_and_gives_the_same_scores(tiny_model, tmp_path, monkeypatch) -> None:
    model = tiny_model.model
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(tiny_model.traffic).to_parquet(manifest, index=False)
    loaded = LoadedModel(model, "tiny", "1", None, "models:/tiny/1", None)
    monkeypatch.setattr(scoring_model, "PREDICT_BLOCK", 50)
    used = _recording(model)
    threads = model.num_threads
    runs, seen = {}, {}
    try:
        for label, chunk_rows, pipelined in (("one chunk", 10_000, True), ("pipelined", 250, True),
                                             ("sequential", 250, False)):
            used.clear()
            out = tmp_path / label / "scores.parquet"
            opts = BatchOptions(chunk_rows=chunk_rows, reasons_for="none", num_threads=2, pipelined=pipelined)
            score_manifest(manifest, out, "models:/tiny/1", opts, load_model=lambda uri: loaded)
            runs[label] = pq.read_table(out).select(["declaration_id", "risk_score", "rank", "lane"])
            seen[label] = set(used)
    finally:
        del model.booster.predict
        model.num_threads = threads  # the session's tiny model, as other tests expect it
    assert runs["pipelined"].equals(runs["sequential"]) and runs["one chunk"].equals(runs["sequential"])
    # a chunk alone in flight predicts with both threads (it took one before the threads were shared)
    assert seen["one chunk"] == {2}
    assert seen["pipelined"] <= {1, 2}
    assert "_thread_share" not in model.__dict__


@pytest.mark.parametrize("busy", [0, 1, 2, 3])
def test_threads_never_below_one(busy: int) -> None:
    share = ThreadShare(2)
    share.busy = busy
    assert share.threads() >= 1


def test_reused_matrices_score_as_fresh_ones_and_stay_per_thread(tiny_model) -> None:
    """A batch run builds each thread's feature matrices in one buffer of its own (no fresh 48 MB
    mapping per chunk): chunks of any size score exactly as with fresh matrices, the buffer is reused
    from one chunk to the next, and two threads never share one."""
    model = tiny_model.model
    frame = pd.DataFrame.from_records(tiny_model.traffic)
    frame["declaration_date"] = pd.to_datetime(frame["declaration_date"])
    sizes = [len(frame), 17, len(frame) // 2, 1]
    fresh = [model.score_batch(frame.iloc[:n]).risk for n in sizes]
    assert "_matrix_buffers" not in model.__dict__
    with model.reusing_matrices():
        buffers = []
        for n, want in zip(sizes, fresh, strict=True):
            got = model.score_batch(frame.iloc[:n])
            np.testing.assert_array_equal(got.risk, want)
            assert np.shares_memory(got.X, model.__dict__["_matrix_buffers"].buf)
            buffers.append(model.__dict__["_matrix_buffers"].buf)
        assert all(b is buffers[0] for b in buffers)  # the first (largest) chunk's buffer serves the others
        seen: list[np.ndarray] = []
        t = threading.Thread(target=lambda: seen.append(model.score_batch(frame.iloc[:5]).X))
        t.start()
        t.join()
        assert not np.shares_memory(seen[0], buffers[0])
        with model.reusing_matrices():  # nested (a pipelined run's chunk loop): the same buffers
            assert model.__dict__["_matrix_buffers"].buf is buffers[0]
        assert "_matrix_buffers" in model.__dict__
    assert "_matrix_buffers" not in model.__dict__
    import pickle

    with model.reusing_matrices():
        assert "_matrix_buffers" not in pickle.loads(pickle.dumps(model)).__dict__


def test_row_blocks_hold_the_matrix_and_predict_without_copies(tiny_model, monkeypatch) -> None:
    """With shared threads and reused buffers (a pipelined batch) the matrix is built as row blocks,
    each column-major and contiguous (LightGBM reads them without a copy): the same values, the same
    scores and reasons as one matrix, and rows read back as from the whole matrix."""
    model = tiny_model.model
    frame = pd.DataFrame.from_records(tiny_model.traffic[:300])
    frame["declaration_date"] = pd.to_datetime(frame["declaration_date"])
    plain = model.score_batch(frame)
    monkeypatch.setattr(scoring_model, "PREDICT_BLOCK", 64)
    share = ThreadShare(2)
    model.__dict__["_thread_share"] = share
    used = _recording(model)
    copies: list[bool] = []
    real = model.booster.predict
    model.booster.predict = lambda X, *a, **kw: copies.append(X.flags.f_contiguous) or real(X, *a, **kw)
    try:
        with model.reusing_matrices(), share.scoring():
            blocked = model.score_batch(frame)
            assert isinstance(blocked.X, scoring_model.RowBlocks)
            assert np.shares_memory(blocked.X.blocks[0], model.__dict__["_matrix_buffers"].buf)
            rows = np.array([299, 0, 64, 63, 128, 5, 5])
            np.testing.assert_array_equal(blocked.X[rows], np.asarray(plain.X)[rows])
            np.testing.assert_array_equal(np.asarray(blocked.X), plain.X)
            assert [len(b) for b in blocked.X.blocks] == [64, 64, 64, 64, 44]
            assert all(b.flags.f_contiguous for b in blocked.X.blocks)
            reasons_blocked = model.explain(blocked, rows[:3])
    finally:
        model.__dict__.pop("_thread_share", None)
        del model.booster.predict
    np.testing.assert_array_equal(blocked.risk, plain.risk)
    assert copies == [True] * 5 and used == [2] * 5  # one call per block, each contiguous
    assert [[r.as_dict() for r in x] for x in reasons_blocked] == \
        [[r.as_dict() for r in x] for x in model.explain(plain, rows[:3])]
