"""One canonical in-memory form for feature input: a dict of numpy arrays.

Both a validated DataFrame (training, batch) and a list of API records (serving) are turned
into this form here, so every feature family sees identical inputs whatever the path. Strings are
object arrays with ``None`` for missing; numbers float64 with NaN; dates int64 days.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features._asof import Factorized, to_days
from features.contracts import CANONICAL_STRING, TRANSIT_SEP

STRING_COLUMNS = (
    "declaration_id", "direction", "office_id", "office_type", "importer_id", "declarant_id",
    "origin_country", "departure_country", "transit_countries", "destination_country", "conveyance",
    "hs_code", "goods_description", "currency",
)
NUMERIC_COLUMNS = ("quantity", "gross_weight_kg", "customs_value")
DATE_COLUMN = "declaration_date"


def _clean_objects(arr: np.ndarray) -> np.ndarray:
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            out[i] = None
        else:
            s = str(v).strip()
            out[i] = s if s else None
    return out


def object_array(s: pd.Series) -> np.ndarray:
    """A string column as an object array with ``None`` for missing values."""
    return s.astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]


def clean_strings(s: pd.Series) -> np.ndarray:
    """A string column stripped, with ``None`` for missing or blank values."""
    arr = object_array(s.astype("string").str.strip())
    arr[arr == ""] = None
    return arr


def columns_from_frame(df: pd.DataFrame, numeric_extras: Sequence[str] = (),
                       string_extras: Sequence[str] = ()) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    n = len(df)
    for c in (*STRING_COLUMNS, *string_extras):
        if c not in df.columns:
            cols[c] = np.full(n, None, dtype=object)
        elif c in STRING_COLUMNS and df[c].dtype == CANONICAL_STRING:
            # a validated contract column is clean already: skip a second strip (a tenth of batch features)
            arr = df[c].to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
            arr[arr == ""] = None
            cols[c] = arr
        else:
            cols[c] = clean_strings(df[c])
    if "transit_countries" in df.columns:
        cols["transit_countries"] = np.array([v if v is not None else "" for v in cols["transit_countries"]],
                                             dtype=object)
    for c in (*NUMERIC_COLUMNS, *numeric_extras):
        if c in df.columns:
            cols[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            cols[c] = np.full(n, np.nan)
    cols["day"] = to_days(df[DATE_COLUMN].to_numpy())
    return cols


def columns_from_records(records: Sequence[Mapping[str, Any]], numeric_extras: Sequence[str] = (),
                         string_extras: Sequence[str] = ()) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for c in (*STRING_COLUMNS, *string_extras):
        raw = [r.get(c) for r in records]
        if c == "transit_countries":
            raw = [TRANSIT_SEP.join(v) if isinstance(v, list | tuple) else (v or "") for v in raw]
        cols[c] = _clean_objects(np.array(raw, dtype=object))
    cols["transit_countries"] = np.array([v if v is not None else "" for v in cols["transit_countries"]],
                                         dtype=object)
    for c in (*NUMERIC_COLUMNS, *numeric_extras):
        vals = [r.get(c) for r in records]
        cols[c] = np.array([np.nan if v is None or v == "" else float(v) for v in vals], dtype=np.float64)
    cols["day"] = to_days(np.array([str(r[DATE_COLUMN])[:10] for r in records], dtype="datetime64[D]"))
    return cols


def per_unique(values: np.ndarray, fn: Callable[[Any], Any], dtype: Any = object) -> np.ndarray:
    """``fn`` applied to each distinct value once, spread back to every row (codes, countries and
    descriptions repeat heavily, so this turns row loops into short loops over distinct values)."""
    if len(values) < 64:
        return np.array([fn(v) for v in values], dtype=dtype)
    f = Factorized(values)
    # fromiter: each result is one element, even a tuple (np.array would stack equal-length tuples)
    return f.spread(np.fromiter((fn(u) for u in f.uniques), dtype=dtype, count=len(f.uniques)), fn(None))


def heading(hs: np.ndarray, digits: int = 4) -> np.ndarray:
    return per_unique(hs, lambda h: h[:digits] if h else None)


def pair(a: np.ndarray, b: np.ndarray, sep: str = ">") -> np.ndarray:
    return np.array([f"{x or '?'}{sep}{y or '?'}" for x, y in zip(a, b, strict=True)], dtype=object)
