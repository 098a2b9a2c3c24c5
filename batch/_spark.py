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
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from batch._checkpoint import Checkpoint
from batch._input import InputFile
from batch._local import ChunkWork, score_file_chunks

_WORK_CACHE: dict[int, ChunkWork] = {}  # per Python worker: broadcast id → unpickled work


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

    def work(self) -> ChunkWork:
        work = _WORK_CACHE.get(self.bc.id)
        if work is None:
            work = pickle.loads(self.bc.value)
            _WORK_CACHE.clear()
            _WORK_CACHE[self.bc.id] = work
        return work

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
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
    """Score every chunk not yet in the checkpoint on Spark; progress is reported per finished task."""
    done = ckpt.done()
    tasks = plan_tasks(files, work.chunk_rows, done)
    if not tasks:
        return
    spark = spark_session(master)
    sc = spark.sparkContext
    bc = sc.broadcast(pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL))
    try:
        ids = spark.range(0, len(tasks), 1, numPartitions=len(tasks))
        fn = _TaskRunner(bc, files, tasks, str(ckpt.root.resolve()), done)
        results = ids.mapInPandas(fn, schema="task long, chunks long, rows long, rejected long")
        for row in results.toLocalIterator():
            if on_chunk is not None:
                on_chunk(int(row["rows"]), int(row["rejected"]))
    finally:
        bc.unpersist()
