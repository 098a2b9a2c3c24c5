"""Scoring one chunk: map → validate → score (the API's routine) → part tables.

The same function runs in the local engine and inside Spark tasks, so both write identical parts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batch._input import CSV_SUFFIXES
from features import carry_dictionaries
from features.contracts import DECLARATION, normalize_table
from features.mapping import ColumnMapping
from profiles import RuleSet
from profiles.decide import decide_rules
from scoring import LaneThresholds, ReasonsFor, RiskModel, score_table
from scoring.ranking import LANES


class ManifestError(ValueError):
    """The manifest cannot be scored as a whole (a file misses a required column, a bad mapping…)."""


PART_SCHEMA = pa.schema([
    ("_file", pa.int32()),
    ("_row", pa.int64()),
    ("declaration_id", pa.string()),
    ("risk_score", pa.float64()),
    ("percentile", pa.float64()),
    ("lane", pa.string()),
    ("reasons", pa.string()),
])

# with risk profiles, a part also says whether a rule selects the item or raises an alert, and why
RULE_HIT_TYPE = pa.list_(pa.struct([("kind", pa.string()), ("id", pa.string()), ("version", pa.int64()),
                                    ("criterion", pa.string())]))
RULE_PART_FIELDS = [("rule_select", pa.bool_()), ("rule_alert", pa.bool_()), ("rule_hits", RULE_HIT_TYPE)]


def part_schema(with_rules: bool) -> pa.Schema:
    return pa.schema(list(PART_SCHEMA) + [pa.field(n, t) for n, t in RULE_PART_FIELDS]) if with_rules else PART_SCHEMA


REJECT_SCHEMA = pa.schema([
    ("source", pa.string()),
    ("row", pa.int64()),
    ("declaration_id", pa.string()),
    ("column", pa.string()),
    ("value", pa.string()),
    ("reason", pa.string()),
])


@dataclass(frozen=True)
class ChunkSettings:
    """What a chunk's result depends on besides its rows (part of the checkpoint fingerprint)."""

    thresholds: LaneThresholds
    reasons_for: ReasonsFor = "flagged"
    top_k: int = 4

    def as_dict(self) -> dict[str, Any]:
        return {"lane_red": self.thresholds.red, "lane_yellow": self.thresholds.yellow,
                "reasons_for": self.reasons_for, "top_k": self.top_k}


@dataclass
class ChunkResult:
    scored: pa.Table  # PART_SCHEMA
    rejects: pa.Table  # REJECT_SCHEMA
    rows_in: int
    rows_rejected: int


def use_system_arrow_pool() -> None:
    """Arrow's buffers from the C library's allocator, unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one.
    pyarrow's default (mimalloc) hands each chunk's freed pages back to the system and faults them in
    again for the next: per 1 M rows, 1.1 s of system time against 0.5 s, a run 4 % longer and 110 MiB
    more at its peak (five alternating runs each; jemalloc measured like the system's). Process-wide
    and idempotent (every engine calls it: the run, each worker process, each Spark task); buffers
    allocated before are still freed by their own pool."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return str(v)


_LANE_ARRAY = pa.array(LANES, pa.string())


def lane_array(lane: Any) -> pa.Array:
    """Lanes (numpy text or objects) as Arrow strings: a take from the three names instead of a
    Python string per row (14 → 3 ms per 100k rows); anything else is converted as it is."""
    lane = np.asarray(lane)
    codes = np.full(len(lane), -1, dtype=np.int8)
    for i, name in enumerate(LANES):
        codes[lane == name] = i
    if (codes < 0).any():
        return pa.array(np.asarray(lane, dtype=object), pa.string())
    return _LANE_ARRAY.take(pa.array(codes))


_SEPARATORS = (",", ";", "\t", "|")


def _refuse_swallowed_rows(read: pd.DataFrame, rejected: np.ndarray, source: str, row_offset: int) -> None:
    """A CSV value (of a rejected row, as read) running over lines that each hold as many separators as a
    whole row: a quote left open (``"import,``) made the reader take every line up to the next quote as
    that one value, and those declarations were neither scored nor rejected (exit 0, "rejected 1").
    Raises :class:`ManifestError` naming the row and column. Only rejected rows are looked at (the
    swallowed text breaks the contract: too long, or the fields after it shifted), so it costs nothing
    on a clean manifest; a value with a line break but no row in it (a description) is left alone."""
    if not len(read.columns):
        return
    whole_row = len(read.columns) - 1  # separators in a line of the file
    rows = read.iloc[rejected]
    for column in rows.columns:
        values = rows[column]
        if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
            continue
        for pos, value in zip(rejected, values, strict=True):
            if not isinstance(value, str) or "\n" not in value:
                continue
            lines = value.splitlines()
            swallowed = sum(max(line.count(s) for s in _SEPARATORS) >= whole_row for line in lines[1:])
            if swallowed:
                raise ManifestError(
                    f"{source}: row {row_offset + int(pos) + 1}: its {column} value runs over {len(lines)} lines, "
                    f"{swallowed} of them as long as a whole row: a quote left open there (\"{lines[0][:20]}…) "
                    f"took the rows after it into one value, and they would not be scored. Close the quote (or "
                    "remove it) and run again")


def score_chunk(raw: pd.DataFrame, *, model: RiskModel, settings: ChunkSettings, file_index: int, source: str,
                row_offset: int, mapping: ColumnMapping | None = None, rules: RuleSet | None = None) -> ChunkResult:
    """Score the rows of one chunk; rows that break the contract go to the rejects, with every problem.

    With ``rules`` (the run's pinned profiles), the chunk's matches and lanes come from
    :func:`profiles.decide.decide_rules`, as in the API; the selection waits for the whole manifest."""
    read = raw
    if mapping is not None:
        raw = mapping.apply(raw, labels=False)  # a score reads no label: tonight's rows have none
    frame, report = normalize_table(raw, DECLARATION, source=source, row_offset=row_offset)
    whole_file = [p for p in report.problems if p.row is None]
    if whole_file:
        raise ManifestError("; ".join(str(p) for p in whole_file))
    n = len(frame)
    row_numbers = np.arange(1, n + 1, dtype=np.int64) + row_offset
    bad = np.isin(row_numbers, np.fromiter(report.bad_rows, dtype=np.int64, count=len(report.bad_rows)))
    if bad.any() and source.lower().endswith(CSV_SUFFIXES):
        _refuse_swallowed_rows(read, np.flatnonzero(bad), source, row_offset)
    rows = [int(p.row or 0) for p in report.problems]  # every problem left has a row (whole-file ones raised)
    ids_in = frame["declaration_id"].iloc[np.asarray(rows, dtype=np.int64) - row_offset - 1].astype(object).to_numpy()
    rejects = pa.table({
        "source": pa.array([source] * len(report.problems), pa.string()),
        "row": pa.array(rows, pa.int64()),
        "declaration_id": pa.array([_text(v) for v in ids_in], pa.string()),
        "column": pa.array([p.column for p in report.problems], pa.string()),
        "value": pa.array([_text(p.value) for p in report.problems], pa.string()),
        "reason": pa.array([f"expected {p.expected}" for p in report.problems], pa.string()),
    }, schema=REJECT_SCHEMA)
    good = frame.loc[~bad] if bad.any() else frame
    carry_dictionaries(raw, good)  # the reader's Parquet dictionaries, used where a column is unchanged
    if len(good):
        st = score_table(model, good, settings.thresholds, reasons_for=settings.reasons_for,
                         top_k=settings.top_k, with_unseen=False)
        reasons = (pa.nulls(len(st), pa.string()) if settings.reasons_for == "none" else
                   [None if r is None else json.dumps([x.as_dict() for x in r], ensure_ascii=False)
                    for r in st.reasons])
        ids = st.ids_arrow()
        risk, pct, lane = st.risk_score, st.percentile, st.lane
    else:
        reasons, ids = [], pa.array([], pa.string())
        risk, pct, lane = np.zeros(0), np.zeros(0), np.zeros(0, dtype=object)
    cols: dict[str, Any] = {
        "_file": pa.array(np.full(len(good), file_index, dtype=np.int32)),
        "_row": pa.array(row_numbers[~bad]),
        "declaration_id": ids,
        "risk_score": pa.array(np.asarray(risk, dtype=np.float64)),
        "percentile": pa.array(np.asarray(pct, dtype=np.float64)),
        "lane": lane_array(lane) if rules is None else None,  # with rules: the lanes after them, below
        "reasons": reasons if isinstance(reasons, pa.Array) else pa.array(reasons, pa.string()),
    }
    if rules is not None:
        # the columns the model scored: their key columns are factorized once, for the features and the rules
        decided = decide_rules(good, np.asarray(risk, dtype=np.float64), np.asarray(lane), rules,
                               scored=st.columns if len(good) else None)
        cols["lane"] = lane_array(decided.lane)
        cols["rule_select"] = pa.array(decided.select, pa.bool_())
        cols["rule_alert"] = pa.array(decided.alert, pa.bool_())
        cols["rule_hits"] = decided.matches.rule_hits_arrow().cast(RULE_HIT_TYPE)
    scored = pa.table(cols, schema=part_schema(rules is not None))
    return ChunkResult(scored, rejects, n, int(bad.sum()))
