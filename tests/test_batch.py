"""Batch scoring: chunked = unchunked, resume after kill -9, rejects, corrupt input, metadata, API parity,
a full disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from batch import BatchOptions, read_metadata, score_manifest
from batch._output import OutputPaths
from tests.conftest import KR_MAPPING, REPO

N_ROWS = 4_000
CAPACITY = "7%"


@pytest.fixture(scope="module")
def manifest(trained_model, tmp_path_factory) -> dict[str, Path]:
    """A slice of the generated declarations as Parquet and as CSV (same rows)."""
    out = tmp_path_factory.mktemp("manifest")
    frame = pd.read_parquet(trained_model.data["declarations"])
    frame = frame.sort_values("declaration_id", kind="stable").iloc[-N_ROWS:].reset_index(drop=True)
    pq_path = out / "declarations.parquet"
    frame.to_parquet(pq_path, index=False, row_group_size=1_500)
    csv_path = out / "declarations.csv"
    frame.to_csv(csv_path, index=False, date_format="%Y-%m-%d")
    return {"parquet": pq_path, "csv": csv_path, "frame": frame}  # type: ignore[dict-item]


def _run(manifest_path, out: Path, model_uri: str, **kw) -> object:
    opts = {"capacity": CAPACITY, "random_share": 0.3, "seed": 3, **kw}
    mapping = opts.pop("mapping", None)
    return score_manifest(manifest_path, out, model_uri, BatchOptions(**opts), mapping=mapping)


def _table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _same_output(a: Path, b: Path) -> None:
    assert Path(a).read_bytes() == Path(b).read_bytes()
    pa_, pb_ = OutputPaths(Path(a)), OutputPaths(Path(b))
    assert pa_.rejects.read_bytes() == pb_.rejects.read_bytes()


@pytest.fixture(scope="module")
def reference(manifest, trained_model, tmp_path_factory) -> Path:
    """An uninterrupted run with one chunk holding the whole manifest."""
    out = tmp_path_factory.mktemp("reference") / "scores.parquet"
    _run(manifest["parquet"], out, trained_model.uri, chunk_rows=N_ROWS * 2)
    return out


@pytest.mark.integration
@pytest.mark.parametrize(("chunk_rows", "workers", "num_threads", "pipelined"),
                         [(1_000, 1, 1, True),  # one LightGBM thread: one chunk at a time
                          (777, 1, 2, True),  # two chunks in flight on threads (the default with 2 threads)
                          (1_500, 1, 2, False),  # --no-pipeline
                          (700, 2, 2, True)])  # --workers 2: processes
def test_chunked_equals_unchunked(manifest, trained_model, reference, tmp_path, chunk_rows, workers, num_threads,
                                  pipelined):
    out = tmp_path / "scores.parquet"
    summary = _run(manifest["parquet"], out, trained_model.uri, chunk_rows=chunk_rows, workers=workers,
                   num_threads=num_threads, pipelined=pipelined)
    assert summary.chunks_total == -(-N_ROWS // chunk_rows)
    got, ref = _table(out), _table(reference)
    pd.testing.assert_frame_equal(got, ref)
    assert got["rank"].sort_values().tolist() == list(range(1, N_ROWS + 1))
    assert (got["selection"] != "none").sum() == int(np.floor(N_ROWS * 0.07 + 1e-9))
    assert set(got["selection"]) == {"model", "random", "none"}
    assert not OutputPaths(out).checkpoint.exists()


@pytest.mark.integration
def test_output_columns_and_reasons_only_for_flagged(reference):
    df = _table(reference)
    assert list(df.columns) == ["declaration_id", "risk_score", "rank", "lane", "selection",
                                "selection_probability", "percentile", "manifest_percentile", "reasons",
                                "source_file", "source_row"]
    flagged = df["lane"] != "green"
    assert df.loc[flagged, "reasons"].notna().all()
    assert df.loc[~flagged, "reasons"].isna().all()
    first = json.loads(df.loc[flagged, "reasons"].iloc[0])
    assert {"family", "contribution", "text"} <= set(first[0])
    top = df.sort_values("rank").iloc[0]
    assert top["risk_score"] == df["risk_score"].max()
    meta = read_metadata(reference)
    assert "only for red and yellow" in meta["reasons"]


@pytest.mark.integration
def test_batch_scores_equal_the_api_routine(manifest, reference, trained_model):
    from features.contracts import DECLARATION, pydantic_model
    from scoring import LaneThresholds, score_table
    from scoring.registry import load_risk_model

    model = load_risk_model(trained_model.uri).model
    df = _table(reference).set_index("declaration_id")
    raw = manifest["frame"]
    sample = raw.iloc[np.random.default_rng(0).choice(len(raw), 150, replace=False)]
    body = pydantic_model(DECLARATION.name)
    records = []
    for rec in json.loads(sample.to_json(orient="records", date_format="iso")):
        rec["declaration_date"] = rec["declaration_date"][:10]
        records.append(body(**rec).model_dump())
    api = score_table(model, records, LaneThresholds(), reasons_for="flagged")
    for r in api.records():
        row = df.loc[r["declaration_id"]]
        assert row["risk_score"] == r["risk_score"]
        assert row["percentile"] == r["percentile"]
        assert row["lane"] == r["lane"]
        got = None if pd.isna(row["reasons"]) else json.loads(row["reasons"])
        assert got == r["reasons"]


@pytest.mark.integration
def test_csv_and_parquet_inputs_give_the_same_scores(manifest, trained_model, reference, tmp_path):
    out = tmp_path / "from_csv.parquet"
    _run(manifest["csv"], out, trained_model.uri, chunk_rows=1_300, write_csv=True)
    got = _table(out).drop(columns="source_file")
    pd.testing.assert_frame_equal(got, _table(reference).drop(columns="source_file"))
    as_csv = pd.read_csv(OutputPaths(out).csv, dtype={"declaration_id": str})
    assert len(as_csv) == N_ROWS
    np.testing.assert_allclose(as_csv["risk_score"], got["risk_score"])


@pytest.mark.integration
def test_metadata_pins_the_version_and_digests_the_input(manifest, trained_model, reference):
    meta = read_metadata(reference)
    assert meta["model"]["version"] == str(trained_model.version)
    assert meta["model"]["alias"] == "challenger"
    assert meta["model"]["uri"] == f"models:/{trained_model.name}/{trained_model.version}"
    digest = hashlib.sha256(Path(manifest["parquet"]).read_bytes()).hexdigest()
    assert meta["input"]["files"][0]["sha256"] == digest
    assert len(meta["input"]["sha256"]) == 64
    side = json.loads(OutputPaths(reference).meta.read_text())
    assert side["model"] == meta["model"]
    assert side["summary"]["rows_scored"] == N_ROWS
    assert sum(side["summary"]["lanes"].values()) == N_ROWS


# ---- rejects ---------------------------------------------------------------------------------

@pytest.mark.integration
def test_bad_rows_go_to_rejects_with_row_and_reason(manifest, trained_model, tmp_path):
    raw = pd.read_csv(manifest["csv"], dtype=str, keep_default_na=False).head(1_000)
    raw.loc[4, "hs_code"] = "12AB"  # row 5
    raw.loc[10, "declaration_date"] = "not a date"  # row 11
    raw.loc[700, "origin_country"] = "XX"  # row 701 (second chunk)
    raw.loc[900, "declaration_id"] = raw.loc[20, "declaration_id"]  # row 901: duplicate across chunks
    raw.loc[950, "declaration_id"] = ""  # row 951: missing key
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    out = tmp_path / "scores.parquet"
    summary = _run(path, out, trained_model.uri, chunk_rows=400)
    rej = pd.read_csv(OutputPaths(out).rejects, dtype=str, keep_default_na=False)
    assert sorted(rej["row"].astype(int).tolist()) == [5, 11, 701, 901, 951]
    by_row = rej.set_index(rej["row"].astype(int))
    assert by_row.loc[5, "column"] == "hs_code" and by_row.loc[5, "value"] == "12AB"
    assert "HS code" in by_row.loc[5, "reason"]
    assert by_row.loc[11, "column"] == "declaration_date" and "date" in by_row.loc[11, "reason"]
    assert by_row.loc[701, "column"] == "origin_country"
    assert "duplicate of" in by_row.loc[901, "reason"] and "row 21" in by_row.loc[901, "reason"]
    assert by_row.loc[951, "column"] == "declaration_id"
    assert (rej["source"] == str(path)).all()
    scored = _table(out)
    assert len(scored) == 995 and summary.counts.rows_rejected == 5
    assert scored["declaration_id"].is_unique
    assert set(scored["source_row"]).isdisjoint({5, 11, 701, 901, 951})
    assert scored["rank"].sort_values().tolist() == list(range(1, 996))


# ---- corrupt input, CLI ------------------------------------------------------------------------

def _cli(args: list[str]):
    from riskprof.cli import app

    return CliRunner().invoke(app, args)


@pytest.mark.integration
def test_truncated_parquet_fails_cleanly(manifest, trained_model, tmp_path):
    data = Path(manifest["parquet"]).read_bytes()
    bad = tmp_path / "truncated.parquet"
    bad.write_bytes(data[: len(data) // 2])
    res = _cli(["score", "--manifest", str(bad), "--out", str(tmp_path / "o.parquet"), "--model", trained_model.uri])
    assert res.exit_code != 0
    assert "corrupt or truncated" in res.output and "truncated.parquet" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.integration
def test_corrupt_csv_fails_cleanly(trained_model, tmp_path):
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(b"declaration_id,declaration_date,hs_code\nD1,2023-01-01,010121\n" + b"\xff\xfe\x00\x81" * 500)
    res = _cli(["score", "--manifest", str(bad), "--out", str(tmp_path / "o.parquet"), "--model", trained_model.uri])
    assert res.exit_code != 0
    assert "garbage.csv" in res.output and "Traceback" not in res.output


@pytest.mark.integration
def test_missing_required_column_fails_cleanly(manifest, trained_model, tmp_path):
    raw = manifest["frame"].drop(columns="hs_code").head(50)
    path = tmp_path / "nohs.parquet"
    raw.to_parquet(path, index=False)
    res = _cli(["score", "--manifest", str(path), "--out", str(tmp_path / "o.parquet"), "--model", trained_model.uri])
    assert res.exit_code != 0 and "hs_code" in res.output and "Traceback" not in res.output


@pytest.mark.integration
def test_cli_prints_a_summary(manifest, trained_model, tmp_path):
    out = tmp_path / "cli.parquet"
    res = _cli(["score", "--manifest", str(manifest["parquet"]), "--out", str(out), "--model", trained_model.uri,
                "--capacity", "100", "--no-reasons", "--chunk-rows", "2500", "--csv"])
    assert res.exit_code == 0, res.output
    assert "scored 4,000 rows, rejected 0" in res.output
    assert "lanes: red" in res.output and "selection: none 3,900, model 100" in res.output
    df = _table(out)
    assert "reasons" not in df.columns
    assert OutputPaths(out).csv.exists()


@pytest.mark.integration
def test_mapping_input_korean_slice(kr_dir, trained_model, tmp_path):
    src = pd.read_csv(kr_dir / "df_syn_valid_eng.csv", dtype=str, nrows=1_200)
    path = tmp_path / "kr-slice.csv"  # a slice in tmp: the shared data is never copied into the repo
    src.to_csv(path, index=False)
    out = tmp_path / "kr.parquet"
    summary = _run(path, out, trained_model.uri, chunk_rows=500, mapping=KR_MAPPING)
    df = _table(out)
    assert summary.counts.rows_scored + summary.counts.rows_rejected == 1_200
    assert summary.counts.rows_scored > 1_000
    assert set(df["declaration_id"]) <= set(src["Declaration ID"])
    assert read_metadata(out)["mapping"]["path"] == str(KR_MAPPING)


# ---- resume after kill -9 ---------------------------------------------------------------------
# The process is killed from outside (SIGKILL, nothing cleaned up) once its checkpoint shows the
# progress wanted: the code under test carries no hook of its own.

def _score_process(manifest_path: Path, out: Path, model_uri: str, chunk_rows: int = 600,
                   env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)  # riskprof score writes into an existing folder only
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "riskprof.cli", "score", "--manifest", str(manifest_path), "--out", str(out),
           "--model", model_uri, "--capacity", CAPACITY, "--random-share", "0.3", "--seed", "3",
           "--chunk-rows", str(chunk_rows)]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _kill_after(proc: subprocess.Popen, ckpt: Path, parts: int, delay: float = 0.0, timeout: float = 300) -> int:
    """SIGKILL ``proc`` ``delay`` seconds after its checkpoint holds ``parts`` part files."""
    deadline = time.monotonic() + timeout
    while len(list(ckpt.glob("part-*.arrow"))) < parts:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {parts} parts: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {parts} parts after {timeout} s")
        time.sleep(0.005)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):  # it finished within the delay (the caller checks)
        os.kill(proc.pid, signal.SIGKILL)
    return _finish(proc)[0]


@pytest.mark.integration
@pytest.mark.slow
def test_resume_after_sigkill_equals_a_clean_run(manifest, trained_model, tmp_path):
    import mlflow

    clean = tmp_path / "clean" / "scores.parquet"
    _run(manifest["csv"], clean, trained_model.uri, chunk_rows=600)

    out = tmp_path / "crashed" / "scores.parquet"
    ckpt = OutputPaths(out).checkpoint
    assert _kill_after(_score_process(manifest["csv"], out, trained_model.uri), ckpt, parts=3) == -signal.SIGKILL
    assert len(list(ckpt.glob("part-*.arrow"))) >= 3
    assert not out.exists() and (ckpt / "state.json").exists()

    # the alias moves while the run is down: the resumed run keeps the version pinned at its start
    client = mlflow.MlflowClient()
    mv = client.get_model_version(trained_model.name, trained_model.version)
    newer = client.create_model_version(trained_model.name, mv.source, mv.run_id)
    client.set_registered_model_alias(trained_model.name, "challenger", newer.version)
    try:
        code, err = _finish(_score_process(manifest["csv"], out, trained_model.uri))
        assert code == 0, err
        assert "resumed from checkpoint" in err
    finally:
        client.set_registered_model_alias(trained_model.name, "challenger", trained_model.version)
    _same_output(out, clean)
    assert read_metadata(out)["model"]["version"] == str(trained_model.version)
    assert not ckpt.exists()


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_at_ten_random_points_then_resume_equals_a_clean_run(manifest, trained_model, tmp_path):
    """Ten kills at seeded random points (after 1..all parts, plus up to 0.4 s: mid-chunk, between the
    passes, while writing or renaming the final files); each resumed run writes the clean run's bytes."""
    chunk_rows = 500
    n_parts = -(-N_ROWS // chunk_rows)
    clean = tmp_path / "clean" / "scores.parquet"
    _run(manifest["csv"], clean, trained_model.uri, chunk_rows=chunk_rows)
    rng = np.random.default_rng(20261201)
    kills, attempts = 0, 0
    while kills < 10:
        attempts += 1
        assert attempts <= 30, f"only {kills} of {attempts - 1} runs were killed before they finished"
        parts, delay = int(rng.integers(1, n_parts + 1)), float(rng.uniform(0.0, 0.4))
        out = tmp_path / f"trial-{attempts}" / "scores.parquet"
        ckpt = OutputPaths(out).checkpoint
        proc = _score_process(manifest["csv"], out, trained_model.uri, chunk_rows)
        if _kill_after(proc, ckpt, parts, delay) != -signal.SIGKILL:
            continue  # the run ended within the delay: not a kill point, draw another
        kills += 1
        code, err = _finish(_score_process(manifest["csv"], out, trained_model.uri, chunk_rows))
        assert code == 0, err
        _same_output(out, clean)
        assert not ckpt.exists()
        assert not list(out.parent.glob(".*.tmp-*")), "temporaries left next to the output"


@pytest.mark.integration
@pytest.mark.slow
def test_a_resumed_run_whose_pinned_profiles_left_the_store_exits_2(manifest, trained_model, tmp_path):
    """``riskprof score`` pinned from the serving store checkpoints the pins only; resumed against a
    store without those versions it stops with a message naming them and the checkpoint (exit 2)."""
    from profiles import Profile
    from serving.profile_store import Actor, ProfileStore
    from serving.store import Store

    def profile(pid: str) -> Profile:
        return Profile.model_validate({
            "id": pid, "name": pid, "criterion": f"criterion of {pid}", "owner": "ana", "status": "active",
            "conditions": [{"field": "hs_code", "op": "prefix", "values": ["84"]}], "action": {"lane": "yellow"},
            "valid_from": "2000-01-01"})

    urls = {}
    for name, pid in (("first", "P-1"), ("other", "P-2")):
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        store = Store.from_url(urls[name])
        ProfileStore(store.engine, extra_columns={}).save([profile(pid)], [], Actor("ana", "cli"))
        store.dispose()
    out = tmp_path / "run" / "scores.parquet"
    ckpt = OutputPaths(out).checkpoint
    proc = _score_process(manifest["csv"], out, trained_model.uri, env_extra={"RISKPROF_DATABASE_URL": urls["first"]})
    assert _kill_after(proc, ckpt, parts=2) == -signal.SIGKILL
    pinned = json.loads((ckpt / "profiles.json").read_text())
    assert pinned["pins"]["profiles"] == [{"id": "P-1", "version": 1}] and "profiles" not in pinned

    again = _score_process(manifest["csv"], out, trained_model.uri, env_extra={"RISKPROF_DATABASE_URL": urls["other"]})
    stdout, stderr = again.communicate(timeout=600)
    said = " ".join((stdout + stderr).split())
    assert again.returncode == 2, said
    assert "('P-1', 1)" in said and "remove it to start the run afresh" in said and "Traceback" not in said
    assert not out.exists() and ckpt.exists()  # nothing published; the checkpoint is left to the user


# ---- failures leave nothing misleading -----------------------------------------------------------

@pytest.mark.integration
def test_a_manifest_whose_every_row_is_rejected_exits_non_zero(manifest, trained_model, tmp_path):
    raw = manifest["frame"].head(30).copy()
    raw["hs_code"] = "12AB"
    path = tmp_path / "all-bad.parquet"
    raw.to_parquet(path, index=False)
    out = tmp_path / "o.parquet"
    good = tmp_path / "good.parquet"
    manifest["frame"].head(40).to_parquet(good, index=False)
    last_night = _cli(["score", "--manifest", str(good), "--out", str(out), "--model", trained_model.uri])
    assert last_night.exit_code == 0, last_night.output
    before = {p: p.read_bytes() for p in (out, OutputPaths(out).meta)}
    res = _cli(["score", "--manifest", str(path), "--out", str(out), "--model", trained_model.uri])
    assert res.exit_code == 1, res.output
    assert "nothing was scored: 30 row(s) rejected" in res.output and "o.rejects.csv" in res.output
    assert len(pd.read_csv(OutputPaths(out).rejects)) == 30  # the reasons are there to read
    assert "Traceback" not in res.output
    # last night's scores were replaced by an empty output: they stay, with their .meta.json
    assert {p: p.read_bytes() for p in before} == before and "left as it was" in " ".join(res.output.split())
    header_only = tmp_path / "header-only.csv"
    header_only.write_text(",".join(manifest["frame"].columns) + "\n")
    empty = _cli(["score", "--manifest", str(header_only), "--out", str(out), "--model", trained_model.uri])
    assert empty.exit_code == 1 and "holds no rows" in empty.output, empty.output
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.integration
def test_a_run_failing_on_its_input_leaves_no_checkpoint(manifest, trained_model, tmp_path):
    """The first file is scored, the second misses a required column: the same arguments would fail
    again, so no checkpoint is left to suggest the run could be resumed."""
    folder = tmp_path / "in"
    folder.mkdir()
    manifest["frame"].iloc[:1_000].to_parquet(folder / "a.parquet", index=False)
    manifest["frame"].iloc[1_000:1_200].drop(columns="hs_code").to_parquet(folder / "b.parquet", index=False)
    out = tmp_path / "o.parquet"
    res = _cli(["score", "--manifest", str(folder), "--out", str(out), "--model", trained_model.uri,
                "--chunk-rows", "300"])
    assert res.exit_code != 0 and "hs_code" in res.output and "Traceback" not in res.output
    assert not OutputPaths(out).checkpoint.exists()
    assert not out.exists() and not OutputPaths(out).meta.exists()


@pytest.mark.integration
@pytest.mark.parametrize("out_name, csv", [("manifest.csv", False), ("manifest.parquet", True),
                                           ("scores.parquet", False)])
def test_an_output_over_a_manifest_file_is_refused_and_the_manifest_kept(manifest, trained_model, tmp_path,
                                                                        out_name, csv):
    """``--out manifest.csv`` wrote the scores over the manifest (exit 0, the input gone); so did
    ``--csv`` beside a manifest named like the output. The third case: the manifest is called
    ``scores.rejects.csv``, the rejects file of ``--out scores.parquet``."""
    name = "scores.rejects.csv" if out_name == "scores.parquet" else "manifest.csv"
    source = tmp_path / name
    manifest["frame"].head(200).to_csv(source, index=False)
    before = source.read_bytes()
    args = ["score", "--manifest", str(source), "--out", str(tmp_path / out_name), "--model", trained_model.uri]
    res = _cli(args + (["--csv"] if csv else []))
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    if out_name.endswith(".csv"):  # refused by its name already: the scores are Parquet
        assert "the scores are written as Parquet, so name the file .parquet" in said
    else:
        assert f"would overwrite the manifest file {source}" in said
    assert source.read_bytes() == before and "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written, no checkpoint left


@pytest.mark.integration
def test_the_output_folder_created_is_said(manifest, trained_model, tmp_path):
    out = tmp_path / "new" / "folder" / "o.parquet"
    summary = _run(manifest["parquet"], out, trained_model.uri)
    assert f"created the output folder {out.parent}" in summary.notes


# ---- encodings and delimiters ------------------------------------------------------------------

@pytest.fixture(scope="module")
def accented(manifest) -> pd.DataFrame:
    raw = manifest["frame"].head(300).copy()
    raw["goods_description"] = "pièces détachées; acier"  # non-ASCII, and a semicolon inside a value
    return raw


@pytest.mark.integration
def test_a_latin1_csv_is_named_as_such_and_scored_with_encoding(accented, trained_model, tmp_path):
    utf8, latin1 = tmp_path / "utf8.csv", tmp_path / "latin1.csv"
    accented.to_csv(utf8, index=False, date_format="%Y-%m-%d")
    accented.to_csv(latin1, index=False, date_format="%Y-%m-%d", encoding="latin-1")
    res = _cli(["score", "--manifest", str(latin1), "--out", str(tmp_path / "x.parquet"), "--model", trained_model.uri])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "is not utf-8 text: byte 0xe8 at line 2" in res.output and "--encoding latin-1" in res.output
    assert "corrupt" not in res.output
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert _cli(["score", "--manifest", str(utf8), "--out", str(a), "--model", trained_model.uri]).exit_code == 0
    res = _cli(["score", "--manifest", str(latin1), "--out", str(b), "--model", trained_model.uri,
                "--encoding", "latin-1"])
    assert res.exit_code == 0, res.output
    assert "read as latin-1" in res.output
    pd.testing.assert_frame_equal(_table(b).drop(columns="source_file"), _table(a).drop(columns="source_file"))
    bad = _cli(["score", "--manifest", str(utf8), "--out", str(b), "--model", trained_model.uri,
                "--encoding", "klingon"])
    assert bad.exit_code != 0 and "unknown encoding 'klingon'" in bad.output


@pytest.mark.integration
@pytest.mark.parametrize(("sep", "option"), [(";", None), ("\t", None), (";", ";"), ("\t", "tab"), ("\t", "TAB")])
def test_a_semicolon_or_tab_separated_csv_is_read(accented, trained_model, tmp_path, sep, option):
    comma, other = tmp_path / "comma.csv", tmp_path / "other.csv"
    accented.to_csv(comma, index=False, date_format="%Y-%m-%d")
    accented.to_csv(other, index=False, date_format="%Y-%m-%d", sep=sep)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert _cli(["score", "--manifest", str(comma), "--out", str(a), "--model", trained_model.uri]).exit_code == 0
    res = _cli(["score", "--manifest", str(other), "--out", str(b), "--model", trained_model.uri]
               + (["--delimiter", option] if option else []))
    assert res.exit_code == 0, res.output
    assert f"columns separated by {sep!r}" in res.output
    pd.testing.assert_frame_equal(_table(b).drop(columns="source_file"), _table(a).drop(columns="source_file"))


@pytest.mark.integration
def test_a_wrong_delimiter_is_named(accented, trained_model, tmp_path):
    path = tmp_path / "semi.csv"
    accented.to_csv(path, index=False, date_format="%Y-%m-%d", sep=";")
    res = _cli(["score", "--manifest", str(path), "--out", str(tmp_path / "o.parquet"), "--model",
                trained_model.uri, "--delimiter", ","])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "separated by ','" in res.output and "--delimiter" in res.output
    two = _cli(["score", "--manifest", str(path), "--out", str(tmp_path / "o.parquet"), "--model",
                trained_model.uri, "--delimiter", ";;"])
    assert two.exit_code == 2 and "Traceback" not in two.output
    assert "--delimiter must be one character or 'tab', got ';;'" in " ".join(two.output.split())


# ---- a full disk ---------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB filesystem (tmpfs): writes past it fail with ENOSPC, as on a full disk."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root with CAP_SYS_ADMIN): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A ballast file taking all the free space but ``leave`` bytes."""
    st = os.statvfs(disk)
    ballast = disk / "ballast"
    with ballast.open("ab") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return ballast


@pytest.mark.integration
def test_a_full_disk_fails_clearly_publishes_nothing_and_resumes(manifest, trained_model, tmp_path, small_disk):
    clean = tmp_path / "clean" / "scores.parquet"
    _run(manifest["parquet"], clean, trained_model.uri, chunk_rows=500)
    out = small_disk / "run" / "scores.parquet"
    paths = OutputPaths(out)
    published = (out, paths.rejects, paths.meta, paths.csv)

    # full while scoring the chunks (pass 1)
    out.parent.mkdir()
    ballast = _fill(small_disk, leave=24 * 1024)
    res = _cli(["score", "--manifest", str(manifest["parquet"]), "--out", str(out), "--model", trained_model.uri,
                "--capacity", CAPACITY, "--random-share", "0.3", "--seed", "3", "--chunk-rows", "500"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "the disk is full" in res.output and "Nothing was published" in res.output
    assert not any(p.exists() for p in published)
    assert not list(out.parent.glob(".*.tmp-*")) and not list(paths.checkpoint.glob(".*.tmp-*"))

    # room for the chunks, full again once they are all scored (between the passes): the final files
    # cannot be written
    ballast.unlink()

    class FillWhenScored:
        def start(self, total: int | None, completed: int) -> None: ...

        def advance(self, rows: int) -> None: ...

        def stop(self) -> None:
            _fill(small_disk, leave=8 * 1024)

    from batch import BatchWriteError

    with pytest.raises(BatchWriteError, match="disk is full.*chunk\\(s\\) scored so far are kept") as err:
        score_manifest(manifest["parquet"], out, trained_model.uri,
                       BatchOptions(capacity=CAPACITY, random_share=0.3, seed=3, chunk_rows=500),
                       progress=FillWhenScored())
    assert "resume" in str(err.value)
    assert not any(p.exists() for p in published)
    assert (paths.checkpoint / "pass1.json").exists()
    assert not list(paths.checkpoint.glob(".*.tmp-*")), "temporaries left filling the disk"

    # space again: the same command resumes and writes what a clean run writes
    ballast.unlink()
    res = _cli(["score", "--manifest", str(manifest["parquet"]), "--out", str(out), "--model", trained_model.uri,
                "--capacity", CAPACITY, "--random-share", "0.3", "--seed", "3", "--chunk-rows", "500"])
    assert res.exit_code == 0, res.output
    assert "resumed from checkpoint" in res.output
    pd.testing.assert_frame_equal(_table(out).drop(columns="source_file"), _table(clean).drop(columns="source_file"))
    assert paths.rejects.read_bytes() == OutputPaths(clean).rejects.read_bytes()
    assert not paths.checkpoint.exists()


# ---- Spark ------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.slow
def test_spark_local_equals_pandas(manifest, trained_model, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    frame = manifest["frame"]
    frame.iloc[:2_500].to_parquet(folder / "a.parquet", index=False, row_group_size=1_000)
    frame.iloc[2_500:].to_csv(folder / "b.csv", index=False, date_format="%Y-%m-%d")
    local = tmp_path / "local.parquet"
    spark = tmp_path / "spark.parquet"
    _run(folder, local, trained_model.uri, chunk_rows=700)
    summary = _run(folder, spark, trained_model.uri, chunk_rows=700, engine="spark", spark_master="local[2]")
    assert summary.counts.rows_scored == N_ROWS
    _same_output(spark, local)
    meta = json.loads(OutputPaths(spark).meta.read_text())
    assert meta["engine"] == "spark"


@pytest.mark.integration
def test_capacity_lanes_agree_with_the_api(manifest, trained_model, tmp_path, monkeypatch):
    """RISKPROF_LANES_BY=capacity: batch derives the thresholds from the pinned model exactly as the API."""
    from scoring.registry import load_risk_model
    from serving.service import lane_thresholds
    from serving.settings import ServingSettings

    monkeypatch.setenv("RISKPROF_LANES_BY", "capacity")
    monkeypatch.setenv("RISKPROF_LANE_RED_SHARE", "0.03")
    monkeypatch.setenv("RISKPROF_LANE_YELLOW_SHARE", "0.2")
    settings = ServingSettings()
    model = load_risk_model(trained_model.uri).model
    api = lane_thresholds(settings, model.reference_scores)
    out = tmp_path / "scores.parquet"
    _run(manifest["parquet"], out, trained_model.uri, lane_shares=(0.03, 0.2))
    got = _table(out)
    expected = np.where(got["risk_score"] >= api.red, "red", np.where(got["risk_score"] >= api.yellow, "yellow",
                                                                        "green"))
    assert got["lane"].tolist() == expected.tolist()
    assert {"red", "yellow", "green"} <= set(got["lane"])
    meta = read_metadata(out)
    assert meta["options"]["lane_red"] == pytest.approx(api.red)


def test_a_misspelt_optional_column_is_said_in_the_output_and_the_meta(manifest, trained_model, tmp_path):
    """'Customs Value' for customs_value blanked the field for every row with exit 0 and no word."""
    source = tmp_path / "typo.csv"
    manifest["frame"].head(50).rename(columns={"customs_value": "Customs Value"}).to_csv(source, index=False)
    out = tmp_path / "scores.parquet"
    res = _cli(["score", "--manifest", str(source), "--out", str(out), "--model", trained_model.uri, "--no-profiles"])
    assert res.exit_code == 0, res.output
    note = ("typo.csv: no column customs_value (optional: scored as missing for every row); columns the contract "
            "does not know (carried through, not read by the model): Customs Value")
    assert note in " ".join(res.output.split())
    assert json.loads(out.with_suffix(".meta.json").read_text())["summary"]["notes"] == [note]
    fine = tmp_path / "fine.csv"
    manifest["frame"].head(50).to_csv(fine, index=False)
    res = _cli(["score", "--manifest", str(fine), "--out", str(tmp_path / "fine.parquet"), "--model",
                trained_model.uri, "--no-profiles"])
    assert res.exit_code == 0 and "optional: scored as missing" not in res.output


def test_a_csv_copy_left_by_an_earlier_run_is_said_to_be_stale(manifest, trained_model, tmp_path):
    """score --csv, then score without --csv to the same --out: the old scores.csv (200 rows) stayed beside
    a 10-row scores.parquet, looking like its copy."""
    source = tmp_path / "m.csv"
    manifest["frame"].head(30).to_csv(source, index=False)
    out = tmp_path / "scores.parquet"
    args = ["score", "--manifest", str(source), "--out", str(out), "--model", trained_model.uri, "--no-profiles"]
    assert _cli([*args, "--csv"]).exit_code == 0
    res = _cli(args)
    assert res.exit_code == 0, res.output
    said = "scores.csv beside the output is not from this run (no --csv)"
    assert said in " ".join(res.output.split())
    assert any(said in n for n in json.loads(out.with_suffix(".meta.json").read_text())["summary"]["notes"])
