"""Pass 2: global rank and selection over all parts, then the final files, written atomically."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batch._checkpoint import Checkpoint, dictionary_columns
from batch._chunk import REJECT_SCHEMA, RULE_HIT_TYPE
from batch._input import InputFile
from batch._rank import first_occurrence, id_codes, select_manifest
from features.io import spreadsheet_table
from scoring.ranking import LANES, RULE_SELECTION_NAMES, SELECTION_NAMES

METADATA_KEY = "riskprof"


@dataclass(frozen=True)
class OutputPaths:
    """``--out scores.parquet`` → scores.parquet, scores.csv, scores.rejects.csv, scores.meta.json."""

    out: Path

    @property
    def base(self) -> Path:
        o = self.out
        return o.with_suffix("") if o.suffix.lower() in (".parquet", ".pq") else o

    def _sibling(self, suffix: str) -> Path:
        return self.base.with_name(self.base.name + suffix)

    @property
    def csv(self) -> Path:
        return self._sibling(".csv")

    @property
    def rejects(self) -> Path:
        return self._sibling(".rejects.csv")

    @property
    def meta(self) -> Path:
        return self._sibling(".meta.json")

    @property
    def checkpoint(self) -> Path:
        return self._sibling(".ckpt")


@dataclass
class OutputCounts:
    rows_scored: int = 0
    rows_rejected: int = 0
    duplicates: int = 0
    problems: int = 0
    lanes: dict[str, int] = field(default_factory=dict)
    selection: dict[str, int] = field(default_factory=dict)
    reasons_given: int = 0
    rule_hit_items: int = 0  # items at least one risk profile or watch list matched
    alert_parts: list[pa.Table] = field(default_factory=list, repr=False)  # ALERT_SCHEMA, part by part

    @property
    def alert_table(self) -> pa.Table:
        """One row per item and alerting rule version (``ALERT_SCHEMA``), items in output order: what
        ``ProfileStore.create_alerts`` inserts, column by column."""
        return pa.concat_tables(self.alert_parts) if self.alert_parts else ALERT_SCHEMA.empty_table()

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts as records (``profiles.decide.alert_records``' fields), built on each access."""
        return self.alert_table.to_pylist()


ALERT_SCHEMA = pa.schema([("declaration_id", pa.string()), ("kind", pa.string()), ("rule_id", pa.string()),
                          ("version", pa.int64()), ("criterion", pa.string()), ("risk_score", pa.float64()),
                          ("lane", pa.string()), ("source", pa.string())])


def output_schema(with_reasons: bool, with_rules: bool = False) -> pa.Schema:
    fields = [
        ("declaration_id", pa.string()),
        ("risk_score", pa.float64()),
        ("rank", pa.int64()),
        ("lane", pa.string()),
        ("selection", pa.string()),
        ("selection_probability", pa.float64()),
        ("percentile", pa.float64()),
        ("manifest_percentile", pa.float64()),
    ]
    if with_reasons:
        fields.append(("reasons", pa.string()))
    fields += [("source_file", pa.string()), ("source_row", pa.int64())]
    if with_rules:
        fields.append(("rule_hits", RULE_HIT_TYPE))
    return pa.schema(fields)


def temp_path(folder: Path, path: Path) -> Path:
    """Temporaries live in the checkpoint folder (same filesystem: rename is atomic; removed with it)."""
    return folder / f".out-{path.name}.tmp-{os.getpid()}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _ManifestRanking:
    """Rank and selection of the whole manifest, computed from two small columns (id, risk)."""

    lengths: list[int]  # rows of each part, in part order
    codes: np.ndarray  # dense rank of each row's id
    keep: np.ndarray  # first occurrence of its id
    kept_index: np.ndarray | None  # row → position among the kept rows (None: every row kept)
    dup_codes: set[int]
    sel: Any  # ManifestSelection over the kept rows


def _rank_manifest(ckpt: Checkpoint, parts: list[tuple[int, int]], capacity: str | int | float,
                   random_share: float, seed: int, with_rules: bool = False) -> _ManifestRanking:
    id_chunks: list[pa.ChunkedArray] = []
    risk_chunks: list[np.ndarray] = []
    forced_chunks: list[np.ndarray] = []
    lengths: list[int] = []
    for f, c in parts:
        t = ckpt.read_part_columns(f, c, ["declaration_id", "risk_score"] + (["rule_select"] if with_rules else []))
        id_chunks.append(t.column("declaration_id").cast(pa.large_string()))
        risk_chunks.append(t.column("risk_score").to_numpy())
        if with_rules:
            forced_chunks.append(t.column("rule_select").to_numpy(zero_copy_only=False).astype(bool))
        lengths.append(t.num_rows)
    n_all = sum(lengths)
    ids = pa.chunked_array([ch for a in id_chunks for ch in a.chunks], type=pa.large_string())
    del id_chunks
    codes = id_codes(ids.combine_chunks() if n_all else pa.array([], pa.large_string()))
    del ids
    risk = np.concatenate(risk_chunks) if risk_chunks else np.zeros(0)
    del risk_chunks
    forced = (np.concatenate(forced_chunks) if forced_chunks else np.zeros(0, dtype=bool)) if with_rules else None
    del forced_chunks
    keep = first_occurrence(codes)
    all_kept = bool(keep.all())
    # without duplicates (the usual case) no filtered copies: at 10 M rows that saves ~250 MiB
    # the kept rows' dense id codes are 1..k, one each: no need to check that again
    sel = (select_manifest(risk, codes, capacity, random_share, seed, forced, distinct_codes=True) if all_kept
           else select_manifest(risk[keep], codes[keep], capacity, random_share, seed,
                                None if forced is None else forced[keep], distinct_codes=True))
    return _ManifestRanking(lengths, codes, keep, None if all_kept else np.cumsum(keep) - 1,
                            set(codes[~keep].tolist()), sel)


def _duplicate_rejects(part: pa.Table, k: np.ndarray, pcodes: np.ndarray, rows: np.ndarray, src: str,
                       dup_code_first: dict[int, tuple[str, int]]) -> pa.Table:
    """Reject rows of later duplicates of an id, naming the first occurrence (source, row)."""
    drop = np.flatnonzero(~k)
    first = [dup_code_first[int(pcodes[i])] for i in drop]
    dup_ids = part.column("declaration_id").take(pa.array(drop))
    return pa.table({
        "source": pa.array([src] * len(drop), pa.string()),
        "row": pa.array(rows[drop]),
        "declaration_id": dup_ids,
        "column": pa.array(["declaration_id"] * len(drop), pa.string()),
        "value": dup_ids,
        "reason": pa.array([f"expected a unique key (duplicate of {s} row {r})" for s, r in first], pa.string()),
    }, schema=REJECT_SCHEMA)


_SELECTION_NAMES = pa.array(RULE_SELECTION_NAMES, pa.string())  # by selection code (a prefix: SELECTION_NAMES)


def _output_table(part: pa.Table, gi: np.ndarray, sel: Any, schema: pa.Schema, src: str,
                  with_reasons: bool) -> pa.Table:
    """A part's kept rows with their manifest-wide rank and selection (``gi``: their kept positions)."""
    cols: dict[str, Any] = {
        "declaration_id": part.column("declaration_id"),
        "risk_score": part.column("risk_score"),
        "rank": pa.array(sel.rank[gi]),
        "lane": part.column("lane"),
        "selection": _SELECTION_NAMES.take(pa.array(sel.selection[gi])),
        "selection_probability": pa.array(sel.probability[gi]),
        "percentile": part.column("percentile"),
        "manifest_percentile": pa.array(sel.manifest_percentile[gi]),
    }
    if with_reasons:
        cols["reasons"] = part.column("reasons")
    cols["source_file"] = pa.repeat(pa.scalar(src, pa.string()), part.num_rows)
    cols["source_row"] = part.column("_row")
    if "rule_hits" in schema.names:
        cols["rule_hits"] = part.column("rule_hits")
    return pa.table(cols, schema=schema)


_KEY_SEP = "\x1f"  # between kind, id and version in a rule version's key (kinds are plain words)


def alerting_keys(alerting: frozenset[tuple[str, str, int]]) -> pa.Array:
    """The alerting rule versions as text keys, for :func:`_alerts`' ``is_in``."""
    return pa.array(sorted(_KEY_SEP.join((k, i, str(v))) for k, i, v in alerting), pa.string())



def _alerts(part: pa.Table, keys: pa.Array) -> pa.Table:
    """One alert per item and alerting rule version it matched (``keys``: :func:`alerting_keys`), items
    and their hits in order, as ``profiles.decide.alert_records`` gives them for the API (which needs
    the chunk's decision; here the written part is read instead, so a duplicate id rejected in pass 2
    raises no alert). The flagged items' hits are flattened and filtered by Arrow, and the alerts stay
    columns (``ALERT_SCHEMA``): a dict per alert cost ~6 ms per 100k-row part with ~5,000 alerts."""
    flagged = part.select(["declaration_id", "risk_score", "lane", "rule_hits"]).filter(part.column("rule_alert"))
    if not flagged.num_rows:
        return ALERT_SCHEMA.empty_table()
    hits = flagged.column("rule_hits").combine_chunks()
    flat = pc.list_flatten(hits)
    kind, rid, version, criterion = (flat.field(n) for n in ("kind", "id", "version", "criterion"))
    key = pc.binary_join_element_wise(kind, rid, pc.cast(version, pa.string()), _KEY_SEP)
    hit = pc.is_in(key, value_set=keys)
    rows = pc.filter(pc.list_parent_indices(hits), hit)
    n = int(pc.sum(hit).as_py() or 0)
    return pa.table([flagged.column("declaration_id").take(rows), pc.filter(kind, hit), pc.filter(rid, hit),
                     pc.filter(version, hit), pc.filter(criterion, hit), flagged.column("risk_score").take(rows),
                     flagged.column("lane").take(rows), pa.repeat(pa.scalar("batch"), n)], schema=ALERT_SCHEMA)


class _Writers:
    """The output files' writers, on temporaries in the checkpoint folder (removed on failure)."""

    def __init__(self, ckpt: Checkpoint, paths: OutputPaths, schema: pa.Schema, write_csv: bool):
        self.out, self.csv, self.rejects = (temp_path(ckpt.root, p) for p in (paths.out, paths.csv, paths.rejects))
        self.parquet: pq.ParquetWriter | None = None
        self.csv_writer: pacsv.CSVWriter | None = None
        self.rej_writer: pacsv.CSVWriter | None = None
        # writes run on a thread (Arrow encodes and compresses without the GIL) while the next part is
        # read and ranked; at most one is pending, so one more part stays in memory
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="riskprof-write")
        self._pending: Future[None] | None = None
        try:  # each writer writes its header at once: on a full disk, opening fails too
            self.parquet = pq.ParquetWriter(self.out, schema, compression="zstd",
                                            use_dictionary=dictionary_columns(schema))
            self.csv_writer = pacsv.CSVWriter(self.csv, schema.remove_metadata()) if write_csv else None
            self.rej_writer = pacsv.CSVWriter(self.rejects, REJECT_SCHEMA)
        except BaseException:
            self.close(failed=True)
            raise

    def write(self, table: pa.Table, rejects: pa.Table) -> None:
        """Queue a part's rows and rejects (a failure of the previous write is raised here, or by ``close``)."""
        self._wait()
        self._pending = self._pool.submit(self._write, table, rejects)

    def _write(self, table: pa.Table, rejects: pa.Table) -> None:
        assert self.parquet is not None and self.rej_writer is not None
        # the CSV files are for people's spreadsheets: no text cell may start a formula (the Parquet keeps
        # every value as it was)
        if rejects.num_rows:
            self.rej_writer.write_table(spreadsheet_table(rejects))
        self.parquet.write_table(table)
        if self.csv_writer is not None:
            self.csv_writer.write_table(spreadsheet_table(table.replace_schema_metadata(None)))

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self, failed: bool) -> None:
        """Finish the pending write, then close every writer (closing flushes, so it too may fail);
        after a failure the temporaries go: a full disk must not stay full of them."""
        try:
            self._wait()
        except BaseException:
            self._pool.shutdown()
            self._close_writers(failed=True)
            if failed:  # the error that failed the run is on its way already
                return
            raise
        self._pool.shutdown()
        self._close_writers(failed)

    def _close_writers(self, failed: bool) -> None:
        errors: list[OSError] = []
        for w in (self.parquet, self.rej_writer, self.csv_writer):
            if w is not None:
                try:
                    w.close()
                except OSError as exc:
                    errors.append(exc)
        if failed or errors:
            for tmp in (self.out, self.csv, self.rejects):
                tmp.unlink(missing_ok=True)
        if errors and not failed:
            raise errors[0]


def _reject_duplicates(part: pa.Table, rejects: pa.Table, keep: np.ndarray, codes: np.ndarray, rows: np.ndarray,
                       src: str, first: dict[int, tuple[str, int]],
                       counts: OutputCounts) -> tuple[pa.Table, pa.Table]:
    """Rows whose declaration id came earlier in the manifest leave the part for the rejects file."""
    rejects = pa.concat_tables([rejects, _duplicate_rejects(part, keep, codes, rows, src, first)])
    n_dup = int((~keep).sum())
    counts.duplicates += n_dup
    counts.rows_rejected += n_dup
    counts.problems += n_dup
    return part.filter(pa.array(keep)), rejects


def _count_rule_hits(part: pa.Table, keys: pa.Array, counts: OutputCounts) -> None:
    counts.rule_hit_items += int(pc.sum(pc.greater(pc.list_value_length(part.column("rule_hits")), 0)).as_py() or 0)
    alerts = _alerts(part, keys)
    if alerts.num_rows:
        counts.alert_parts.append(alerts)


def _read_ahead(ckpt: Checkpoint, parts: list[tuple[int, int]]) -> Generator[tuple[pa.Table, pa.Table], None, None]:
    """Each part with its rejects, the next one read on a thread while this one is written (Arrow
    reads and writes without the GIL): one more part in memory."""
    def read(f: int, c: int) -> tuple[pa.Table, pa.Table]:
        return ckpt.read_part(f, c), ckpt.read_rejects(f, c)

    with ThreadPoolExecutor(1, thread_name_prefix="riskprof-read") as pool:
        ahead = pool.submit(read, *parts[0]) if parts else None
        for i in range(len(parts)):
            assert ahead is not None
            got = ahead.result()
            ahead = pool.submit(read, *parts[i + 1]) if i + 1 < len(parts) else None
            yield got


def write_outputs(ckpt: Checkpoint, parts: list[tuple[int, int]], files: list[InputFile], paths: OutputPaths,
                  *, capacity: str | int | float, random_share: float, seed: int, with_reasons: bool,
                  write_csv: bool, metadata: dict[str, Any],
                  alerting: frozenset[tuple[str, str, int]] | None = None) -> tuple[OutputCounts, list[tuple[Path, Path]]]:
    """Rank and select over every part and write the final files to temporaries.

    ``alerting``: the pinned rules that raise alerts, when the parts carry risk-profile matches (then
    the output has ``rule_hits`` and the counts the alerts to raise). Returns the counts and the
    (temporary, final) pairs for :func:`publish_outputs`: nothing is visible under the final names
    until every file is whole.
    """
    with_rules = alerting is not None
    keys = alerting_keys(alerting) if alerting is not None else None
    r = _rank_manifest(ckpt, parts, capacity, random_share, seed, with_rules)
    schema = output_schema(with_reasons, with_rules).with_metadata(
        {METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str)})
    sources = {f.index: str(f.path) for f in files}
    counts = OutputCounts()
    lanes: Counter[str] = Counter()
    dup_code_first: dict[int, tuple[str, int]] = {}  # code → (source, row) of its first occurrence
    writers = _Writers(ckpt, paths, schema, write_csv)
    reader = _read_ahead(ckpt, parts)
    failed = True
    try:
        off = 0
        for (f, _c), n, (part, rejects) in zip(parts, r.lengths, reader, strict=True):
            k, pcodes = r.keep[off:off + n], r.codes[off:off + n]
            counts.problems += rejects.num_rows
            counts.rows_rejected += json.loads((part.schema.metadata or {})[b"riskprof.chunk"])["rejected"]
            src = sources[f]
            rows = part.column("_row").to_numpy()
            if r.dup_codes:
                for i in np.flatnonzero(np.isin(pcodes, list(r.dup_codes))):
                    if k[i]:
                        dup_code_first[int(pcodes[i])] = (src, int(rows[i]))
            if not k.all():
                part, rejects = _reject_duplicates(part, rejects, k, pcodes, rows, src, dup_code_first, counts)
            gi = np.arange(off, off + n) if r.kept_index is None else r.kept_index[off:off + n][k]
            writers.write(_output_table(part, gi, r.sel, schema, src, with_reasons), rejects)
            if with_reasons:
                counts.reasons_given += part.num_rows - part.column("reasons").null_count
            if keys is not None:
                _count_rule_hits(part, keys, counts)
            lanes.update({str(v["values"]): int(v["counts"]) for v in pc.value_counts(part.column("lane")).to_pylist()})
            counts.rows_scored += part.num_rows
            off += n
        failed = False
    finally:
        reader.close()
        writers.close(failed)
    counts.lanes = {lane: lanes.get(lane, 0) for lane in LANES}
    names = RULE_SELECTION_NAMES if with_rules else SELECTION_NAMES
    counts.selection = {name: int((r.sel.selection == i).sum()) for i, name in enumerate(names)}
    pending = [(writers.rejects, paths.rejects), (writers.out, paths.out)]
    if write_csv:
        pending.insert(0, (writers.csv, paths.csv))
    return counts, pending


class PublishError(OSError):
    """A rename of :func:`publish_outputs` failed; ``published`` says which files are whose now."""

    def __init__(self, cause: OSError, published: str):
        super().__init__(cause.errno, cause.strerror or str(cause), cause.filename)
        self.published = published


def publish_outputs(pending: list[tuple[Path, Path]], keep: Path) -> None:
    """fsync every temporary, then rename each over its final name, in order (the last one, the scores,
    marks the run complete: a reader who sees it sees all the others).

    All or nothing: each earlier file replaced is first kept in the folder ``keep`` (a hard link, else a
    copy); if a rename fails, the files replaced before it are put back (a file new to the folder is
    removed) and :class:`PublishError` says so. A failed publish left the new run's ``.meta.json`` and
    rejects beside the earlier run's scores, and said "Nothing was published"."""
    for tmp, _ in pending:
        _fsync(tmp)
    replaced: list[tuple[Path, Path | None]] = []  # (final, the earlier file kept, or None: there was none)
    kept: list[Path] = []
    final = pending[0][1] if pending else Path()
    try:
        for i, (tmp, final) in enumerate(pending):
            earlier = None
            if i < len(pending) - 1 and final.exists():  # the last rename needs no way back
                earlier = keep / f".earlier-{final.name}"
                kept.append(earlier)
                _keep_copy(final, earlier)
            os.replace(tmp, final)
            replaced.append((final, earlier))
    except OSError as exc:
        raise PublishError(exc, _put_back(replaced, final)) from exc
    finally:
        for earlier in kept:
            earlier.unlink(missing_ok=True)


def _keep_copy(path: Path, copy: Path) -> None:
    copy.unlink(missing_ok=True)
    try:
        os.link(path, copy)
    except OSError:  # no hard links here (or the file is protected): a copy of the bytes
        shutil.copy2(path, copy)


def _put_back(replaced: list[tuple[Path, Path | None]], failed: Path) -> str:
    """Undo the renames of a failed publish, last first; what the folder holds afterwards, in words."""
    stuck: list[str] = []
    for final, earlier in reversed(replaced):
        try:
            if earlier is not None:
                os.replace(earlier, final)
            else:
                final.unlink(missing_ok=True)
        except OSError as exc:
            stuck.append(f"{final.name} ({exc.strerror or exc})")
    if not stuck:
        back = f"; the {len(replaced)} file(s) replaced before it were put back as they were" if replaced else ""
        return f"Nothing was published: {failed} could not be replaced{back}."
    return (f"Published in part: {failed} could not be replaced and putting back the earlier files failed, so "
            f"{', '.join(stuck)} {'is' if len(stuck) == 1 else 'are'} from this run, the other files from the "
            "earlier run.")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The run metadata stored in a batch output's Parquet footer."""
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[METADATA_KEY.encode()])
