"""The local engine: chunks scored one after another in this process, each saved as a part."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from batch._checkpoint import Checkpoint
from batch._chunk import ChunkSettings, score_chunk, use_system_arrow_pool
from batch._input import InputFile, iter_chunks
from features.mapping import ColumnMapping
from profiles import RuleSet
from scoring import RiskModel
from scoring.model import ThreadShare


@dataclass
class ChunkWork:
    """Everything a chunk needs besides its rows (shipped to Spark executors as is)."""

    model: RiskModel
    settings: ChunkSettings
    mapping: ColumnMapping | None
    chunk_rows: int
    rules: RuleSet | None = None  # the run's pinned profiles (None: none, or none that can fire)


def score_and_save(work: ChunkWork, ckpt: Checkpoint, frame: pd.DataFrame, file_index: int, source: str,
                   chunk: int, offset: int) -> tuple[int, int]:
    """Score one chunk and save it as its part (atomically); returns (rows read, rows rejected)."""
    res = score_chunk(frame, model=work.model, settings=work.settings, file_index=file_index, source=source,
                      row_offset=offset, mapping=work.mapping, rules=work.rules)
    ckpt.save_chunk(file_index, chunk, res.scored, res.rejects,
                    {"rows": res.rows_in, "rejected": res.rows_rejected, "first_row": offset + 1})
    return res.rows_in, res.rows_rejected


def score_file_chunks(work: ChunkWork, ckpt: Checkpoint, file: InputFile, skip: set[int],
                      on_chunk: Callable[[int, int], None] | None = None, first_chunk: int = 0,
                      last_chunk: int | None = None) -> int:
    """Score the chunks of one file not in ``skip``; returns the number of parts written."""
    written = 0
    with work.model.reusing_matrices():
        for c, offset, frame in iter_chunks(file, work.chunk_rows, skip, first_chunk, last_chunk):
            rows, rejected = score_and_save(work, ckpt, frame, file.index, str(file.path), c, offset)
            written += 1
            if on_chunk is not None:
                on_chunk(rows, rejected)
    return written


@contextmanager
def _threads_shared_by(model: RiskModel, n: int) -> Iterator[None]:
    """LightGBM threads split between ``n`` chunks scored at once (the cores are shared)."""
    threads = model.num_threads
    model.num_threads = max(1, threads // n)
    try:
        yield
    finally:
        model.num_threads = threads


def run_local(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile],
              on_chunk: Callable[[int, int], None] | None = None) -> None:
    done = ckpt.done()
    for file in files:
        score_file_chunks(work, ckpt, file, done.get(file.index, set()), on_chunk)


def _feed(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile], limit: int,
          submit: Callable[[pd.DataFrame, InputFile, int, int], Future],
          on_chunk: Callable[[int, int], None] | None) -> None:
    """Read chunks in this thread and hand them to ``submit`` (a pool), at most ``limit`` in flight
    so memory stays bounded by the chunk size; finished chunks are reported here, in order of
    completion (each is its own part, so the output does not depend on that order)."""
    done = ckpt.done()
    pending: set[Future] = set()

    def settle(block: bool) -> None:
        nonlocal pending
        if not pending:
            return
        finished, pending = wait(pending, return_when=FIRST_COMPLETED, timeout=None if block else 0)
        for fut in finished:
            rows, rejected = fut.result()
            if on_chunk is not None:
                on_chunk(rows, rejected)

    try:
        for file in files:
            for c, offset, frame in iter_chunks(file, work.chunk_rows, done.get(file.index, set())):
                while len(pending) >= limit:
                    settle(block=True)
                pending.add(submit(frame, file, c, offset))
                settle(block=False)
        while pending:
            settle(block=True)
    except BaseException:
        for fut in pending:
            fut.cancel()
        raise


# ---- two chunks in flight on threads ------------------------------------------------------------

def run_local_pipelined(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile],
                        on_chunk: Callable[[int, int], None] | None = None, in_flight: int = 2) -> None:
    """Chunks scored on ``in_flight`` threads of this process, ``num_threads // in_flight`` LightGBM
    threads each while they are all busy; a chunk left alone (the last of a run) predicts its
    remaining rows with all of them (:class:`scoring.model.ThreadShare`).

    LightGBM's ``predict`` releases the GIL, so while one thread predicts a chunk the other builds
    the features of the next (Python and numpy): both cores stay busy without the pickling and the
    per-process model load of ``--workers``. Reading stays in this thread, so at most
    ``in_flight + 1`` chunks are in memory.
    """
    share = ThreadShare(work.model.num_threads)

    def score(frame: pd.DataFrame, file: InputFile, c: int, offset: int) -> tuple[int, int]:
        with share.scoring():
            return score_and_save(work, ckpt, frame, file.index, str(file.path), c, offset)

    with _threads_shared_by(work.model, in_flight), _sharing(work.model, share), work.model.reusing_matrices(), \
            ThreadPoolExecutor(in_flight, thread_name_prefix="riskprof-chunk") as pool:
        _feed(work, ckpt, files, in_flight, lambda frame, file, c, offset: pool.submit(score, frame, file, c, offset),
              on_chunk)


@contextmanager
def _sharing(model: RiskModel, share: ThreadShare) -> Iterator[None]:
    """``model.predict_raw`` asks ``share`` for its threads block by block (the last chunk in flight
    gets them all)."""
    model.__dict__["_thread_share"] = share
    try:
        yield
    finally:
        model.__dict__.pop("_thread_share", None)


# ---- several worker processes --------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(blob: bytes, ckpt_root: str, parent: int) -> None:
    _exit_with_parent(parent)
    use_system_arrow_pool()
    _WORKER["work"] = work = pickle.loads(blob)
    _WORKER["matrices"] = reuse = work.model.reusing_matrices()  # for the worker's life
    reuse.__enter__()
    _WORKER["ckpt"] = Checkpoint(Path(ckpt_root))


def _exit_with_parent(parent: int, every: float = 0.25) -> None:
    """End this worker once ``parent`` is gone. A parent killed with SIGKILL left its spawn workers
    (~300 MB each) and the resource tracker alive forever: each worker blocks reading the call queue,
    whose writing end it holds itself, so it never sees end-of-file. When the parent dies the worker
    is re-parented (to init or a subreaper), which ``os.getppid()`` shows; the resource tracker ends
    once no worker holds its pipe."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="riskprof-parent-watch", daemon=True).start()


def _score_in_worker(frame: pd.DataFrame, file_index: int, source: str, chunk: int, offset: int) -> tuple[int, int]:
    return score_and_save(_WORKER["work"], _WORKER["ckpt"], frame, file_index, source, chunk, offset)


def run_local_parallel(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile], workers: int,
                       on_chunk: Callable[[int, int], None] | None = None) -> None:
    """This process reads chunks; ``workers`` processes score them (at most ``workers + 1`` in flight,
    so memory stays bounded by the chunk size). Each worker loads the model once."""
    with _threads_shared_by(work.model, workers):  # as the workers will see the model
        blob = pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)
    ctx = mp.get_context("spawn")  # not fork: OpenMP (LightGBM) does not survive a fork
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(blob, str(ckpt.root), os.getpid())) as pool:
        _feed(work, ckpt, files, workers + 1, lambda frame, file, c, offset: pool.submit(
            _score_in_worker, frame, file.index, str(file.path), c, offset), on_chunk)
