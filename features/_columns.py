"""One canonical in-memory form for feature input: a dict of numpy arrays.

Both a validated DataFrame (training, batch) and a list of API records (serving) are turned
into this form here, so every feature family sees identical inputs whatever the path. Strings are
object arrays with ``None`` for missing; numbers float64 with NaN; dates int64 days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import features._asof as _asof
from features._asof import Factorized, factorized, to_days
from features._kept import kept_dictionary
from features.contracts import CANONICAL_STRING, TRANSIT_SEP

STRING_COLUMNS = (
    "declaration_id", "direction", "office_id", "office_type", "importer_id", "declarant_id",
    "origin_country", "departure_country", "transit_countries", "destination_country", "conveyance",
    "hs_code", "goods_description", "currency",
)
#: string columns whose every value is its own (nothing to gain from factorizing them)
UNIQUE_COLUMNS = ("declaration_id",)
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


class ColumnSet(dict):
    """Canonical columns, a plain dict to every reader, that also keep key columns in factorized
    form (:class:`~features._asof.Factorized`) and the keys derived from them, so the look-ups of a
    batch map each distinct value once and build no Python string per row (:func:`keys_of`,
    :func:`derived`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.factorized_: dict[str, Factorized] = {}
        self.derived_: dict[str, np.ndarray | Factorized] = {}
        #: text columns as read from Arrow (large_string, missing = null or ""), when they were
        self.arrow_: dict[str, pa.Array] = {}
        self._make: dict[str, Callable[[], np.ndarray]] = {}

    def set_lazy(self, name: str, make: Callable[[], np.ndarray]) -> None:
        """Column ``name`` is ``make()``, called on its first read (a batch's features read the factorized
        form of key columns, and the output takes the ids from Arrow: 13 object columns and the ids of a
        100k-row chunk cost ~20 ms and 15 MB that nothing reads)."""
        self._make[name] = make
        dict.__setitem__(self, name, _LAZY)

    def set_factorized(self, name: str, f: Factorized) -> None:
        """Keep column ``name`` factorized; its object array is made on first read."""
        self.factorized_[name] = f
        self.set_lazy(name, f.values)

    def __getitem__(self, key: str) -> np.ndarray:
        value = dict.__getitem__(self, key)
        if value is _LAZY:
            value = self._make.pop(key)()
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:  # noqa: SIM401 (dict.get would return the placeholder)
            return self[key]
        return default

    def __iter__(self) -> Iterator[str]:
        # overridden so that dict(cols) and {**cols} read values through __getitem__, never the placeholder
        return dict.__iter__(self)

    def _all(self) -> ColumnSet:
        for key in [k for k, v in dict.items(self) if v is _LAZY]:
            self[key]
        return self

    def items(self):  # type: ignore[override]
        return dict.items(self._all())

    def values(self):  # type: ignore[override]
        return dict.values(self._all())

    def copy(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        return dict(self._all())


_LAZY = object()  # a ColumnSet value not made yet


def keys_of(cols: Mapping[str, np.ndarray], name: str) -> np.ndarray | Factorized:
    """A key column of ``cols`` as the look-ups read it: factorized once per batch where that pays
    (``features._asof.factorized``), reusing the factorization a :class:`ColumnSet` keeps."""
    if isinstance(cols, ColumnSet):
        f = cols.factorized_.get(name)
        if f is None:
            got = factorized(cols[name])
            if isinstance(got, Factorized):
                cols.factorized_[name] = got
            return got
        return f
    return factorized(cols[name])


def derived(cols: Mapping[str, np.ndarray], name: str, fn: Callable[..., np.ndarray],
            parts: Sequence[str], arrow_fn: Callable[..., pa.Array] | None = None) -> np.ndarray | Factorized:
    """The key ``fn(*columns parts)`` (arrays in, one key per row out), e.g. the route of each
    declaration: called on the distinct combinations only when the parts are factorized, else on
    the rows (the same keys), and kept on a :class:`ColumnSet` under ``name`` for the other
    families that read it."""
    if isinstance(cols, ColumnSet) and name in cols.derived_:
        return cols.derived_[name]
    keys = [keys_of(cols, p) for p in parts]
    out: np.ndarray | Factorized
    if all(isinstance(k, Factorized) for k in keys):
        out = Factorized.combine(keys, fn, arrow_fn)  # type: ignore[arg-type]
    else:
        out = np.asarray(fn(*(cols[p] for p in parts)), dtype=object)
    if isinstance(cols, ColumnSet):
        cols.derived_[name] = out
    return out


def prefix_keys(cols: Mapping[str, np.ndarray], column: str, length: int) -> np.ndarray | Factorized:
    """The first ``length`` characters of a string column (``None`` where missing), e.g. the HS
    heading of each row: sliced in Arrow once per distinct value when the column is factorized, else
    :func:`heading` row by row (the same keys); kept on a :class:`ColumnSet`."""
    name = f"{column}[:{length}]"
    if isinstance(cols, ColumnSet) and name in cols.derived_:
        return cols.derived_[name]
    keys = keys_of(cols, column)
    out = keys.prefix(length) if isinstance(keys, Factorized) else heading(cols[column], length)
    if isinstance(cols, ColumnSet):
        cols.derived_[name] = out
    return out


#: text columns a batch factorizes: a reader may decode them from Parquet's own dictionaries and keep
#: those (:func:`features._kept.keep_dictionaries`), so they are not hashed again here
DICTIONARY_COLUMNS = tuple(c for c in STRING_COLUMNS if c not in UNIQUE_COLUMNS)

def _factorized_column(s: pd.Series, transit: bool, dictionary: pa.DictionaryArray | None = None) -> Factorized:
    f = Factorized.from_arrow(dictionary if dictionary is not None else pa.array(s.array))
    if transit:  # no transit is "" in the columns, a value of its own rather than a missing key
        codes = np.where(f.codes < 0, f.n_uniques, f.codes)
        arrow = f.arrow_uniques
        if arrow is None:
            return Factorized.from_codes(codes, np.append(f.uniques, np.array([""], dtype=object)))
        f = Factorized.from_codes(codes, None)
        f.arrow_uniques = pa.concat_arrays([arrow, pa.array([""], arrow.type)])
    return f


def _validated_objects(s: pd.Series) -> np.ndarray:
    arr = s.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    arr[arr == ""] = None
    return arr


def arrow_strings(cols: Mapping[str, np.ndarray], name: str) -> pa.Array:
    """Text column ``name`` as Arrow strings (null where missing): taken from the Arrow column a
    :class:`ColumnSet` kept (no Python string per row), else converted from its objects."""
    arrow = cols.arrow_.get(name) if isinstance(cols, ColumnSet) else None
    if arrow is None:
        return pa.array(np.asarray(cols[name], dtype=object), pa.string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    arrow = arrow.cast(pa.string())
    blank = pc.equal(arrow, "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), arrow) if pc.any(blank).as_py() else arrow


def known_arrow(values: pa.Array) -> pa.Array:
    """``value or '?'`` of each Arrow string."""
    filled = pc.fill_null(values, "")
    return pc.if_else(pc.equal(filled, ""), "?", filled)


def pair_arrow(a: pa.Array, b: pa.Array, sep: str = ">") -> pa.Array:
    """:func:`pair` on Arrow strings."""
    return pc.binary_join_element_wise(known_arrow(a), sep, known_arrow(b), "")


def columns_from_frame(df: pd.DataFrame, numeric_extras: Sequence[str] = (),
                       string_extras: Sequence[str] = ()) -> dict[str, np.ndarray]:
    cols = ColumnSet()
    n = len(df)
    for c in (*STRING_COLUMNS, *string_extras):
        if c not in df.columns:
            cols[c] = np.full(n, None, dtype=object)
        elif (c in STRING_COLUMNS and df[c].dtype == CANONICAL_STRING and c not in UNIQUE_COLUMNS
              and n >= _factorize_min_rows()):
            # a validated contract column (clean already) read from Arrow: dictionary-encoded there,
            # each distinct value made a Python string once and the object column one take
            arr = pa.array(df[c].array)
            cols.set_factorized(c, _factorized_column(df[c], c == "transit_countries", kept_dictionary(df, c, arr)))
        elif c in STRING_COLUMNS and df[c].dtype == CANONICAL_STRING:
            # a validated contract column is clean already: skip a second strip (a tenth of batch features)
            if n >= _factorize_min_rows():  # a batch: kept in Arrow, objects made only if read
                cols.arrow_[c] = pa.array(df[c].array)
                cols.set_lazy(c, partial(_validated_objects, df[c]))
            else:
                cols[c] = _validated_objects(df[c])
        else:
            cols[c] = clean_strings(df[c])
    if "transit_countries" in df.columns and "transit_countries" not in cols.factorized_:
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


def _factorize_min_rows() -> int:  # read at call time: tests raise it to compare both paths
    return _asof.FACTORIZE_MIN_ROWS


def per_unique(values: np.ndarray | Factorized, fn: Callable[[Any], Any], dtype: Any = object) -> np.ndarray:
    """``fn`` applied to each distinct value once, spread back to every row (codes, countries and
    descriptions repeat heavily, so this turns row loops into short loops over distinct values)."""
    if isinstance(values, Factorized):
        f = values
    elif len(values) < 64:
        return np.array([fn(v) for v in values], dtype=dtype)
    else:
        f = Factorized(values)
    # fromiter: each result is one element, even a tuple (np.array would stack equal-length tuples)
    return f.spread(np.fromiter((fn(u) for u in f.uniques), dtype=dtype, count=len(f.uniques)), fn(None))


def heading(hs: np.ndarray, digits: int = 4) -> np.ndarray:
    return per_unique(hs, lambda h: h[:digits] if h else None)


def pair(a: np.ndarray, b: np.ndarray, sep: str = ">") -> np.ndarray:
    return np.array([f"{x or '?'}{sep}{y or '?'}" for x, y in zip(a, b, strict=True)], dtype=object)
