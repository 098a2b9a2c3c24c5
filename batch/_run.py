"""``score_manifest``: pin the model, score every chunk to a checkpoint, then rank and write."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from batch._checkpoint import Checkpoint, kill_point, write_json
from batch._chunk import ChunkSettings
from batch._input import inspect_manifest, manifest_digest
from batch._local import ChunkWork, run_local, run_local_parallel, run_local_pipelined
from batch._output import OutputCounts, OutputPaths, write_outputs
from features.mapping import load_mapping
from scoring import LaneThresholds, ReasonsFor, capacity_count
from scoring.ranking import thresholds_at_shares

Engine = Literal["local", "spark"]

REASONS_NOTE = {
    "flagged": "reasons computed only for red and yellow items (TreeSHAP is ~200x a prediction); "
               "green items have reasons = null",
    "all": "reasons computed for every item",
    "none": "reasons not computed",
}


class ProgressHook(Protocol):
    def start(self, total: int | None, completed: int) -> None: ...

    def advance(self, rows: int) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class BatchOptions:
    capacity: str = "5%"
    random_share: float = 0.0
    seed: int = 0
    reasons_for: ReasonsFor = "flagged"
    thresholds: LaneThresholds = field(default_factory=LaneThresholds)
    # lanes by capacity (the API's lanes_by=capacity): (red share, red+yellow share) of recent traffic,
    # turned into thresholds with the pinned model's reference scores
    lane_shares: tuple[float, float] | None = None
    top_k: int = 4
    chunk_rows: int = 100_000
    engine: Engine = "local"
    write_csv: bool = False
    num_threads: int | None = None  # LightGBM threads (default: the model's)
    workers: int = 1  # local engine: processes scoring chunks in parallel (features are single-threaded)
    pipelined: bool = True  # local engine, one process: two chunks in flight on threads (see run_local_pipelined)
    spark_master: str | None = None  # default: spark-submit's master, else local[2]

    def check(self) -> None:
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be ≥ 1, got {self.chunk_rows}")
        if not 0.0 <= self.random_share <= 1.0:
            raise ValueError(f"random_share must be within 0-1, got {self.random_share}")
        if self.reasons_for not in REASONS_NOTE:
            raise ValueError(f"reasons_for must be one of {sorted(REASONS_NOTE)}, got {self.reasons_for!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if self.engine not in ("local", "spark"):
            raise ValueError(f"engine must be local or spark, got {self.engine!r}")
        capacity_count(100, self.capacity)  # raises ValueError on a malformed capacity


@dataclass
class BatchSummary:
    paths: OutputPaths
    counts: OutputCounts
    model: dict[str, Any]
    input_sha256: str
    reasons_for: str
    seconds: float
    rows_read: int
    chunks_resumed: int
    chunks_total: int
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "output": str(self.paths.out), "rejects_file": str(self.paths.rejects), "meta_file": str(self.paths.meta),
            "rows_read": self.rows_read, "rows_scored": c.rows_scored, "rows_rejected": c.rows_rejected,
            "duplicates": c.duplicates, "problems": c.problems, "lanes": c.lanes, "selection": c.selection,
            "reasons_for": self.reasons_for, "reasons_note": REASONS_NOTE[self.reasons_for],
            "reasons_given": c.reasons_given, "model": self.model, "input_sha256": self.input_sha256,
            "seconds": round(self.seconds, 3), "rows_per_second": round(self.rows_per_second, 1),
            "chunks_total": self.chunks_total, "chunks_resumed": self.chunks_resumed, "notes": self.notes,
        }


def _sha256_text(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _default_loader(uri: str) -> Any:
    from scoring.registry import load_risk_model

    return load_risk_model(uri)


def score_manifest(manifest: str | Path | Sequence[str | Path], out: str | Path, model_uri: str,
                   options: BatchOptions | None = None, mapping: str | Path | None = None,
                   progress: ProgressHook | None = None,
                   load_model: Callable[[str], Any] = _default_loader) -> BatchSummary:
    """Score a manifest (CSV/Parquet files or folders) into ``out`` (Parquet) and its sibling files.

    Resumable: a run killed at any point and started again with the same arguments continues from
    ``<out>.ckpt/`` with the model version pinned by the first attempt, and writes the same output.
    """
    options = options or BatchOptions()
    options.check()
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    paths_in = [manifest] if isinstance(manifest, str | Path) else list(manifest)
    files = inspect_manifest(paths_in)
    digest = manifest_digest(files)
    col_map = load_mapping(mapping) if mapping is not None else None
    paths = OutputPaths(Path(out))
    paths.out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(paths.checkpoint)
    settings = ChunkSettings(options.thresholds, options.reasons_for, options.top_k)
    fingerprint = json.loads(json.dumps({
        "inputs": [f.as_dict() for f in files],
        "mapping": {"path": str(mapping), "sha256": _sha256_text(Path(mapping))} if mapping else None,
        "model_uri": model_uri,
        "chunk_rows": options.chunk_rows,
        "lane_shares": list(options.lane_shares) if options.lane_shares else None,
        **settings.as_dict(),
    }))
    notes: list[str] = []
    state = ckpt.read_state()
    if state is not None and state.get("fingerprint") == fingerprint:
        pinned = state["model"]
        loaded = load_model(pinned["uri"])
        if str(loaded.version) != str(pinned["version"]):  # pragma: no cover - a registry rewritten under us
            raise RuntimeError(f"checkpoint pinned {pinned['uri']} but the registry returned version {loaded.version}")
        notes.append(f"resumed from checkpoint {ckpt.root} (model pinned at {pinned['uri']})")
    else:
        if ckpt.root.exists():
            notes.append(f"discarded checkpoint {ckpt.root} of a run with other inputs or arguments")
        loaded = load_model(model_uri)
        pinned = {"requested_uri": model_uri, "name": loaded.name, "version": str(loaded.version),
                  "alias": loaded.alias, "uri": loaded.uri, "run_id": loaded.run_id}
        ckpt.start(fingerprint, pinned)
    ckpt.clean_temporaries()
    for final in (paths.out, paths.csv, paths.rejects, paths.meta):  # left by a run killed mid-rename
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            stale.unlink(missing_ok=True)
    model = loaded.model
    if options.lane_shares is not None:
        settings = dataclasses.replace(settings, thresholds=thresholds_at_shares(model.reference_scores,
                                                                                 *options.lane_shares))
    if options.num_threads is not None:
        model.num_threads = options.num_threads

    work = ChunkWork(model, settings, col_map, options.chunk_rows)
    parts = ckpt.pass1_parts()
    done_before = ckpt.parts()
    rows_before = sum(ckpt.chunk_stats(f, c)["rows"] for f, c in done_before)
    rows_read = 0
    if parts is None:
        total = None if any(f.rows_estimate is None for f in files) else sum(f.rows_estimate or 0 for f in files)
        if progress is not None:
            progress.start(total, rows_before)

        def on_chunk(rows: int, rejected: int) -> None:
            nonlocal rows_read
            rows_read += rows
            if progress is not None:
                progress.advance(rows)

        try:
            if options.engine == "spark":
                from batch._spark import run_spark

                run_spark(work, ckpt, files, on_chunk, master=options.spark_master)
            elif options.workers > 1:
                run_local_parallel(work, ckpt, files, options.workers, on_chunk)
            elif options.pipelined and model.num_threads >= 2:
                run_local_pipelined(work, ckpt, files, on_chunk)
            else:
                run_local(work, ckpt, files, on_chunk)
        finally:
            if progress is not None:
                progress.stop()
        parts = ckpt.parts()
        ckpt.mark_pass1_done(parts)

    model_doc = {k: pinned[k] for k in ("name", "version", "alias", "uri", "run_id", "requested_uri")}
    metadata = {
        "model": model_doc,
        "model_metadata": {k: v for k, v in model.metadata.items() if isinstance(v, str | int | float | bool)},
        "input": {"sha256": digest, "files": [f.as_dict() for f in files]},
        "mapping": fingerprint["mapping"],
        "options": {"capacity": options.capacity, "random_share": options.random_share, "seed": options.seed,
                    "chunk_rows": options.chunk_rows, **settings.as_dict()},
        "reasons": REASONS_NOTE[options.reasons_for],
        "columns": {
            "risk_score": "calibrated probability of a hit (the API's risk_score)",
            "percentile": "percentile among the model's reference traffic (the API's percentile)",
            "manifest_percentile": "share of this manifest (%) with a risk score ≤ the item's",
            "rank": "1 = highest risk in the manifest (ties broken by declaration_id)",
            "selection": "model (top of the capacity) | random (the random share) | none",
            "selection_probability": "probability the item was selected under this policy",
        },
    }
    counts = write_outputs(ckpt, parts, files, paths, capacity=options.capacity,
                           random_share=options.random_share, seed=options.seed,
                           with_reasons=options.reasons_for != "none", write_csv=options.write_csv,
                           metadata=metadata, before_rename=lambda: kill_point("rename"))
    seconds = time.perf_counter() - t0
    summary = BatchSummary(paths, counts, model_doc, digest, options.reasons_for, seconds, rows_read,
                           len(done_before), len(parts), notes)
    write_json(paths.meta, {**metadata, "summary": summary.as_dict(), "engine": options.engine,
                            "started": started,
                            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    ckpt.discard()
    return summary
