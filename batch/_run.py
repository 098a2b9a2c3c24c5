"""``score_manifest``: pin the model, score every chunk to a checkpoint, then rank and write."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from batch._checkpoint import Checkpoint, PartUnreadable, write_json
from batch._chunk import ChunkSettings, ManifestError, use_system_arrow_pool
from batch._errors import BatchWriteError, write_problem
from batch._input import InputFile, header_names, inspect_manifest, manifest_digest
from batch._local import ChunkWork, run_local, run_local_parallel, run_local_pipelined
from batch._lock import output_lock
from batch._output import OutputCounts, OutputPaths, PublishError, publish_outputs, temp_path, write_outputs
from batch._profiles import PinnedRules
from features.contracts import DECLARATION
from features.io import LoadError, input_at
from features.mapping import MappingError, load_mapping
from scoring import LaneThresholds, ReasonsFor, capacity_count
from scoring.ranking import thresholds_at_shares

Engine = Literal["local", "spark"]

REASONS_NOTE = {
    "flagged": "reasons computed only for red and yellow items (TreeSHAP costs ~50-100x a prediction); "
               "green items have reasons = null",
    "all": "reasons computed for every item",
    "none": "reasons not computed",
}

OUTPUT_COLUMNS = {
    "risk_score": "calibrated probability of a hit (the API's risk_score)",
    "percentile": "percentile among the model's reference traffic (the API's percentile)",
    "manifest_percentile": "share of this manifest (%) with a risk score ≤ the item's",
    "rank": "1 = highest risk in the manifest (ties broken by declaration_id)",
    "selection": "model (top of the capacity) | random (the random share) | none",
    "selection_probability": "probability the item was selected under this policy",
}

RULE_COLUMNS = {
    "lane": "the model's lane, raised by any matching risk profile or watch list (red > yellow > green)",
    "selection": "rule (a profile selects it: filled first, probability 1) | model (the ranking fills the "
                 "capacity left) | random (the random share) | none",
    "rule_hits": "per item, the profiles and watch lists that matched: kind, id, version, criterion (the reason)",
}


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resumed (the profile versions it pinned are gone from the store)."""


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
    encoding: str | None = None  # CSV inputs (default UTF-8)
    delimiter: str | None = None  # CSV inputs (default: sniffed from each header)

    def check(self) -> None:
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"encoding: unknown encoding {self.encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"delimiter must be one character (e.g. ';' or a tab), got {self.delimiter!r}")
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
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # what .meta.json records
    pending: list[tuple[Path, Path]] = field(default_factory=list, repr=False)  # (temporary, final) to publish
    profiles: PinnedRules | None = field(default=None, repr=False)  # the set applied (pinned at the run's start)

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
            **({"profiles": self.profiles.describe(), "rule_hit_items": c.rule_hit_items, "alerts": c.alert_table.num_rows}
               if self.profiles is not None else {}),
        }


def _sha256_text(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _default_loader(uri: str) -> Any:
    from scoring.registry import load_risk_model

    return load_risk_model(uri)


def score_manifest(manifest: str | Path | Sequence[str | Path], out: str | Path, model_uri: str,
                   options: BatchOptions | None = None, mapping: str | Path | None = None,
                   progress: ProgressHook | None = None,
                   load_model: Callable[[str], Any] = _default_loader,
                   profiles: PinnedRules | None = None,
                   after_publish: Callable[[BatchSummary], None] | None = None) -> BatchSummary:
    """Score a manifest (CSV/Parquet files or folders) into ``out`` (Parquet) and its sibling files.

    ``profiles``: the risk profiles and watch lists to apply (as the API does: lanes raised, rule
    selections first, ``rule_hits`` per item, ``summary.counts.alerts`` to raise); a set where no rule
    can fire gives the output of a run without profiles.

    Resumable: a run killed at any point and started again with the same arguments continues from
    ``<out>.ckpt/`` with the model version and profiles pinned by the first attempt, and writes the same output.
    A run that fails on its input removes its checkpoint (the same arguments would fail the same
    way); one that fails to write (:class:`BatchWriteError`) keeps it, to resume once there is room.

    One run at a time per output: ``<out>.lock`` is held (``flock``) from the start to the last file
    published, and a second run into the same ``out`` raises :class:`OutputBusyError` at once.

    ``after_publish(summary)``: what must follow the published files (the CLI records the alerts and the
    audit event in the serving store); it runs under the lock, and if it raises, the checkpoint is kept,
    so the same command publishes the same output again from it (pass 2 only) and retries.
    """
    options = options or BatchOptions()
    options.check()
    paths = OutputPaths(Path(out))
    created = _prepare_output_folder(paths)  # the lock file lives there
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(output_lock(paths.out))
        except OSError as exc:  # a read-only or protected folder: nothing can be written there
            raise _write_failed(exc, Checkpoint(paths.checkpoint), paths) from exc
        return _score_manifest(manifest, paths, model_uri, options, mapping, progress, load_model, profiles,
                               created, after_publish)


def _score_manifest(manifest: str | Path | Sequence[str | Path], paths: OutputPaths, model_uri: str,
                    options: BatchOptions, mapping: str | Path | None, progress: ProgressHook | None,
                    load_model: Callable[[str], Any], profiles: PinnedRules | None,
                    notes: list[str], after_publish: Callable[[BatchSummary], None] | None) -> BatchSummary:
    """:func:`score_manifest` with the output locked."""
    use_system_arrow_pool()
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    paths_in = [manifest] if isinstance(manifest, str | Path) else list(manifest)
    ckpt = Checkpoint(paths.checkpoint)
    load_model = _ModelAhead(load_model, _likely_model_uri(ckpt, model_uri))
    files = inspect_manifest(paths_in, encoding=options.encoding, delimiter=options.delimiter)
    _refuse_output_over_input(paths, files, options.write_csv)
    col_map = load_mapping(mapping) if mapping is not None else None
    notes = (notes + _stale_csv_note(paths, options.write_csv) + _reading_notes(files)
             + (_column_notes(files) if col_map is None else []))
    settings = ChunkSettings(options.thresholds, options.reasons_for, options.top_k)
    fingerprint = _fingerprint(files, mapping, model_uri, options, settings)
    fingerprint["profiles"] = profiles.source if profiles is not None else None
    if profiles is not None and profiles.sha256 is not None:  # a file's content, which versions do not pin
        fingerprint["profiles_sha256"] = profiles.sha256
    loaded, pinned, fresh = _load_pinned_model(ckpt, fingerprint, model_uri, load_model, notes)
    try:
        if fresh:
            ckpt.start(fingerprint, pinned, profiles.state() if profiles is not None else None)
        else:
            profiles = _pinned_profiles(ckpt, profiles, notes)
        summary = _score_and_publish(loaded.model, pinned, ckpt, files, paths, options, settings,
                                     col_map, fingerprint, progress, notes, profiles)
    except (LoadError, ManifestError, MappingError):
        ckpt.discard()
        raise
    except OSError as exc:
        raise _write_failed(exc, ckpt, paths) from exc
    summary.seconds = time.perf_counter() - t0
    _publish(ckpt, paths, summary, started)
    if after_publish is not None:
        after_publish(summary)  # raises: the checkpoint stays, to publish again and retry
    ckpt.discard()
    return summary


class _ModelAhead:
    """``load_model`` started on a thread for the URI the run will most likely load, so the model
    (the unpickling, ~0.1 s, from a local store; ``import mlflow`` and its registry first, ~1.5 s
    more, from any other) loads while the input files are checked and digested; any other URI is
    loaded when asked. A load that fails raises when the model is asked for, as before."""

    def __init__(self, load_model: Callable[[str], Any], uri: str):
        self._load = load_model
        self.uri = uri
        pool = ThreadPoolExecutor(1, thread_name_prefix="riskprof-model")
        self._future = pool.submit(load_model, uri)
        pool.shutdown(wait=False)

    def __call__(self, uri: str) -> Any:
        return self._future.result() if uri == self.uri else self._load(uri)


def _likely_model_uri(ckpt: Checkpoint, model_uri: str) -> str:
    """The version pinned by a checkpoint of a run with this ``model_uri`` (likely resumed), else ``model_uri``."""
    state = ckpt.read_state() or {}
    fingerprint, pinned = state.get("fingerprint"), state.get("model")
    if isinstance(fingerprint, dict) and fingerprint.get("model_uri") == model_uri and isinstance(pinned, dict):
        return str(pinned.get("uri") or model_uri)
    return model_uri


def _refuse_output_over_input(paths: OutputPaths, files: Sequence[InputFile], write_csv: bool) -> None:
    """No file the run writes may be one of the manifest's files: publishing it would destroy the input
    (``--out manifest.csv``, or ``--out scores.parquet --csv`` beside a manifest ``scores.csv``)."""
    written = [paths.out, paths.rejects, paths.meta, *([paths.csv] if write_csv else [])]
    for target in written:
        same = input_at(target, [f.path for f in files])
        if same is not None:
            raise ManifestError(f"the output {target} would overwrite the manifest file {same}: choose another "
                                "output name (nothing was written)")


def _prepare_output_folder(paths: OutputPaths) -> list[str]:
    """Create the output's folder if missing, and say so (a mistyped path should not pass unnoticed)."""
    parent = paths.out.parent
    if parent.exists():
        return []
    parent.mkdir(parents=True)
    return [f"created the output folder {parent}"]


def _stale_csv_note(paths: OutputPaths, write_csv: bool) -> list[str]:
    """Without --csv, a CSV copy left beside the output by an earlier run is not this run's: said, not
    deleted (the name might be a file of the user's)."""
    if write_csv or not paths.csv.exists():
        return []
    return [f"{paths.csv.name} beside the output is not from this run (no --csv): it holds an earlier run's "
            "items, or is another file"]


def _reading_notes(files: list[InputFile]) -> list[str]:
    return [f"{f.path.name}: read as {f.encoding}, columns separated by {f.delimiter!r}"
            for f in files if f.kind == "csv" and (f.encoding, f.delimiter) != ("utf-8", ",")]


def _column_notes(files: list[InputFile]) -> list[str]:
    """Optional contract columns a file lacks (scored as missing), beside the columns it has that the
    contract does not know: a misspelt header ("Customs Value") blanked that field for every row, silently."""
    notes = []
    for f in files:
        names = header_names(f)
        missing = [c.name for c in DECLARATION.fields if not c.required and c.name not in names]
        if not missing:
            continue
        unknown = [n for n in names if n not in DECLARATION.columns]
        note = f"{f.path.name}: no column {', '.join(missing)} (optional: scored as missing for every row)"
        if unknown:
            note += f"; columns the contract does not know (carried through, not read by the model): {', '.join(unknown)}"
        notes.append(note)
    return notes


def _fingerprint(files: list[InputFile], mapping: str | Path | None, model_uri: str, options: BatchOptions,
                 settings: ChunkSettings) -> dict[str, Any]:
    """Everything the parts depend on: a checkpoint with another fingerprint is not resumed."""
    return json.loads(json.dumps({
        "inputs": [f.as_dict() for f in files],
        # absolute, as the inputs: the workbench reads the mapping again from its own working folder
        "mapping": {"path": str(Path(mapping).absolute()), "sha256": _sha256_text(Path(mapping))} if mapping else None,
        "model_uri": model_uri,
        "chunk_rows": options.chunk_rows,
        "lane_shares": list(options.lane_shares) if options.lane_shares else None,
        **settings.as_dict(),
    }))


def _load_pinned_model(ckpt: Checkpoint, fingerprint: dict[str, Any], model_uri: str,
                       load_model: Callable[[str], Any], notes: list[str]) -> tuple[Any, dict[str, Any], bool]:
    """The model version a resumed run pinned at its start, else (fresh) the one ``model_uri`` points to now."""
    state = ckpt.read_state()
    damaged = _unreadable_pins(ckpt) if state is not None else None
    if damaged is not None:
        notes.append(f"discarded checkpoint {ckpt.root}: {damaged}; the run starts afresh")
    elif state is not None and state.get("fingerprint") == fingerprint:
        pinned = state["model"]
        try:
            loaded = load_model(pinned["uri"])
        except Exception as exc:
            if not _version_gone(exc):
                raise
            # deleted since (a bad model rolled back): no resume can ever load it, and each rerun failed
            # with "not found" about an alias that points elsewhere by then
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(f"discarded checkpoint {ckpt.root}: the model version it pinned ({pinned['uri']}) is no "
                         f"longer in the registry ({detail}); the run starts afresh with {model_uri}")
        else:
            if str(loaded.version) != str(pinned["version"]):  # pragma: no cover - a registry rewritten under us
                raise RuntimeError(f"checkpoint pinned {pinned['uri']} but the registry returned version "
                                   f"{loaded.version}")
            notes.append(f"resumed from checkpoint {ckpt.root} (model pinned at {pinned['uri']})")
            return loaded, pinned, False
    elif state is not None:
        notes.append(f"discarded checkpoint {ckpt.root} of a run with other inputs or arguments"
                     f"{_what_changed(state.get('fingerprint'), fingerprint)}")
    elif ckpt.root.exists():
        notes.append(f"discarded checkpoint {ckpt.root}: its state.json is missing, unreadable or of an older layout (a run killed "
                     "while removing it, or a damaged file); the run starts afresh")
    loaded = load_model(model_uri)
    pinned = {"requested_uri": model_uri, "name": loaded.name, "version": str(loaded.version),
              "alias": loaded.alias, "uri": loaded.uri, "run_id": loaded.run_id}
    return loaded, pinned, True


def _version_gone(exc: Exception) -> bool:
    """The registry says the model version does not exist (MLflow's ``RESOURCE_DOES_NOT_EXIST``), as
    opposed to a registry that cannot be reached or an artifact that cannot be read (kept: retried)."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


_FINGERPRINT_NAMES = {"inputs": "the manifest", "mapping": "the mapping", "model_uri": "the model",
                      "chunk_rows": "the chunk size", "profiles": "the profiles' source",
                      "profiles_sha256": "the content of the profiles file"}


def _what_changed(was: Any, now: dict[str, Any]) -> str:
    """`` (changed: the manifest, …)`` naming the fingerprint entries that differ, or nothing."""
    if not isinstance(was, dict):
        return ""
    changed = [_FINGERPRINT_NAMES.get(k, k.replace("_", " ")) for k in sorted(set(was) | set(now))
               if was.get(k) != now.get(k)]
    return f" (changed: {', '.join(changed)})" if changed else ""


def _unreadable_pins(ckpt: Checkpoint) -> str | None:
    """What is wrong with the profiles a checkpoint pinned (its profiles.json), or None."""
    try:
        ckpt.read_profiles()
    except (OSError, ValueError) as exc:
        return f"its profiles.json cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def _pinned_profiles(ckpt: Checkpoint, given: PinnedRules | None, notes: list[str]) -> PinnedRules | None:
    """A resumed run applies the profile versions pinned at its start, not the ones current now."""
    doc = ckpt.read_profiles() if given is not None else None
    if given is None or doc is None:
        return given
    try:
        pinned = PinnedRules.from_state(doc, given)
    except LookupError as exc:
        raise CheckpointError(f"cannot resume from checkpoint {ckpt.root}: {exc}; remove it to start the run "
                              "afresh") from None
    if pinned.describe() != given.describe():
        notes.append(f"the profiles changed since the run started; it keeps the {len(pinned.profiles)} profile "
                     "version(s) pinned at its start")
    return pinned


def _remove_leftovers(ckpt: Checkpoint, paths: OutputPaths) -> None:
    """Temporaries of a run killed mid-write (in the checkpoint, or next to the final files mid-rename)."""
    ckpt.clean_temporaries()
    for final in (paths.out, paths.csv, paths.rejects, paths.meta):
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            stale.unlink(missing_ok=True)


def _score_chunks(work: ChunkWork, ckpt: Checkpoint, files: list[InputFile], options: BatchOptions,
                  progress: ProgressHook | None) -> tuple[list[tuple[int, int]], int]:
    """Pass 1: every chunk not yet in the checkpoint scored to its part; returns (parts, rows read now)."""
    parts = ckpt.pass1_parts()
    if parts is not None:
        return parts, 0
    rows_read = 0
    total = None if any(f.rows_estimate is None for f in files) else sum(f.rows_estimate or 0 for f in files)
    if progress is not None:
        progress.start(total, sum(ckpt.chunk_stats(f, c)["rows"] for f, c in ckpt.parts()))

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
        elif options.pipelined and work.model.num_threads >= 2:
            run_local_pipelined(work, ckpt, files, on_chunk)
        else:
            run_local(work, ckpt, files, on_chunk)
    finally:
        if progress is not None:
            progress.stop()
    parts = ckpt.parts()
    ckpt.mark_pass1_done(parts)
    return parts, rows_read


def _run_metadata(pinned: dict[str, Any], model: Any, files: list[InputFile], fingerprint: dict[str, Any],
                  options: BatchOptions, settings: ChunkSettings) -> dict[str, Any]:
    """What the output's footer and ``.meta.json`` record: model, input digests, options, columns."""
    return {
        "model": {k: pinned[k] for k in ("name", "version", "alias", "uri", "run_id", "requested_uri")},
        "model_metadata": {k: v for k, v in model.metadata.items() if isinstance(v, str | int | float | bool)},
        "input": {"sha256": manifest_digest(files), "files": [f.as_dict() for f in files]},
        "mapping": fingerprint["mapping"],
        "options": {"capacity": options.capacity, "random_share": options.random_share, "seed": options.seed,
                    "chunk_rows": options.chunk_rows, **settings.as_dict()},
        "reasons": REASONS_NOTE[options.reasons_for],
        "columns": OUTPUT_COLUMNS,
    }


def _score_and_publish(model: Any, pinned: dict[str, Any], ckpt: Checkpoint, files: list[InputFile],
                       paths: OutputPaths, options: BatchOptions, settings: ChunkSettings, col_map: Any,
                       fingerprint: dict[str, Any], progress: ProgressHook | None,
                       notes: list[str], profiles: PinnedRules | None = None) -> BatchSummary:
    """Both passes; the final files are left as temporaries (``summary.pending``) for :func:`_publish`."""
    _remove_leftovers(ckpt, paths)
    if options.lane_shares is not None:
        settings = dataclasses.replace(settings, thresholds=thresholds_at_shares(model.reference_scores,
                                                                                 *options.lane_shares))
    if options.num_threads is not None:
        model.num_threads = options.num_threads
    for problem in ckpt.drop_unreadable():  # truncated, damaged or missing: scored again like a chunk not done
        notes.append(f"checkpoint {ckpt.root}: {problem}; that chunk is scored again")
    chunks_resumed = len(ckpt.parts())
    applied = profiles if profiles is not None and not profiles.empty else None
    work = ChunkWork(model, settings, col_map, options.chunk_rows, applied.ruleset if applied else None)
    metadata = _run_metadata(pinned, model, files, fingerprint, options, settings)
    if applied is not None:  # the footer names the versions applied (a set that cannot fire leaves it as before)
        metadata["profiles"] = applied.describe()
        metadata["columns"] = {**metadata["columns"], **RULE_COLUMNS}
    rows_read, rescored = 0, set()
    while True:
        parts, rows = _score_chunks(work, ckpt, files, options, progress)
        rows_read += rows
        try:
            counts, pending = write_outputs(ckpt, parts, files, paths, capacity=options.capacity,
                                            random_share=options.random_share, seed=options.seed,
                                            with_reasons=options.reasons_for != "none",
                                            write_csv=options.write_csv, metadata=metadata,
                                            alerting=applied.alerting if applied else None)
            break
        except PartUnreadable as exc:  # its footer was fine, its rows are not: scored again, then pass 2 again
            key = (exc.file_index, exc.chunk)
            if key in rescored:
                raise CheckpointError(f"checkpoint {ckpt.root}: {exc}, again after the chunk was scored again: "
                                      "the disk may be failing; remove the checkpoint to start afresh") from None
            rescored.add(key)
            ckpt.drop_chunk(*key)
            notes.append(f"checkpoint {ckpt.root}: {exc}; that chunk is scored again")
    summary = BatchSummary(paths, counts, metadata["model"], metadata["input"]["sha256"], options.reasons_for,
                           0.0, rows_read, chunks_resumed, len(parts), notes, profiles=profiles)
    summary.metadata = {**metadata, "engine": options.engine,
                        "profiles": profiles.describe() if profiles is not None else None}
    summary.pending = pending
    return summary


def _publish(ckpt: Checkpoint, paths: OutputPaths, summary: BatchSummary, started: str) -> None:
    """The run's ``.meta.json`` beside the other temporaries, then all renamed, the scores last; a rename
    that fails puts back the files replaced before it (:func:`publish_outputs`). A run that scored nothing
    publishes its rejects only: an earlier run's output at ``--out`` is left as it was."""
    if summary.counts.rows_scored == 0:
        # nothing scored (a header only, every row rejected): last night's scores and their .meta.json stay as
        # they were (an empty output replaced them); tonight's rejects are published, to be read
        keep = [pair for pair in summary.pending if pair[1] == paths.rejects]
        for tmp, _ in summary.pending:
            if (tmp, paths.rejects) not in keep:
                tmp.unlink(missing_ok=True)
        summary.pending = keep
        if keep:
            try:
                publish_outputs(keep, ckpt.root)
            except OSError as exc:
                keep[0][0].unlink(missing_ok=True)
                raise _write_failed(exc, ckpt, paths, exc.published if isinstance(exc, PublishError) else None) from exc
        return
    meta_tmp = temp_path(ckpt.root, paths.meta)
    try:
        write_json(meta_tmp, {**summary.metadata, "summary": summary.as_dict(), "started": started,
                              "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        scores = [pair for pair in summary.pending if pair[1] == paths.out]
        others = [pair for pair in summary.pending if pair[1] != paths.out]
        publish_outputs(others + [(meta_tmp, paths.meta)] + scores, ckpt.root)
    except OSError as exc:
        for tmp, _ in [*summary.pending, (meta_tmp, paths.meta)]:
            tmp.unlink(missing_ok=True)
        raise _write_failed(exc, ckpt, paths, exc.published if isinstance(exc, PublishError) else None) from exc


def _write_failed(exc: OSError, ckpt: Checkpoint, paths: OutputPaths, published: str | None = None) -> BatchWriteError:
    """The failure, what was (not) published (``published``; default: nothing) and the remedy for its errno."""
    reason, remedy = write_problem(exc)
    kept = len(ckpt.parts()) if ckpt.root.is_dir() else 0
    return BatchWriteError(
        f"writing failed: {reason}. {published or f'Nothing was published at {paths.out}.'} "
        + (f"The {kept} chunk(s) scored so far are kept in {ckpt.root}: {remedy}, then run the same command "
           "again to resume." if kept else f"{remedy[0].upper()}{remedy[1:]}, then run the same command again."))
