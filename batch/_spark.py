"""The Spark engine: the local engine's chunk function run in Spark tasks.

The driver plans tasks (a Parquet chunk, or a whole CSV file — CSV cannot be entered mid-file
without parsing what precedes it); ``mapInPandas`` runs them on executors. Each Python worker
unpickles the broadcast :class:`~scoring.RiskModel` (it carries the feature snapshot) once and
calls the same :func:`batch._chunk.score_chunk` as the local engine, writing the same part files
into the checkpoint folder. Ranking and the final files then follow on the driver exactly as in
local mode, so both engines give identical output.

Executors must see the input files and the checkpoint folder at the same paths (a shared
filesystem); see ``docs/spark.md``.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from batch._checkpoint import Checkpoint
from batch._chunk import use_system_arrow_pool
from batch._input import InputFile
from batch._local import ChunkWork, score_file_chunks

_WORK_CACHE: dict[str, ChunkWork] = {}  # per Python worker: run key → unpickled work
_USER_ERROR = re.compile(r"(LoadError|ManifestError|MappingError): (.+)")


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[1])


def spark_session(master: str | None = None) -> Any:
    """The active session; else a new one (spark-submit's master, ``master`` or local[2])."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName("riskprof-score")
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started our JVM and set the master
    master = master or os.environ.get("RISKPROF_SPARK_MASTER") or (None if under_submit else "local[2]")
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        # local workers import the packages from this checkout when riskprof is not installed
        path = os.environ.get("PYTHONPATH", "")
        if _repo_root() not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_repo_root(), path) if p)
        builder = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
        # a bad input file printed ~76 lines of Java and Python stack traces (the executor's and the task
        # manager's ERROR logs, a progress bar) before the one clean error the driver raises: on a local
        # master the console is the user's, so Spark logs nothing to it (a cluster keeps its own logs)
        builder = builder.config("spark.log.level", "OFF").config("spark.ui.showConsoleProgress", "false")
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    return builder.getOrCreate()


def plan_tasks(files: list[InputFile], chunk_rows: int, done: dict[int, set[int]]) -> list[tuple[int, int, int]]:
    """(file index, first chunk, last chunk) per task; -1 as last chunk = to the end of the file."""
    tasks: list[tuple[int, int, int]] = []
    for f in files:
        skip = done.get(f.index, set())
        if f.kind == "parquet" and f.rows is not None:
            n_chunks = -(-f.rows // chunk_rows)
            tasks += [(f.index, c, c) for c in range(n_chunks) if c not in skip]
        else:
            tasks.append((f.index, 0, -1))
    return tasks


class _TaskRunner:
    """The ``mapInPandas`` function; a module-level class so workers import it (and its cache)."""

    def __init__(self, bc: Any, files: list[InputFile], tasks: list[tuple[int, int, int]], ckpt_root: str,
                 done: dict[int, set[int]]):
        self.bc, self.files, self.tasks, self.ckpt_root, self.done = bc, files, tasks, ckpt_root, done
        self.key = uuid.uuid4().hex

    def work(self) -> ChunkWork:
        work = _WORK_CACHE.get(self.key)
        if work is None:
            work = pickle.loads(self.bc.value)
            _WORK_CACHE.clear()
            _WORK_CACHE[self.key] = work
        return work

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        use_system_arrow_pool()
        work = self.work()
        ckpt = Checkpoint(Path(self.ckpt_root))
        for batch in batches:
            for task_id in batch["id"].tolist():
                fi, first, last = self.tasks[int(task_id)]
                stats: list[tuple[int, int]] = []

                def record(rows: int, rej: int, acc: list[tuple[int, int]] = stats) -> None:
                    acc.append((rows, rej))

                score_file_chunks(work, ckpt, self.files[fi], self.done.get(fi, set()), record, first_chunk=first,
                                  last_chunk=None if last < 0 else last)
                yield pd.DataFrame({"task": [int(task_id)], "chunks": [len(stats)],
                                    "rows": [sum(s[0] for s in stats)], "rejected": [sum(s[1] for s in stats)]})


def run_spark(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile],
              on_chunk: Callable[[int, int], None] | None = None, master: str | None = None) -> None:
    """Score every chunk not yet in the checkpoint on Spark; progress follows the part files."""
    done = ckpt.done()
    tasks = plan_tasks(files, work.chunk_rows, done)
    if not tasks:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
        spark = spark_session(master)
        sc = spark.sparkContext
        if (master or "").startswith("local"):
            sc.setLogLevel("OFF")  # a session made elsewhere too (see spark_session)
        bc = sc.broadcast(pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            ids = spark.range(0, len(tasks), 1, numPartitions=len(tasks))
            fn = _TaskRunner(bc, files, tasks, str(ckpt.root.resolve()), done)
            results = ids.mapInPandas(fn, schema="task long, chunks long, rows long, rejected long")
            _collect_with_progress(results, ckpt, done, on_chunk)
        finally:
            bc.unpersist()


def _collect_with_progress(results: Any, ckpt: Checkpoint, done: dict[int, set[int]],
                           on_chunk: Callable[[int, int], None] | None) -> None:
    """Run the job in a thread (all tasks in parallel) and report parts as they appear."""
    seen = {(f, c) for f, cs in done.items() for c in cs}
    outcome: dict[str, Any] = {}

    def job() -> None:
        try:
            outcome["rows"] = results.collect()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=job, name="riskprof-spark-job", daemon=True)
    thread.start()
    while True:
        thread.join(timeout=0.5)
        for key in sorted(set(ckpt.parts()) - seen):
            seen.add(key)
            if on_chunk is not None:
                stats = ckpt.chunk_stats(*key)
                on_chunk(int(stats["rows"]), int(stats["rejected"]))
        if not thread.is_alive():
            break
    if "error" in outcome:
        _raise_user_error(outcome["error"])
        raise outcome["error"]


def _raise_user_error(exc: Exception) -> None:
    """A bad input file inside a Spark task → the same clean error as in local mode."""
    from batch._chunk import ManifestError
    from features.io import LoadError
    from features.mapping import MappingError

    m = _USER_ERROR.search(str(exc))
    if m:
        kind = {"LoadError": LoadError, "ManifestError": ManifestError, "MappingError": MappingError}[m.group(1)]
        raise kind(m.group(2).strip()) from None
