"""Pass 2: global rank and selection over all parts, then the final files, written atomically."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batch._checkpoint import Checkpoint
from batch._chunk import REJECT_SCHEMA
from batch._input import InputFile
from batch._rank import first_occurrence, id_codes, select_manifest
from scoring.ranking import SELECTION_NAMES

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


def output_schema(with_reasons: bool) -> pa.Schema:
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
    return pa.schema(fields)


def _tmp(folder: Path, path: Path) -> Path:
    """Temporaries live in the checkpoint folder (same filesystem: rename is atomic; removed with it)."""
    return folder / f".out-{path.name}.tmp-{os.getpid()}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_outputs(ckpt: Checkpoint, parts: list[tuple[int, int]], files: list[InputFile], paths: OutputPaths,
                  *, capacity: str | int | float, random_share: float, seed: int, with_reasons: bool,
                  write_csv: bool, metadata: dict[str, Any],
                  before_rename: Callable[[], None] | None = None) -> OutputCounts:
    """Rank and select over every part, write the final files to temporaries, then rename them."""
    # ---- the two small columns, for the whole manifest ---------------------------------------
    id_chunks: list[pa.ChunkedArray] = []
    risk_chunks: list[np.ndarray] = []
    lengths: list[int] = []
    for f, c in parts:
        t = pq.read_table(ckpt.part_path(f, c), columns=["declaration_id", "risk_score"])
        id_chunks.append(t.column("declaration_id").cast(pa.large_string()))
        risk_chunks.append(t.column("risk_score").to_numpy())
        lengths.append(t.num_rows)
    n_all = sum(lengths)
    ids = pa.chunked_array([ch for a in id_chunks for ch in a.chunks], type=pa.large_string())
    del id_chunks
    codes = id_codes(ids.combine_chunks() if n_all else pa.array([], pa.large_string()))
    del ids
    risk = np.concatenate(risk_chunks) if risk_chunks else np.zeros(0)
    del risk_chunks
    keep = first_occurrence(codes)
    all_kept = bool(keep.all())
    # without duplicates (the usual case) no filtered copies: at 10 M rows that saves ~250 MiB
    sel = (select_manifest(risk, codes, capacity, random_share, seed) if all_kept
           else select_manifest(risk[keep], codes[keep], capacity, random_share, seed))
    del risk
    kept_index = None if all_kept else np.cumsum(keep) - 1
    dup_code_first: dict[int, tuple[str, int]] = {}  # code → (source, row) of its first occurrence
    dup_codes = set(codes[~keep].tolist())

    # ---- write -----------------------------------------------------------------------------
    schema = output_schema(with_reasons).with_metadata(
        {METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str)})
    sources = {f.index: str(f.path) for f in files}
    counts = OutputCounts()
    lanes: Counter[str] = Counter()
    tmp_out, tmp_csv, tmp_rej = (_tmp(ckpt.root, p) for p in (paths.out, paths.csv, paths.rejects))
    writer = pq.ParquetWriter(tmp_out, schema, compression="zstd")
    csv_writer = pacsv.CSVWriter(tmp_csv, schema.remove_metadata()) if write_csv else None
    rej_writer = pacsv.CSVWriter(tmp_rej, REJECT_SCHEMA)
    try:
        off = 0
        for (f, c), n in zip(parts, lengths, strict=True):
            part = pq.read_table(ckpt.part_path(f, c))
            k = keep[off:off + n]
            pcodes = codes[off:off + n]
            rejects = pq.read_table(ckpt.rejects_path(f, c))
            counts.problems += rejects.num_rows
            counts.rows_rejected += ckpt.chunk_stats(f, c)["rejected"]
            src = sources[f]
            rows = part.column("_row").to_numpy()
            if dup_codes:
                for i in np.flatnonzero(np.isin(pcodes, list(dup_codes))):
                    code = int(pcodes[i])
                    if k[i]:
                        dup_code_first[code] = (src, int(rows[i]))
            if not k.all():
                drop = np.flatnonzero(~k)
                first = [dup_code_first[int(pcodes[i])] for i in drop]
                dup_ids = part.column("declaration_id").take(pa.array(drop))
                extra = pa.table({
                    "source": pa.array([src] * len(drop), pa.string()),
                    "row": pa.array(rows[drop]),
                    "declaration_id": dup_ids,
                    "column": pa.array(["declaration_id"] * len(drop), pa.string()),
                    "value": dup_ids,
                    "reason": pa.array([f"expected a unique key (duplicate of {s} row {r})" for s, r in first],
                                       pa.string()),
                }, schema=REJECT_SCHEMA)
                rejects = pa.concat_tables([rejects, extra])
                counts.duplicates += len(drop)
                counts.rows_rejected += len(drop)
                counts.problems += len(drop)
                part = part.filter(pa.array(k))
            if rejects.num_rows:
                rej_writer.write_table(rejects)
            gi = np.arange(off, off + n) if kept_index is None else kept_index[off:off + n][k]
            sel_names = np.asarray(SELECTION_NAMES, dtype=object)[sel.selection[gi]]
            cols: dict[str, Any] = {
                "declaration_id": part.column("declaration_id"),
                "risk_score": part.column("risk_score"),
                "rank": pa.array(sel.rank[gi]),
                "lane": part.column("lane"),
                "selection": pa.array(sel_names, pa.string()),
                "selection_probability": pa.array(sel.probability[gi]),
                "percentile": part.column("percentile"),
                "manifest_percentile": pa.array(sel.manifest_percentile[gi]),
            }
            if with_reasons:
                cols["reasons"] = part.column("reasons")
                counts.reasons_given += part.num_rows - part.column("reasons").null_count
            cols["source_file"] = pa.array([src] * part.num_rows, pa.string())
            cols["source_row"] = part.column("_row")
            table = pa.table(cols, schema=schema)
            writer.write_table(table)
            if csv_writer is not None:
                csv_writer.write_table(table.replace_schema_metadata(None))
            lanes.update({str(v["values"]): int(v["counts"]) for v in pc.value_counts(part.column("lane")).to_pylist()})
            counts.rows_scored += part.num_rows
            off += n
    finally:
        writer.close()
        rej_writer.close()
        if csv_writer is not None:
            csv_writer.close()
    counts.lanes = {lane: lanes.get(lane, 0) for lane in ("red", "yellow", "green")}
    counts.selection = {name: int((sel.selection == i).sum()) for i, name in enumerate(SELECTION_NAMES)}
    renames = [(tmp_rej, paths.rejects), (tmp_out, paths.out)]
    if write_csv:
        renames.insert(0, (tmp_csv, paths.csv))
    for tmp, _ in renames:
        _fsync(tmp)
    if before_rename is not None:
        before_rename()
    for tmp, final in renames:
        os.replace(tmp, final)
    return counts


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The run metadata stored in a batch output's Parquet footer."""
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[METADATA_KEY.encode()])
