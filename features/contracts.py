"""Data contracts for seizures, declarations and outcomes.

Each contract is declared once, as a tuple of :class:`FieldSpec`. Two things are derived from
that one declaration:

* a pydantic model (the API request body of the scoring service), and
* a vectorised table validator (files, CLI, batch scoring) that reports *every* problem with its
  row number, column, bad value and what was expected.

The table validator (:func:`normalize_table`) checks whole columns in Arrow and NumPy: text as one
Arrow array (lengths and bytes read directly, e.g. an HS code of ASCII digits is valid by its
length alone), low-cardinality text once per distinct value, and Python objects only for the rows
that fail. Its results are those of :func:`_reference_normalize_table`, the plain pandas version
it replaced, kept as the oracle of tests/test_contracts_fast.py and the baseline of
benchmarks/validation_speed.py; a new field kind needs a parser in both.

In tables, ``transit_countries`` is a ``|``-separated string of ISO alpha-2 codes ("" = none);
Parquet list columns and API lists are converted to that form on entry.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic import Field as PydField
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from features._kept import kept_dictionary
from features.reference import country_codes

Kind = Literal["id", "str", "date", "country", "countries", "hs", "category", "int", "float", "bool"]

DIRECTIONS = ("import", "export", "transit", "internal")
CONVEYANCES = ("air", "vessel", "vehicle", "mail", "express courier", "rail", "pedestrian", "other")
DETECTION_METHODS = (
    "routine control",
    "risk profiling",
    "intelligence",
    "random selection",
    "x-ray / scanner",
    "detector dog",
    "other",
)
LOCATIONS = ("land border", "airport", "seaport", "mail centre", "inland", "other")
COMMODITY_CATEGORIES = (
    "small arms",
    "light weapons",
    "ammunition",
    "parts and accessories",
    "other weapons",
    "explosives and precursors",
)
WEAPON_TYPES = (
    "semi-automatic pistol",
    "revolver",
    "assault rifle, carbine, military use",
    "shotgun",
    "hunting rifle",
    "submachine gun",
    "machine gun",
    "light weapon",
    "air gun",
    "blank firing gun",
    "gas pistol",
    "imitation hand gun",
    "electric weapon",
    "pepper / CS spray",
    "slash and stab weapon",
    "blunt instrument",
    "other weapon",
)
SELECTION_SOURCES = ("model", "random", "rule", "officer")

MIN_DATE = pd.Timestamp("1990-01-01")
TRANSIT_SEP = "|"


@dataclass(frozen=True)
class FieldSpec:
    """One column of a contract."""

    name: str
    kind: Kind
    required: bool = True  # the column must be present in a file
    nullable: bool = False  # a present column may hold empty values
    vocab: tuple[str, ...] = ()
    strict: bool = True  # unknown vocabulary values are errors (else counted and reported)
    minimum: float | None = None
    maximum: float | None = None
    digits: tuple[int, int] = (6, 10)  # allowed length of an HS code
    max_length: int | None = None  # most characters of a text value (None: the kind's default)
    description: str = ""
    example: Any = None

    @property
    def max_chars(self) -> int | None:
        """Longest text accepted: every text field has a bound, or one value could fill the store."""
        return self.max_length if self.max_length is not None else _MAX_CHARS.get(self.kind)


#: no text value holds a NUL character (U+0000): it is never part of real text, and PostgreSQL's text
#: columns cannot store it (the API's pattern and the file check below say the same)
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL_EXPECTED = "text without a NUL (U+0000) character"
# an id is stored in String(200) columns; the other bounds are generous for real values
_MAX_CHARS: dict[str, int] = {"id": 200, "str": 200, "category": 100, "country": 20, "countries": 200, "hs": 20}
MAX_TRANSIT_COUNTRIES = 50


@dataclass(frozen=True)
class RowRule:
    """A rule across the fields of one record, named by the field it blames.

    ``violated`` takes the columns it ``needs`` as NumPy arrays (numbers as float with NaN for missing,
    anything else as objects with None; see :func:`_rule_columns`) and returns a boolean array, True
    where a row breaks the rule. The file validator passes whole columns; the API all items of a
    request at once (plain arrays, so one outcome costs microseconds, not a DataFrame).
    """

    field: str
    expected: str
    needs: tuple[str, ...]
    violated: Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Contract:
    name: str
    key: str
    date_field: str
    fields: tuple[FieldSpec, ...]
    extra_allowed: bool = False  # carry unknown columns through (declarations)
    derived: tuple[str, ...] = field(default=())
    rules: tuple[RowRule, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def spec(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


SEIZURE = Contract(
    name="seizure",
    key="seizure_id",
    date_field="event_date",
    derived=("region",),
    fields=(
        FieldSpec("case_id", "id", description="one enforcement event", example="C2023-000001"),
        FieldSpec("seizure_id", "id", description="one commodity within a case", example="S2023-000001-1"),
        FieldSpec("event_date", "date", description="date of the seizure", example="2023-04-10"),
        FieldSpec("reported_date", "date", required=False, nullable=True,
                  description="when the seizure became known to the service (defaults to event_date)"),
        FieldSpec("reporting_country", "country", description="ISO 3166 alpha-2", example="AL"),
        FieldSpec("region", "category", required=False, nullable=True,
                  description="report region of the reporting country (derived when absent)"),
        FieldSpec("direction", "category", vocab=DIRECTIONS, example="export"),
        FieldSpec("departure_country", "country", nullable=True, description="empty = unknown", example="AL"),
        FieldSpec("destination_country", "country", nullable=True, description="empty = unknown", example="GB"),
        FieldSpec("transit_countries", "countries", required=False, nullable=True, example=""),
        FieldSpec("conveyance", "category", vocab=CONVEYANCES, example="mail"),
        FieldSpec("detection_method", "category", vocab=DETECTION_METHODS, example="x-ray / scanner"),
        FieldSpec("detection_location", "category", vocab=LOCATIONS, example="land border"),
        FieldSpec("commodity_category", "category", vocab=COMMODITY_CATEGORIES, example="small arms"),
        FieldSpec("weapon_type", "category", nullable=True, vocab=WEAPON_TYPES, example="semi-automatic pistol"),
        FieldSpec("quantity", "float", minimum=0, example=8),
        FieldSpec("declared_hs_code", "hs", required=False, nullable=True, digits=(4, 10), example="9403"),
        FieldSpec("declared_description", "str", required=False, nullable=True, max_length=1000,
                  example="second-hand table"),
        FieldSpec("concealment", "str", required=False, nullable=True, max_length=1000, example="inside furniture"),
    ),
)

DECLARATION = Contract(
    name="declaration",
    key="declaration_id",
    date_field="declaration_date",
    extra_allowed=True,
    fields=(
        FieldSpec("declaration_id", "id", example="D0000001"),
        FieldSpec("declaration_date", "date", example="2023-06-01"),
        FieldSpec("direction", "category", required=False, nullable=True, vocab=DIRECTIONS, strict=False,
                  example="import"),
        FieldSpec("office_id", "str", required=False, nullable=True, example="YE-ADE"),
        FieldSpec("office_type", "category", required=False, nullable=True, vocab=LOCATIONS, strict=False,
                  example="seaport"),
        FieldSpec("importer_id", "str", required=False, nullable=True, example="IMP000123"),
        FieldSpec("declarant_id", "str", required=False, nullable=True, example="DCL0042"),
        FieldSpec("origin_country", "country", required=False, nullable=True, example="CN"),
        FieldSpec("departure_country", "country", required=False, nullable=True, example="CN"),
        FieldSpec("transit_countries", "countries", required=False, nullable=True, example="AE"),
        FieldSpec("destination_country", "country", required=False, nullable=True, example="YE"),
        FieldSpec("conveyance", "category", required=False, nullable=True, vocab=CONVEYANCES, strict=False,
                  example="vessel"),
        FieldSpec("hs_code", "hs", description="6 to 10 digits, leading zeros kept", example="820600"),
        FieldSpec("goods_description", "str", required=False, nullable=True, max_length=1000,
                  example="hardware, lamp"),
        FieldSpec("quantity", "float", required=False, nullable=True, minimum=0, example=1234),
        FieldSpec("gross_weight_kg", "float", required=False, nullable=True, minimum=0, example=5400.0),
        FieldSpec("customs_value", "float", required=False, nullable=True, minimum=0, example=8200.0),
        FieldSpec("currency", "str", required=False, nullable=True, example="USD"),
    ),
)

def _hit_without_inspection(t: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.equal(t["inspected"], False) & np.equal(t["hit"], True)


def _random_never_drawn(t: Mapping[str, np.ndarray]) -> np.ndarray:
    # a random draw with probability 0 cannot have happened, and would divide by zero when reweighted
    return np.equal(t["selection_source"], "random") & (np.nan_to_num(t["selection_probability"], nan=1.0) <= 0)


OUTCOME = Contract(
    name="outcome",
    key="declaration_id",
    date_field="inspected_date",
    rules=(
        RowRule("hit", "false when inspected is false (a hit needs an inspection)", ("inspected", "hit"),
                _hit_without_inspection),
        RowRule("selection_probability", "above 0 for a random selection", ("selection_source",
                                                                              "selection_probability"),
                _random_never_drawn),
    ),
    fields=(
        FieldSpec("declaration_id", "id", example="D0000001"),
        FieldSpec("inspected_date", "date", example="2023-06-02"),
        FieldSpec("inspected", "bool", example=True),
        FieldSpec("selection_source", "category", nullable=True, vocab=SELECTION_SOURCES, example="rule"),
        FieldSpec("selection_probability", "float", nullable=True, minimum=0, maximum=1, example=1.0,
                  description="probability that the selection policy chose this declaration (for reweighting)"),
        FieldSpec("hit", "bool", example=True),
        FieldSpec("case_id", "str", required=False, nullable=True, example="C2022-000123"),
        FieldSpec("revenue", "float", required=False, nullable=True, minimum=0, example=0.0),
    ),
)

CONTRACTS = {c.name: c for c in (SEIZURE, DECLARATION, OUTCOME)}


# --------------------------------------------------------------------------------------------
# Table validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One bad value: ``row`` is the 1-based data row (header excluded) within ``source``."""

    row: int | None
    column: str
    value: Any
    expected: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        row = f"row {self.row}" if self.row is not None else "file"
        value = self.value.item() if isinstance(self.value, np.generic) else self.value  # 0.0, not np.float64(0.0)
        return f"{where}{row}, column '{self.column}': got {value!r}, expected {self.expected}"


@dataclass
class ValidationReport:
    contract: str
    source: str
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    unknown_values: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> set[int]:
        return {p.row for p in self.problems if p.row is not None}

    def summary(self, limit: int = 30) -> str:
        lines = [f"{self.source or self.contract}: {self.rows} rows, {len(self.problems)} problems"]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        for col, counts in self.unknown_values.items():
            top = ", ".join(f"{k!r}×{v}" for k, v in list(counts.items())[:5])
            lines.append(f"  unknown values in '{col}' (allowed, scored as unseen): {top}")
        return "\n".join(lines)


class ContractError(ValueError):
    """Raised when a table breaks its contract; carries the whole report."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.summary())


def _blank(s: pd.Series) -> pd.Series:
    """True where a value is missing or an empty string."""
    na = s.isna()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        na = na | (s.astype("string").str.strip() == "")
    return na.fillna(True).astype(bool)


# string ops run in Arrow, not in Python; every validated string column has this dtype (stripped,
# blank → NA), which lets features/_columns.py skip cleaning it again
CANONICAL_STRING = pd.StringDtype("pyarrow")


def _as_str(s: pd.Series) -> pd.Series:
    out = s.astype(CANONICAL_STRING).str.strip()
    return out.mask(out == "", pd.NA)


def _join_list(v: Any) -> Any:
    if isinstance(v, list | tuple | np.ndarray):
        return TRANSIT_SEP.join(str(x) for x in v)
    return v


def _record(problems: list[Problem], mask: pd.Series, column: str, values: pd.Series, expected: str,
            source: str, row_numbers: np.ndarray) -> None:
    idx = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    if len(idx):
        _append_problems(problems, idx, values.to_numpy()[idx], column, expected, source, row_numbers)


def _append_problems(problems: list[Problem], idx: np.ndarray, vals: np.ndarray, column: str, expected: str,
                     source: str, row_numbers: np.ndarray) -> None:
    """One problem per failing row ``idx`` (positions), quoting ``vals`` (the values at those rows)."""
    for i, v in zip(idx, vals, strict=True):
        if isinstance(v, str) and len(v) > _SHOWN_CHARS:  # a report quotes a huge value, never copies it
            v = f"{v[:_SHOWN_CHARS]}… ({len(v):,} characters)"
        elif isinstance(v, np.datetime64) and not np.isnat(v):  # a date column's value: quoted as a date (its
            t = pd.Timestamp(v)  # nanoseconds' int was shown: "got 608256000000000000")
            v = str(t.date()) if t == t.normalize() else t.isoformat()
        problems.append(Problem(int(row_numbers[i]), column, None if pd.isna(v) else v, expected, source))


_SHOWN_CHARS = 60


@dataclass
class _Check:
    """What every column check shares: the report problems go to, row numbers, limits."""

    report: ValidationReport
    row_numbers: np.ndarray
    max_date: pd.Timestamp
    codes: Any  # ISO country codes

    def record(self, mask: pd.Series, column: str, values: pd.Series, expected: str) -> None:
        _record(self.report.problems, mask, column, values, expected, self.report.source, self.row_numbers)

    def flag(self, bad: np.ndarray, column: str, values: pd.Series | Callable[[np.ndarray], np.ndarray],
             expected: str) -> None:
        """Problems for the rows where ``bad`` (NumPy booleans) holds; only those rows' values are read
        (``values`` a column, or a function of row positions)."""
        idx = np.flatnonzero(bad)
        if not len(idx):
            return
        vals = values(idx) if callable(values) else _values_at(values, idx)
        _append_problems(self.report.problems, idx, vals, column, expected, self.report.source, self.row_numbers)


def _values_at(values: pd.Series, idx: np.ndarray) -> np.ndarray:
    """``values.to_numpy()[idx]`` without converting the whole column where the element types allow:
    text always gives objects and NumPy columns keep their dtype; other extension types (nullable
    booleans, categoricals…) pick their NumPy type from the whole column, so they are converted whole."""
    if isinstance(values.dtype, pd.StringDtype | np.dtype):
        return values.iloc[idx].to_numpy()
    return values.to_numpy()[idx]


def normalize_table(df: pd.DataFrame, contract: Contract, source: str = "",
                    max_date: pd.Timestamp | None = None,
                    row_offset: int = 0) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate ``df`` against ``contract`` and return it in canonical types.

    Every problem is collected (none stops the check). Rows with problems stay in the returned
    frame; callers decide to reject them (``report.bad_rows``) or to fail.

    Whole columns are checked in Arrow and NumPy (low-cardinality text once per distinct value, spread
    back by codes); Python objects are made only for the rows that fail. The result, problems and
    their order are those of :func:`_reference_normalize_table`, the pandas version this replaced
    (tests/test_contracts_fast.py compares the two).
    """
    report = ValidationReport(contract.name, source, rows=len(df))
    max_date = max_date if max_date is not None else pd.Timestamp(dt.date.today()) + pd.Timedelta(days=366)
    check = _Check(report, np.arange(1, len(df) + 1) + row_offset, max_date, country_codes())
    columns: dict[str, pd.Series] = {}
    for spec in contract.fields:
        if spec.name in df.columns:
            known = _by_dictionary(df, spec, check) if spec.kind in _PER_VALUE_KINDS else None
            columns[spec.name] = known if known is not None else _parse_column(df[spec.name], spec, check)
        elif spec.required:
            report.problems.append(Problem(None, spec.name, None, f"a column '{spec.name}' ({spec.kind})", source))
        else:
            report.missing_optional.append(spec.name)
            # optional columns absent from the file are added as empty so downstream code sees one shape
            columns[spec.name] = _empty_column(spec, len(df), df.index)
    # built in its final column order (no reordering copy); every column is indexed like df
    out = pd.DataFrame(columns, index=df.index, copy=False)
    if contract.key in out.columns:
        check.flag(_duplicates(out[contract.key]), contract.key, out[contract.key], "a unique key (duplicate)")
    for rule in contract.rules:
        if all(c in out.columns for c in rule.needs):
            broken = rule.violated(_rule_columns(contract, rule.needs, lambda c: out[c]))
            check.flag(np.asarray(broken, dtype=bool), rule.field, out[rule.field], rule.expected)
    _derive_columns(out, contract)
    if contract.extra_allowed:
        report.extra_columns = [c for c in df.columns if c not in contract.columns]
        for c in report.extra_columns:
            out[c] = df[c]
    report.problems.sort(key=lambda p: (p.row if p.row is not None else -1))
    return out, report


def _derive_columns(out: pd.DataFrame, contract: Contract) -> None:
    """Fill the columns a contract derives from others where a file leaves them empty."""
    if "region" in contract.columns and "reporting_country" in out.columns:
        from features.reference import UNKNOWN, region_map

        derived = out["reporting_country"].map(region_map()).fillna(UNKNOWN)
        out["region"] = out["region"].fillna(derived) if "region" in out.columns else derived
    if "reported_date" in contract.columns and "event_date" in out.columns:
        out["reported_date"] = out["reported_date"].fillna(out["event_date"])


# Arrow helpers: a text column is one large_string array (offsets + bytes), read with NumPy where a
# check needs no more than lengths and bytes

_TEXT = pa.large_string()


def _is_text(s: pd.Series) -> bool:
    """Whether the reference treats ``s`` as text (blank = missing or only whitespace)."""
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def _arrow_text(s: pd.Series) -> pa.Array:
    """``s`` as one Arrow large_string array: no copy when it is Arrow-backed text, else pandas' own
    ``astype`` (the conversion the reference ran)."""
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype(CANONICAL_STRING)
    arr = s.array.__arrow_array__()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr if arr.type == _TEXT else arr.cast(_TEXT)


def _series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(pd.array(arr, dtype=CANONICAL_STRING), index=index, copy=False)


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (one more than rows) and the byte buffer of a large_string array, as NumPy views."""
    bufs = arr.buffers()
    if bufs[1] is None:
        return np.zeros(len(arr) + 1, np.int64), np.zeros(0, np.uint8)
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _may_need_trim(offsets: np.ndarray, data: np.ndarray) -> bool:
    """False when no value starts or ends with whitespace (ASCII ≤ 32; any non-ASCII byte counts as a
    maybe, so Unicode spaces still reach Arrow's trim)."""
    if not len(data) or len(offsets) < 2:
        return False
    first = np.take(data, offsets[:-1], mode="clip")
    last = np.take(data, offsets[1:] - 1, mode="clip")
    # printable ASCII is 33..126 (127 too: harmless); uint8 arithmetic wraps the rest above 94
    return int(np.maximum(first - np.uint8(33), last - np.uint8(33)).max()) > 94


def _normalized(arr: pa.Array) -> pa.Array:
    """The reference's ``_as_str``: whitespace stripped (Arrow's Unicode trim), empty → null."""
    offsets, data = _buffers(arr)
    if _may_need_trim(offsets, data):
        arr = pc.utf8_trim_whitespace(arr)
        offsets, _ = _buffers(arr)
    empty = (np.diff(offsets) == 0) & _valid(arr)
    if empty.any():
        arr = pc.if_else(pa.array(empty), pa.scalar(None, _TEXT), arr)
    return arr


def _too_long(arr: pa.Array, limit: int | None) -> np.ndarray | None:
    """Rows of more than ``limit`` characters (None: none); counts characters only where bytes exceed it."""
    if limit is None or not len(arr):
        return None
    offsets, _ = _buffers(arr)
    lengths = np.diff(offsets)
    if int(lengths.max()) <= limit:  # a character is at least one byte
        return None
    rows = np.flatnonzero(lengths > limit)  # only these can have more characters than the limit
    chars = pc.utf8_length(arr.take(pa.array(rows))).fill_null(0).to_numpy()
    if not (chars > limit).any():
        return None
    bad = np.zeros(len(arr), bool)
    bad[rows] = chars > limit
    return bad


class _Distinct:
    """A text column as its distinct values and one code per row (-1: missing).

    Checks and rewrites run once per distinct value, with the reference's own pandas code, and are
    spread back to rows by the codes.
    """

    def __init__(self, arr: pa.Array):
        enc = pc.dictionary_encode(arr)
        self.source = arr
        self.indices = enc.indices
        self.codes = enc.indices.fill_null(-1).to_numpy()
        self.values = _series(enc.dictionary, pd.RangeIndex(len(enc.dictionary)))

    def rows(self, flags: pd.Series, missing: bool = False) -> np.ndarray:
        """A per-distinct boolean as a per-row array; ``missing`` for rows with no value."""
        per_value = flags.to_numpy(dtype=bool, na_value=False) if len(flags) else np.zeros(0, bool)
        if not per_value.any() and not (missing and self.indices.null_count):
            return np.zeros(len(self.codes), bool)
        return np.append(per_value, missing)[self.codes]

    def spread(self, values: pd.Series, index: pd.Index, fill: str | None = None) -> pd.Series:
        """Per-distinct canonical strings as the row column (rows with no value get ``fill``)."""
        if values.notna().all() and values.equals(self.values):  # nothing rewritten: the input as it is
            arr = self.source if fill is None or not self.indices.null_count else pc.fill_null(self.source, fill)
            return _series(arr, index)
        arr = _arrow_text(values)
        if fill is None or self.indices.null_count == 0:
            return _series(pc.take(arr, self.indices), index)
        arr = pa.concat_arrays([arr, pa.array([fill], _TEXT)])
        return _series(pc.take(arr, np.where(self.codes < 0, len(values), self.codes)), index)

    def values_at(self, values: pd.Series, fill: Any = pd.NA) -> Callable[[np.ndarray], np.ndarray]:
        """What a per-distinct column holds at some rows (the values a problem quotes)."""
        table = np.append(values.to_numpy(dtype=object), np.array([fill], dtype=object))
        return lambda idx: table[self.codes[idx]]


def _blank_rows(raw: pd.Series, normalized_missing: Callable[[], np.ndarray]) -> np.ndarray:
    """The reference's ``_blank``: for text, missing after stripping; otherwise missing."""
    if raw.dtype == bool:
        return np.zeros(len(raw), bool)
    return normalized_missing() if _is_text(raw) else raw.isna().to_numpy(dtype=bool)


def _parse_column(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    """One present column in its canonical type, its problems recorded (a required column's blanks first)."""
    return _PARSERS[spec.kind](raw, spec, check)


#: kinds whose check and canonical form of a value depend on that value alone
_PER_VALUE_KINDS = frozenset({"id", "str", "country", "countries", "hs", "category"})


def _by_dictionary(df: pd.DataFrame, spec: FieldSpec, check: _Check) -> pd.Series | None:
    """A text column the batch reader decoded from Parquet's dictionary (``features._kept``), checked
    through its distinct values: when every one passes as it is (no problem, nothing rewritten, no
    unknown value to count) and no row is missing, the column is valid and canonical as it stands, as
    the row-by-row check would find. Otherwise None: the column is checked row by row."""
    raw = df[spec.name]
    if not (isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow"):
        return None
    dictionary = kept_dictionary(df, spec.name, raw.array.__arrow_array__())
    if dictionary is None or dictionary.indices.null_count or len(dictionary.dictionary) * 4 > len(raw):
        return None
    values = dictionary.dictionary.cast(_TEXT)
    passed = _PASSED.get(spec)
    if passed is None or not passed.equals(values):  # row groups of a file mostly share their values
        sub = _series(values, pd.RangeIndex(len(values)))
        report = ValidationReport(check.report.contract, check.report.source, rows=len(values))
        out = _PARSERS[spec.kind](sub, spec, _Check(report, np.arange(1, len(values) + 1), check.max_date,
                                                    check.codes))
        if report.problems or report.unknown_values or not _arrow_text(out).equals(values):
            return None
        _PASSED[spec] = values
    return _series(_arrow_text(raw), raw.index)


#: per field, the last distinct values found to pass as they are: the next chunk with the same values
#: needs no check of them (one entry per field of the contracts)
_PASSED: dict[FieldSpec, pa.Array] = {}


def _require(blank: np.ndarray, raw: pd.Series, spec: FieldSpec, check: _Check) -> None:
    if not spec.nullable:
        check.flag(blank, spec.name, raw, "a value (column is required)")


def _parse_text(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    col = _normalized(_arrow_text(raw))
    _require(_blank_rows(raw, lambda: ~_valid(col)), raw, spec, check)
    out = _series(col, raw.index)
    bad = _too_long(col, spec.max_chars)
    if bad is not None:
        check.flag(bad, spec.name, out, f"at most {spec.max_chars} characters")
    nul = _with_nul(col)
    if nul is not None:
        check.flag(nul, spec.name, out, NO_NUL_EXPECTED)
    return out


def _with_nul(arr: pa.Array) -> np.ndarray | None:
    """Rows holding a NUL character (None: none), found by one look at the bytes: valid UTF-8 has a zero
    byte only where the text has U+0000."""
    offsets, data = _buffers(arr)
    used = data[offsets[0]:offsets[-1]] if len(arr) else data[:0]
    if not len(used) or used.min() != 0:  # min: ~10 µs a MB, no temporary array
        return None
    return pc.match_substring(arr, "\x00").fill_null(False).to_numpy(zero_copy_only=False)


#: a date column stored as numbers (20231225 as an int64): pandas reads a number as nanoseconds since 1970
DATE_AS_NUMBER = "a date (YYYY-MM-DD text or a date column; this column holds numbers)"


def _parse_date(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    if _is_number_column(raw):
        blank = raw.isna().to_numpy(dtype=bool)
        _require(blank, raw, spec, check)
        check.flag(~blank, spec.name, raw, DATE_AS_NUMBER)
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow":
        # dates repeat: parse each distinct text once
        d = _Distinct(_arrow_text(raw))
        col = _to_dates(d.values)
        blank_values = (d.values.str.strip() == "").fillna(True)
        outside_values = ~blank_values & _outside(col, check.max_date)
        blank, unparsed, outside = d.rows(blank_values, missing=True), d.rows(col.isna()), d.rows(outside_values)
        per_value = col.mask(outside_values).to_numpy(dtype="datetime64[ns]")
        values = pd.Series(np.append(per_value, np.datetime64("NaT", "ns"))[d.codes], index=raw.index)
    else:
        col = _to_dates(raw)
        blank = _blank(raw).to_numpy(dtype=bool)
        unparsed = col.isna().to_numpy(dtype=bool)
        outside = ~blank & _outside(col, check.max_date).to_numpy(dtype=bool)
        values = col.mask(outside).astype("datetime64[ns]")
    _require(blank, raw, spec, check)
    check.flag(~blank & unparsed, spec.name, raw, "a date (YYYY-MM-DD)")
    check.flag(outside, spec.name, raw, f"a date between {MIN_DATE.date()} and {check.max_date.date()}")
    return values


def _to_dates(raw: pd.Series) -> pd.Series:
    """Dates (and date-times) as naive datetimes: a time-zone offset keeps the local wall time (the
    declaration's own day). Values with different offsets are each read on their own.

    ISO 8601 only (2023-12-25, 2023-12-25T10:00, 20231225), as the API takes dates: '03/04/2023' is
    3 April in one country and 4 March in another, and a lenient parser read a DD/MM file month-first
    where it could and day-first elsewhere, mixing the two in one column without a word."""
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        raw = raw.str.strip() if pd.api.types.is_string_dtype(raw.dtype) else raw.map(
            lambda v: v.strip() if isinstance(v, str) else v)
    try:
        col = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    except ValueError:  # "Mixed timezones detected": the column has several offsets
        return pd.Series([_one_date(v) for v in raw.tolist()], index=raw.index, dtype="datetime64[ns]")
    if getattr(col.dt, "tz", None) is not None:
        col = col.dt.tz_localize(None)
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        firsts = np.flatnonzero((col.dt.day == 1).to_numpy(dtype=bool, na_value=False))  # only these can be
        if len(firsts):
            no_day = raw.iloc[firsts].astype("string").str.fullmatch(_NO_DAY).fillna(False).to_numpy(dtype=bool)
            if no_day.any():
                col = col.copy()
                col.iloc[firsts[no_day].tolist()] = None
    return col


#: a year or a year and month alone, which ISO 8601 parsing reads as the period's first day: '2023' was
#: taken as 2023-01-01 without a word (the API refuses it)
_NO_DAY = r"[0-9]{4}(-[0-9]{1,2})?"


def _one_date(v: object) -> Any:
    """One value as a naive Timestamp (its local wall time), NaT when it is no date."""
    if isinstance(v, str) and re.fullmatch(_NO_DAY, v.strip()):
        return pd.NaT
    try:
        ts = pd.to_datetime(v, errors="coerce", format="ISO8601")  # type: ignore[call-overload]
    except (ValueError, TypeError):
        return pd.NaT
    if not isinstance(ts, pd.Timestamp) or pd.isna(ts):
        return pd.NaT
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _outside(col: pd.Series, max_date: pd.Timestamp) -> pd.Series:
    return col.notna() & ((col < MIN_DATE) | (col > max_date))


def _parse_country(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    arr = _arrow_text(raw)
    odd = _odd_country_rows(arr, check.codes)
    if len(odd) <= len(arr) // 20:
        # the usual file: (almost) every value a canonical code already; the reference's rules for the rest
        values = _as_str(_series(arr.take(pa.array(odd, pa.int64())), pd.RangeIndex(len(odd)))).str.upper()
        blank = _blank_rows(raw, lambda: _at_rows(~_valid(arr), odd, values.isna()))
        _require(blank, raw, spec, check)
        unknown = np.zeros(len(arr), bool)
        if len(odd):  # (pandas' isin converts the 250 codes anew on each call: ~1 ms a column)
            unknown = _at_rows(unknown, odd, ~values.isin(check.codes))
        check.flag(~blank & unknown, spec.name, raw, "an ISO 3166 alpha-2 country code")
        return _series(_replace_rows(arr, odd, values), raw.index)
    d = _Distinct(arr)
    col = _as_str(d.values).str.upper()
    blank = _blank_rows(raw, lambda: d.rows(col.isna(), missing=True))
    _require(blank, raw, spec, check)
    check.flag(~blank & d.rows(~col.isin(check.codes), missing=True), spec.name, raw,
               "an ISO 3166 alpha-2 country code")
    return d.spread(col, raw.index)


def _replace_rows(arr: pa.Array, rows: np.ndarray, values: pd.Series) -> pa.Array:
    """``arr`` with ``values`` at positions ``rows`` (the same array when they change nothing)."""
    new = _arrow_text(values)
    if not len(rows) or new.equals(arr.take(pa.array(rows, pa.int64()))):
        return arr
    return pc.replace_with_mask(arr, pa.array(_at_rows(np.zeros(len(arr), bool), rows, True)), new)


def _at_rows(base: np.ndarray, rows: np.ndarray, values: Any) -> np.ndarray:
    """``base`` with ``values`` (per row of ``rows``, or one for all) set at those positions."""
    base[rows] = values.to_numpy(dtype=bool, na_value=False) if isinstance(values, pd.Series) else values
    return base


@cache
def _country_table(codes: frozenset[str]) -> np.ndarray:
    """65,536 booleans: which two ASCII bytes (first × 256 + second) spell a country code."""
    table = np.zeros(1 << 16, bool)
    for c in codes:
        if len(c) == 2 and c.isascii():
            table[ord(c[0]) * 256 + ord(c[1])] = True
    return table


def _odd_country_rows(arr: pa.Array, codes: Any) -> np.ndarray:
    """Positions of the present values that are not a canonical two-letter code as they stand."""
    offsets, data = _buffers(arr)
    valid = _valid(arr)
    if len(data) < 2:
        return np.flatnonzero(valid)
    first = np.minimum(offsets[:-1], len(data) - 2)  # in range for any row; only two-byte rows count
    pairs = data[first].astype(np.int64) * 256 + data[first + 1]
    ok = (np.diff(offsets) == 2) & _country_table(frozenset(codes))[pairs]
    return np.flatnonzero(valid & ~ok)


def _parse_countries(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    if not spec.nullable:
        _require(_blank(raw).to_numpy(dtype=bool) if raw.dtype != bool else np.zeros(len(raw), bool),
                 raw, spec, check)
    # an object column may hold lists (Parquet list<string>, API bodies): the first value tells
    first = raw.dropna().head(1).tolist() if raw.dtype == object else []
    has_lists = bool(first) and isinstance(first[0], list | tuple | np.ndarray)
    d = _Distinct(_arrow_text(raw.map(_join_list) if has_lists else raw))
    col = _as_str(d.values).str.upper().fillna("")
    too_long = (col.str.len() > spec.max_chars).fillna(False) if spec.max_chars is not None else None
    if too_long is not None and too_long.any():
        check.flag(d.rows(too_long), spec.name, d.values_at(col, ""), f"at most {spec.max_chars} characters")
    # other separators (", ; space") become "|"; values already in canonical form skip the regex
    messy = ~col.str.fullmatch(r"([A-Z]{2}(\|[A-Z]{2})*)?").fillna(True).astype(bool)
    if messy.any():
        fixed = col[messy].str.replace(r"[\s,;]+", TRANSIT_SEP, regex=True).str.strip(TRANSIT_SEP)
        col = col.where(~messy, fixed)
    route_ok = pd.Series([all(c in check.codes for c in v.split(TRANSIT_SEP)) if v else True for v in col],
                         dtype=bool)
    check.flag(d.rows(~route_ok), spec.name, raw, "'|'-separated ISO 3166 alpha-2 codes")
    return d.spread(col, raw.index, fill="")


def _parse_hs(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    arr = _normalized(_arrow_text(raw))
    blank = _blank_rows(raw, lambda: ~_valid(arr))
    _require(blank, raw, spec, check)
    if _is_number_column(raw):
        check.flag(~blank, spec.name, raw, HS_AS_TEXT)
        return _series(arr, raw.index)
    lo, hi = spec.digits
    offsets, data = _buffers(arr)
    used = data[offsets[0]:offsets[-1]]
    lengths = np.diff(offsets)
    valid = _valid(arr)
    # a value of ASCII digits only needs no rewrite, and is a code exactly when its length fits
    ok = valid & (lengths >= lo) & (lengths <= hi)
    if len(used) and not (used.min() >= ord("0") and used.max() <= ord("9")):
        odd = valid & ~pc.ascii_is_decimal(arr).fill_null(True).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(odd)
        if len(rows):  # the few others: the reference's rewrites and pattern, as they were
            fixed = _series(arr.take(pa.array(rows, pa.int64())), pd.RangeIndex(len(rows)))
            fixed = fixed.str.removesuffix(".0").str.replace(".", "", regex=False).str.replace(" ", "", regex=False)
            # [0-9], not \d: Arrow's \d also matches full-width and other Unicode digits
            ok[rows] = fixed.str.fullmatch(rf"[0-9]{{{lo},{hi}}}").fillna(False).to_numpy(dtype=bool)
            arr = _replace_rows(arr, rows, fixed)
    check.flag(~blank & ~ok, spec.name, raw, f"an HS code of {lo} to {hi} digits")
    return _series(arr, raw.index)


#: an HS code column stored as numbers (a Parquet int64 column): 0901002652 became 901002652, a code of
#: another chapter that still has 6 to 10 digits, and scored as that
HS_AS_TEXT = ("an HS code written as text (this column holds numbers, which drop leading zeros: store the codes "
              "as text, or map the column with formats: zero_pad)")


def _is_number_column(raw: pd.Series) -> bool:
    return raw.dtype.kind in "iuf" or (isinstance(raw.dtype, pd.ArrowDtype) and (
        pa.types.is_integer(raw.dtype.pyarrow_dtype) or pa.types.is_floating(raw.dtype.pyarrow_dtype)))


def _parse_category(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    arr = _arrow_text(raw)
    if _all_canonical(arr, spec):  # the usual file: every value spelled as the vocabulary spells it
        _require(_blank_rows(raw, lambda: ~_valid(arr)), raw, spec, check)
        return _series(arr, raw.index)
    d = _Distinct(arr)
    col = _as_str(d.values).str.lower()
    blank = _blank_rows(raw, lambda: d.rows(col.isna(), missing=True))
    _require(blank, raw, spec, check)
    if spec.max_chars is not None:
        too_long = (col.str.len() > spec.max_chars).fillna(False)
        if too_long.any():
            check.flag(d.rows(too_long), spec.name, d.values_at(col), f"at most {spec.max_chars} characters")
    if not spec.vocab:
        return d.spread(col, raw.index)
    # case-insensitive match, canonical spelling kept (e.g. "pepper / CS spray")
    canon = {v.lower(): v for v in spec.vocab}
    known = col.isin(list(canon)).fillna(False).astype(bool)
    for low, v in canon.items():
        if low != v:  # only the few mixed-case entries need rewriting
            col = col.mask((col == low).fillna(False).astype(bool), v)
    unknown = ~blank & d.rows(~known, missing=True)
    out = d.spread(col, raw.index)
    if spec.strict:
        check.flag(unknown, spec.name, raw, f"one of {list(spec.vocab)}")
    elif unknown.any():
        counts = out[unknown].value_counts()
        check.report.unknown_values[spec.name] = {str(k): int(v) for k, v in counts.items()}
    return out


def _all_canonical(arr: pa.Array, spec: FieldSpec) -> bool:
    """True when every present value is one of the vocabulary's own spellings (nothing to rewrite or report)."""
    vocab = [v for v in spec.vocab if v == v.strip() and v and (spec.max_chars is None or len(v) <= spec.max_chars)]
    if not vocab or len(vocab) < len(spec.vocab) or arr.null_count == len(arr):
        return False
    found = pc.sum(pc.is_in(arr, value_set=pa.array(vocab, _TEXT))).as_py() or 0
    return bool(found == len(arr) - arr.null_count)


def _parse_number(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    text = _arrow_text(raw) if _is_text(raw) else None
    blank = _blank_rows(raw, lambda: ~_valid(_normalized(text)))  # type: ignore[arg-type]
    _require(blank, raw, spec, check)
    values = _numbers(raw, text)
    finite = np.isfinite(values)
    if not finite.all():
        check.flag(~blank & np.isnan(values), spec.name, raw, "a number")
        # "inf" and 1e400 parse as infinity: no quantity or probability is infinite
        infinite = np.isinf(values)
        check.flag(infinite, spec.name, raw, "a finite number")
        finite &= ~blank
        if infinite.any():
            values = np.where(infinite, np.nan, values)
    if spec.minimum is not None and len(values) and np.nanmin(values, initial=np.inf) < spec.minimum:
        check.flag(finite & (values < spec.minimum), spec.name, raw, f"a number ≥ {spec.minimum:g}")
    if spec.maximum is not None and len(values) and np.nanmax(values, initial=-np.inf) > spec.maximum:
        check.flag(finite & (values > spec.maximum), spec.name, raw, f"a number ≤ {spec.maximum:g}")
    return pd.Series(values, index=raw.index)


def _numbers(raw: pd.Series, text: pa.Array | None) -> np.ndarray:
    """``pd.to_numeric(raw, errors="coerce")`` as float64; plain decimals of text columns are cast by Arrow.

    Only values of at most 15 characters from ``0-9 . -`` take the Arrow cast: at most 15 digits, so
    both parsers round one exact mantissa by one exact power of ten and agree to the bit. Anything
    else (exponents, spaces, junk, a negative zero, which pandas makes positive) goes to pandas.
    """
    if text is not None and len(text) and text.null_count < len(text):
        offsets, data = _buffers(text)
        used = data[offsets[0]:offsets[-1]]
        if np.diff(offsets).max() <= 15 and len(used) and used.min() >= ord("-") and used.max() <= ord("9"):
            try:
                values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:
                values = None
            if values is not None and not (np.signbit(values) & (values == 0)).any():
                return values
    return pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()


def _parse_bool(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    if raw.dtype == bool:
        return raw.astype("boolean")
    blank = _blank(raw).to_numpy(dtype=bool)
    _require(blank, raw, spec, check)
    if isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow":
        d = _Distinct(_arrow_text(raw))  # a handful of spellings: map each once
        per_value = d.values.map(_to_bool).to_numpy(dtype=object)
        mapped = pd.Series(np.append(per_value, np.array([pd.NA], dtype=object))[d.codes], index=raw.index)
    else:
        mapped = raw.map(_to_bool)
    check.flag(~blank & mapped.isna().to_numpy(dtype=bool), spec.name, raw, "true/false (or 1/0)")
    return mapped.astype("boolean")


_PARSERS: dict[str, Callable[[pd.Series, FieldSpec, _Check], pd.Series]] = {
    "id": _parse_text, "str": _parse_text, "date": _parse_date, "country": _parse_country,
    "countries": _parse_countries, "hs": _parse_hs, "category": _parse_category, "int": _parse_number,
    "float": _parse_number, "bool": _parse_bool,
}


def _duplicates(key: pd.Series) -> np.ndarray:
    """pandas' ``duplicated(keep="first")`` over the present keys, without hashing a million strings
    when the keys are plainly unique (see :func:`_surely_unique`)."""
    arr = _arrow_text(key)
    if _surely_unique(arr):
        return np.zeros(len(key), bool)
    return (key.duplicated(keep="first") & key.notna()).to_numpy(dtype=bool)


_WORD_MIX = np.uint64(0x9E3779B97F4A7C15)


def _surely_unique(arr: pa.Array) -> bool:
    """True only when no present value repeats (False: maybe, let pandas decide).

    Values of different byte lengths differ, so each length is checked on its own, as fixed-width
    bytes: unique when the rows are already in strictly increasing byte order (ids usually are), else
    after sorting them packed into a 64-bit word (≤ 8 bytes) or a 64-bit hash of their words.
    """
    if arr.null_count:
        arr = pc.drop_null(arr)  # present values only, back to back
    if len(arr) < 2:
        return True
    offsets, data = _buffers(arr)
    lengths = np.diff(offsets)
    width = int(lengths[0])
    if width > 0 and lengths.min() == lengths.max() == width:
        # one width: the values lie back to back (the usual key column)
        return _unique_width(data[offsets[0]:offsets[-1]].reshape(len(arr), width))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        if len(rows) < 2:
            continue
        if length == 0 or not _unique_width(_fixed_width(data, offsets[rows], length)):
            return False  # (two empty strings are a repeat)
    return True


def _unique_width(matrix: np.ndarray) -> bool:
    """Whether the rows of a byte matrix all differ (False: maybe not)."""
    # numpy's bytes dtype compares byte by byte (equal widths: equal only when identical)
    fixed = matrix.reshape(-1).view(f"S{matrix.shape[1]}")
    if (fixed[1:] > fixed[:-1]).all():
        return True
    words = _packed_words(matrix)
    keys = words[0] if len(words) == 1 else _hash_words(words)
    keys.sort()
    return not (keys[1:] == keys[:-1]).any()


def _fixed_width(data: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` bytes at each start as rows of a C-contiguous matrix."""
    matrix = np.empty((len(starts), length), np.uint8)
    for j in range(length):
        matrix[:, j] = data[starts + j]
    return matrix


def _packed_words(matrix: np.ndarray) -> list[np.ndarray]:
    """Each row's bytes as big-endian uint64 words (zero-padded), first word first."""
    n, length = matrix.shape
    width = -(-length // 8) * 8
    padded = np.zeros((n, width), np.uint8)
    padded[:, :length] = matrix
    packed = padded.view(">u8").astype(np.uint64)
    return [np.ascontiguousarray(packed[:, w]) for w in range(width // 8)]


def _hash_words(words: list[np.ndarray]) -> np.ndarray:
    h = np.zeros(len(words[0]), np.uint64)
    for w in words:
        h = (h ^ w) * _WORD_MIX  # wraps modulo 2**64; equal values, equal hashes
        h ^= h >> np.uint64(29)
    return h


def _empty_column(spec: FieldSpec, n: int, index: pd.Index) -> pd.Series:
    if spec.kind == "date":
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    if spec.kind in ("int", "float"):
        return pd.Series(np.nan, index=index, dtype="float64")
    if spec.kind == "bool":
        return pd.Series(pd.NA, index=index, dtype="boolean")
    if spec.kind == "countries":
        return pd.Series("", index=index, dtype="string")
    return pd.Series(pd.NA, index=index, dtype="string")


_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}


def _to_bool(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return pd.NA
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return pd.NA


def validate_table(df: pd.DataFrame, contract: Contract, source: str = "") -> pd.DataFrame:
    """Normalise ``df``; raise :class:`ContractError` listing every problem if any."""
    out, report = normalize_table(df, contract, source)
    if not report.ok:
        raise ContractError(report)
    return out


# --------------------------------------------------------------------------------------------
# pydantic models (API bodies) derived from the same specs
# --------------------------------------------------------------------------------------------

_PY_TYPES: dict[str, Any] = {
    "id": str,
    "str": str,
    "date": dt.date,
    "country": str,
    "countries": list[str],
    "hs": str,
    "category": str,
    "int": int,
    "float": float,
    "bool": bool,
}


_MIN_DAY = MIN_DATE.date()


@cache
def _max_day_on(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=366)


def _max_day() -> dt.date:
    return _max_day_on(dt.date.today())


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, list | tuple):
        return "a list"
    return "an object" if isinstance(v, dict) else type(v).__name__


def _text(v: Any, spec: FieldSpec) -> str:
    """A string within the field's length: a number, boolean, list or object is refused, never str()-ed."""
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {_json_kind(v)}")
    limit = spec.max_chars
    if limit is not None and len(v) > limit:
        raise ValueError(f"at most {limit} characters (got {len(v):,})")
    return v


def _check_country(v: Any, spec: FieldSpec, codes: Any) -> str | None:
    code = _text(v, spec).strip().upper()
    if not code:
        return None
    if code not in codes:
        raise ValueError(f"{v!r} is not an ISO 3166 alpha-2 country code")
    return code


def _check_countries(v: Any, spec: FieldSpec, codes: Any) -> list[str]:
    if isinstance(v, str):
        items: list[Any] = _text(v, spec).split(TRANSIT_SEP)
    elif isinstance(v, list | tuple):
        if len(v) > MAX_TRANSIT_COUNTRIES:
            raise ValueError(f"at most {MAX_TRANSIT_COUNTRIES} countries (got {len(v):,})")
        items = [_text(x, FieldSpec(spec.name, "country")) for x in v]
    else:
        raise ValueError(f"expected a list of country codes, got {_json_kind(v)}")
    out = [x.strip().upper() for x in items if x.strip()]
    bad = [x for x in out if x not in codes]
    if bad:
        raise ValueError(f"{bad} are not ISO 3166 alpha-2 country codes")
    return out


def _check_hs(v: Any, spec: FieldSpec) -> str:
    code = _text(v, spec).strip().replace(".", "")
    lo, hi = spec.digits
    # isascii: str.isdigit() also accepts full-width and superscript digits, which no HS code has
    if not (code.isascii() and code.isdigit() and lo <= len(code) <= hi):
        raise ValueError(f"{v!r} is not an HS code of {lo} to {hi} digits (0-9)")
    return code


def _check_category(v: Any, spec: FieldSpec, canon: dict[str, str]) -> str:
    low = _text(v, spec).strip().lower()
    if spec.vocab and spec.strict and low not in canon:
        raise ValueError(f"{v!r} is not one of {list(spec.vocab)}")
    return canon.get(low, low)


def _check_date(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, str | dt.date):
        raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)")
    if isinstance(v, str) and not v.strip():
        raise ValueError("empty: a date is required (YYYY-MM-DD)")
    try:
        d = v if isinstance(v, dt.date) else dt.date.fromisoformat(v[:10])
    except ValueError as exc:  # Python's own words ("Invalid isoformat string: ''") said nothing of the format
        detail = "" if "isoformat" in str(exc) else f" ({exc})"
        raise ValueError(f"{str(v)[:40]!r} is not a date{detail}: expected YYYY-MM-DD") from None
    if isinstance(d, dt.datetime):
        d = d.date()
    if d < _MIN_DAY or d > _max_day():
        raise ValueError(f"{v} is out of range ({_MIN_DAY} .. {_max_day()})")
    return v


def _make_validator(spec: FieldSpec) -> Callable[[Any, Any], Any]:
    codes = country_codes()
    canon = {c.lower(): c for c in spec.vocab}
    checks: dict[str, Callable[[Any], Any]] = {
        "country": lambda v: _check_country(v, spec, codes),
        "countries": lambda v: _check_countries(v, spec, codes),
        "hs": lambda v: _check_hs(v, spec),
        "category": lambda v: _check_category(v, spec, canon),
        "date": _check_date,
    }
    one = checks[spec.kind]

    def check(cls, v):  # noqa: ANN001 - pydantic validator signature
        if v is None:
            return v
        try:
            return one(v)
        except (TypeError, AttributeError) as exc:  # pydantic reports ValueError only
            raise ValueError(f"{v!r} is not a valid {spec.kind} value") from exc

    return check


MAX_EXTRA_FIELDS = 100
_EXTRA_CHARS = 1000
_INT_BOUND = 2**63


def _extra_value_problem(v: Any) -> str | None:
    """Why an extra field's value cannot be a column of a table (None: it can)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        return None if len(v) <= _EXTRA_CHARS else f"at most {_EXTRA_CHARS} characters (got {len(v):,})"
    if isinstance(v, int):
        return None if -_INT_BOUND < v < _INT_BOUND else "expected a number within ±2^63"
    if isinstance(v, float):
        return None if math.isfinite(v) else "expected a finite number"
    return f"expected a string, number, boolean or null (one value of an extra column), got {_json_kind(v)}"


def _check_extras(self: BaseModel) -> BaseModel:
    """Extra fields (mapped extra columns) are carried into the model's input: bound them like the contract's."""
    extra = self.model_extra or {}
    errors: list[Any] = []
    if len(extra) > MAX_EXTRA_FIELDS:
        errors.append({"type": PydanticCustomError("too_many_extra", f"at most {MAX_EXTRA_FIELDS} extra fields, "
                                                                     f"got {len(extra):,}"), "loc": (), "input": None})
    for name, v in list(extra.items())[:MAX_EXTRA_FIELDS + 1]:
        why = _extra_value_problem(v)
        if why is not None:
            errors.append({"type": PydanticCustomError("extra_value", why), "loc": (name,), "input": v})
    if errors:
        raise ValidationError.from_exception_data(type(self).__name__, errors)
    return self


def _field_constraints(spec: FieldSpec) -> dict[str, Any]:
    """pydantic constraints of a field: JSON types as the schema says (no "12" or false for a number)."""
    kwargs: dict[str, Any] = {}
    if spec.kind in ("int", "float", "bool"):
        kwargs["strict"] = True
    if spec.kind in ("int", "float"):
        kwargs["allow_inf_nan"] = False
    if spec.minimum is not None:
        kwargs["ge"] = spec.minimum
    if spec.maximum is not None:
        kwargs["le"] = spec.maximum
    if spec.kind in ("id", "str"):
        kwargs["strict"] = True
        kwargs["max_length"] = spec.max_chars
        kwargs["pattern"] = NO_NUL_PATTERN
    if spec.kind == "id":
        kwargs["min_length"] = 1
    return kwargs


def _schema_type(spec: FieldSpec) -> Any:
    """The field's type as the OpenAPI schema shows it, its length bound included (the validators above
    enforce the same bounds before pydantic sees the value)."""
    py = _PY_TYPES[spec.kind]
    if spec.kind == "category" and spec.strict and spec.vocab:  # refused unless one of them: say which
        return Annotated[str, StringConstraints(max_length=spec.max_chars),
                         WithJsonSchema({"type": "string", "maxLength": spec.max_chars, "enum": list(spec.vocab)})]
    if spec.kind in ("country", "hs", "category"):
        return Annotated[str, StringConstraints(max_length=spec.max_chars)]
    if spec.kind == "countries":
        code = Annotated[str, StringConstraints(max_length=_MAX_CHARS["country"])]
        return (Annotated[list[code], PydField(max_length=MAX_TRANSIT_COUNTRIES)]  # type: ignore[valid-type]
                | Annotated[str, StringConstraints(max_length=spec.max_chars)])
    return py


@cache
def pydantic_model(contract_name: str) -> type[BaseModel]:
    """The request-body model of a contract (extra fields allowed for declarations).

    The contract's row rules (:func:`rule_violations`) are checked on the validated records, not here.
    """
    contract = CONTRACTS[contract_name]
    fields: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for spec in contract.fields:
        if spec.name in contract.derived or spec.name == "reported_date":
            continue
        py = _schema_type(spec)
        annotation = py | None if (spec.nullable or not spec.required) else py
        kwargs: dict[str, Any] = {"description": spec.description or None, **_field_constraints(spec)}
        if spec.example is not None:
            kwargs["examples"] = [spec.example]
        default: Any = ... if (spec.required and not spec.nullable) else None
        if spec.kind == "countries":
            default = [] if spec.required else None
        fields[spec.name] = (annotation, PydField(default, **kwargs))
        if spec.kind in ("country", "countries", "hs", "category", "date"):
            validators[f"check_{spec.name}"] = field_validator(spec.name, mode="before")(_make_validator(spec))
    if contract.extra_allowed:
        validators["check_extras"] = model_validator(mode="after")(_check_extras)
    extra: Literal["allow", "forbid"] = "allow" if contract.extra_allowed else "forbid"
    model = create_model(  # type: ignore[call-overload]
        contract_name.capitalize(),
        __config__=ConfigDict(extra=extra, str_strip_whitespace=True),
        __validators__=validators,
        **fields,
    )
    return model


def rule_violations(contract: Contract, records: Sequence[Mapping[str, Any]]) -> list[tuple[int, RowRule]]:
    """(0-based index, rule) for every record that breaks one of the contract's row rules.

    The same rule functions as the file validator, run once over all records (validated API items).
    """
    if not contract.rules or not records:
        return []
    found = [(int(i), rule) for rule in contract.rules for i in np.flatnonzero(
        rule.violated(_rule_columns(contract, rule.needs, lambda c: [r.get(c) for r in records])))]
    return sorted(found, key=lambda x: x[0])


def _rule_columns(contract: Contract, names: Sequence[str],
                  column: Callable[[str], pd.Series | list[Any]]) -> dict[str, np.ndarray]:
    """The columns a rule needs as arrays: numbers float (NaN = missing), the rest objects (None = missing)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        values = column(name)
        numeric = contract.spec(name).kind in ("int", "float")
        if isinstance(values, pd.Series) and numeric:
            out[name] = values.to_numpy(dtype=float, na_value=np.nan)
        elif isinstance(values, pd.Series):
            out[name] = values.to_numpy(dtype=object)
            out[name][values.isna().to_numpy()] = None
        else:
            out[name] = np.array(values, dtype=float if numeric else object)
    return out


# --------------------------------------------------------------------------------------------
# Reference implementation: the pandas validator that normalize_table replaced, kept as the oracle
# of tests/test_contracts_fast.py and the baseline of benchmarks/validation_speed.py
# --------------------------------------------------------------------------------------------


def _reference_normalize_table(df: pd.DataFrame, contract: Contract, source: str = "",
                    max_date: pd.Timestamp | None = None,
                    row_offset: int = 0) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate ``df`` against ``contract`` and return it in canonical types.

    Every problem is collected (none stops the check). Rows with problems stay in the returned
    frame; callers decide to reject them (``report.bad_rows``) or to fail.
    """
    report = ValidationReport(contract.name, source, rows=len(df))
    max_date = max_date if max_date is not None else pd.Timestamp(dt.date.today()) + pd.Timedelta(days=366)
    check = _Check(report, np.arange(1, len(df) + 1) + row_offset, max_date, country_codes())
    out = pd.DataFrame(index=df.index)
    for spec in contract.fields:
        if spec.name in df.columns:
            out[spec.name] = _ref_parse_column(df[spec.name], spec, check)
        elif spec.required:
            report.problems.append(Problem(None, spec.name, None, f"a column '{spec.name}' ({spec.kind})", source))
        else:
            report.missing_optional.append(spec.name)
    # optional columns absent from the file are added as empty so downstream code sees one shape
    for name in report.missing_optional:
        out[name] = _empty_column(contract.spec(name), len(out), out.index)
    if contract.key in out.columns:
        dup = out[contract.key].duplicated(keep="first") & out[contract.key].notna()
        check.record(dup, contract.key, out[contract.key], "a unique key (duplicate)")
    for rule in contract.rules:
        if all(c in out.columns for c in rule.needs):
            broken = rule.violated(_rule_columns(contract, rule.needs, lambda c: out[c]))
            check.record(pd.Series(broken, index=out.index), rule.field, out[rule.field], rule.expected)
    _derive_columns(out, contract)
    if contract.extra_allowed:
        report.extra_columns = [c for c in df.columns if c not in contract.columns]
        for c in report.extra_columns:
            out[c] = df[c]
    report.problems.sort(key=lambda p: (p.row if p.row is not None else -1))
    ordered = [c for c in contract.columns if c in out.columns] + [c for c in out.columns if c not in contract.columns]
    return out[ordered], report


def _ref_parse_column(raw: pd.Series, spec: FieldSpec, check: _Check) -> pd.Series:
    """One present column in its canonical type, its problems recorded."""
    blank = _blank(raw) if raw.dtype != bool else pd.Series(False, index=raw.index)
    if not spec.nullable:
        check.record(blank, spec.name, raw, "a value (column is required)")
    return _REF_PARSERS[spec.kind](raw, spec, ~blank, check)


def _ref_check_length(col: pd.Series, spec: FieldSpec, check: _Check) -> None:
    limit = spec.max_chars
    if limit is not None:
        check.record((col.str.len() > limit).fillna(False).astype(bool), spec.name, col,
                     f"at most {limit} characters")


def _ref_parse_text(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    col = _as_str(raw)
    _ref_check_length(col, spec, check)
    check.record(col.str.contains("\x00", regex=False).fillna(False).astype(bool), spec.name, col, NO_NUL_EXPECTED)
    return col


def _ref_parse_date(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    if _is_number_column(raw):
        check.record(present, spec.name, raw, DATE_AS_NUMBER)
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    col = _to_dates(raw)
    check.record(present & col.isna(), spec.name, raw, "a date (YYYY-MM-DD)")
    out_of_range = present & col.notna() & ((col < MIN_DATE) | (col > check.max_date))
    check.record(out_of_range, spec.name, raw, f"a date between {MIN_DATE.date()} and {check.max_date.date()}")
    return col.mask(out_of_range).astype("datetime64[ns]")


def _ref_parse_country(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    col = _as_str(raw).str.upper()
    bad = present & ~col.isin(check.codes).fillna(False).astype(bool)
    check.record(bad, spec.name, raw, "an ISO 3166 alpha-2 country code")
    return col


def _ref_parse_countries(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    # an object column may hold lists (Parquet list<string>, API bodies): the first value tells
    first = raw.dropna().head(1).tolist() if raw.dtype == object else []
    has_lists = bool(first) and isinstance(first[0], list | tuple | np.ndarray)
    col = _as_str(raw.map(_join_list) if has_lists else raw).str.upper().fillna("")
    _ref_check_length(col, spec, check)
    # other separators (", ; space") become "|"; rows already in canonical form skip the regex,
    # which runs in Python row by row
    messy = ~col.str.fullmatch(r"([A-Z]{2}(\|[A-Z]{2})*)?").fillna(True).astype(bool)
    if messy.any():
        fixed = col[messy].str.replace(r"[\s,;]+", TRANSIT_SEP, regex=True).str.strip(TRANSIT_SEP)
        col = col.where(~messy, fixed)
    # routes repeat: check each distinct list once
    row_code, distinct = pd.factorize(col)
    route_ok = np.array([all(c in check.codes for c in v.split(TRANSIT_SEP)) if v else True for v in distinct],
                        dtype=bool)
    bad = pd.Series(~route_ok[row_code] if len(distinct) else np.zeros(len(col), bool), index=raw.index)
    check.record(bad, spec.name, raw, "'|'-separated ISO 3166 alpha-2 codes")
    return col


def _ref_parse_hs(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    col = _as_str(raw)
    if _is_number_column(raw):
        check.record(present, spec.name, raw, HS_AS_TEXT)
        return col
    # literal replaces run in Arrow (the regex forms fell back to Python per row)
    col = col.str.removesuffix(".0").str.replace(".", "", regex=False).str.replace(" ", "", regex=False)
    lo, hi = spec.digits
    # [0-9], not \d: Arrow's \d also matches full-width and other Unicode digits
    ok = col.str.fullmatch(rf"[0-9]{{{lo},{hi}}}").fillna(False).astype(bool)
    check.record(present & ~ok, spec.name, raw, f"an HS code of {lo} to {hi} digits")
    return col


def _ref_parse_category(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    col = _as_str(raw).str.lower()
    _ref_check_length(col, spec, check)
    if not spec.vocab:
        return col
    # case-insensitive match, canonical spelling kept (e.g. "pepper / CS spray")
    canon = {v.lower(): v for v in spec.vocab}
    known = col.isin(list(canon)).fillna(False).astype(bool)
    for low, v in canon.items():
        if low != v:  # vectorised: only the few mixed-case entries need rewriting
            col = col.mask((col == low).fillna(False).astype(bool), v)
    unknown = present & ~known
    if spec.strict:
        check.record(unknown, spec.name, raw, f"one of {list(spec.vocab)}")
    elif unknown.any():
        counts = col[unknown].value_counts()
        check.report.unknown_values[spec.name] = {str(k): int(v) for k, v in counts.items()}
    return col


def _ref_parse_number(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    col = pd.to_numeric(raw, errors="coerce").astype("float64")
    check.record(present & col.isna(), spec.name, raw, "a number")
    # "inf" and 1e400 parse as infinity: no quantity or probability is infinite
    infinite = pd.Series(np.isinf(col.to_numpy()), index=col.index)
    check.record(infinite, spec.name, raw, "a finite number")
    finite = present & col.notna() & ~infinite
    if spec.minimum is not None:
        check.record(finite & (col < spec.minimum), spec.name, raw, f"a number ≥ {spec.minimum:g}")
    if spec.maximum is not None:
        check.record(finite & (col > spec.maximum), spec.name, raw, f"a number ≤ {spec.maximum:g}")
    return col.mask(infinite)


def _ref_parse_bool(raw: pd.Series, spec: FieldSpec, present: pd.Series, check: _Check) -> pd.Series:
    mapped = raw.map(_to_bool)
    check.record(present & mapped.isna(), spec.name, raw, "true/false (or 1/0)")
    return mapped.astype("boolean")


_REF_PARSERS: dict[str, Callable[[pd.Series, FieldSpec, pd.Series, _Check], pd.Series]] = {
    "id": _ref_parse_text, "str": _ref_parse_text, "date": _ref_parse_date, "country": _ref_parse_country,
    "countries": _ref_parse_countries, "hs": _ref_parse_hs, "category": _ref_parse_category, "int": _ref_parse_number,
    "float": _ref_parse_number, "bool": _ref_parse_bool,
}
