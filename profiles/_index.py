"""Distinct-value indexes of declaration columns for profile matching.

Every condition is evaluated on a column's distinct values (codes), never on rows: a field is
factorized once, and a condition becomes a set of codes. Rows are reached through an inverted
index (rows sorted by code), so a selective profile costs in proportion to the rows it can match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import to_days
from features.contracts import DECLARATION

NO_EXPIRY = np.iinfo(np.int64).max
NUMERIC_KINDS = frozenset({"int", "float", "extra_number", "date"})
_EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    return (d - _EPOCH).days


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for every (s, n), without a Python loop."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(total)


def stable_order(keys: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for integers in [0, bound): numpy sorts 16-bit integers by
    radix (linear time), so larger keys are sorted by their low then their high 16 bits."""
    if bound <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    if bound > 1 << 32:
        return np.argsort(keys, kind="stable")
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")]


class FieldIndex:
    """One column as sorted distinct values and row codes (missing → -1), with lazy look-ups."""

    def __init__(self, values: Any, kind: str, factorized: Any = None):
        self.kind = kind
        if factorized is not None:  # a text column the feature pipeline has factorized (codes, uniques)
            self.codes = np.asarray(factorized.codes, dtype=np.int64)
            uniques = np.asarray(factorized.uniques, dtype=object)
            missing = np.flatnonzero(pd.isna(uniques))
            if len(missing):  # distinct values no row holds any more (blanks made missing): kept as ""
                uniques = uniques.copy()
                uniques[missing] = ""
            self.uniques = _as_strings(uniques)
        else:
            # numbers and days sorted, so `between` is one range of codes; text needs no order
            codes, uniques = pd.factorize(values, sort=kind in NUMERIC_KINDS, use_na_sentinel=True)
            self.codes = np.asarray(codes, dtype=np.int64)
            if kind in NUMERIC_KINDS:
                self.uniques = np.asarray(uniques, dtype=np.float64 if kind != "date" else np.int64)
            else:
                self.uniques = _as_strings(np.asarray(uniques, dtype=object))
        self.counts = np.bincount(self.codes + 1, minlength=len(self.uniques) + 1)
        self._keys: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._starts = np.concatenate(([0], np.cumsum(self.counts)))
        self._lookup: dict[Any, int] | None = None
        self._arrow_uniques: pa.Array | None = None
        self._tokens: tuple[dict[str, int], np.ndarray, np.ndarray] | None = None

    @property
    def keys(self) -> np.ndarray:
        """The codes +1 shifted (0 = missing) as 32-bit integers, what look-up tables and sorts are
        indexed by (built on first use: most fields of a chunk are only looked up by distinct value)."""
        if self._keys is None:
            self._keys = (self.codes + 1).astype(np.int32)
        return self._keys

    def __len__(self) -> int:
        return len(self.uniques)

    def null_codes(self) -> np.ndarray:
        """Codes of missing values: -1, and "" (e.g. no transit countries) for text fields."""
        codes = [-1]
        if self.kind not in NUMERIC_KINDS and len(self.uniques):
            codes += list(np.flatnonzero(self.uniques == ""))
        return np.array(codes, dtype=np.int64)

    def row_count(self, codes: np.ndarray) -> int:
        return int(self.counts[codes + 1].sum())

    def span_count(self, start: int, stop: int) -> int:
        """Rows holding a code in ``start`` ≤ code < ``stop``."""
        return int(self._starts[stop + 1] - self._starts[start + 1]) if stop > start else 0

    def span_counts(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """``span_count`` of many spans at once (``stop`` ≥ ``start``)."""
        return self._starts[stop + 1] - self._starts[start + 1]

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Rows holding any of ``codes`` (unordered)."""
        return self.order[ranges(self._starts[codes + 1], self.counts[codes + 1])]

    def span_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows holding a code in ``start`` ≤ code < ``stop`` (unordered)."""
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        if self._order is not None:
            return self._order[self._starts[start + 1]:self._starts[stop + 1]]
        return np.flatnonzero((self.codes >= start) & (self.codes < stop))

    def rows_of(self, codes: np.ndarray) -> np.ndarray:
        """``rows(codes)`` (rows code by code, in the order of ``codes``; a code may repeat) without
        sorting the whole column: only the rows holding one of these codes are put in code order."""
        if self._order is not None:
            return self.rows(codes)
        wanted = self.lut(codes)
        keys = self.keys
        sel = np.flatnonzero(wanted[keys])
        order = sel[stable_order(keys[sel], len(self.uniques) + 1)]
        starts = np.concatenate(([0], np.cumsum(np.where(wanted, self.counts, 0))))
        return order[ranges(starts[codes + 1], self.counts[codes + 1])]

    @property
    def order(self) -> np.ndarray:
        """Rows sorted by code (the inverted index), built on first use."""
        if self._order is None:
            self._order = stable_order(self.keys, len(self.uniques) + 1)
        return self._order

    def lut(self, codes: np.ndarray) -> np.ndarray:
        """A boolean per code (+1 shifted, so -1 = missing is position 0)."""
        out = np.zeros(len(self.uniques) + 1, dtype=bool)
        out[codes + 1] = True
        return out

    def exact(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(code, position in ``values``) of each value present in the column."""
        if self._lookup is None:  # a dict: pandas' Index look-ups cost milliseconds per call in overhead
            self._lookup = {u: i for i, u in enumerate(self.uniques.tolist())}
        get = self._lookup.get
        found = np.fromiter((get(v, -1) for v in np.asarray(values).tolist()), dtype=np.int64, count=len(values))
        keep = found >= 0
        return found[keep].astype(np.int64), np.flatnonzero(keep)

    def prefixed(self, prefixes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(code, position in ``prefixes``) of each value starting with one of ``prefixes``: per prefix
        length, the distinct values' first characters hashed against the distinct prefixes (Arrow)."""
        codes, where = [], []
        prefixes = np.asarray(prefixes, dtype=object)
        lengths = np.fromiter((len(p) for p in prefixes), dtype=np.int64, count=len(prefixes))
        arr = self._arrow()
        for length in np.unique(lengths).tolist():
            pos = np.flatnonzero(lengths == length)
            distinct, inverse = np.unique(prefixes[pos].astype(str), return_inverse=True)
            heads = pc.utf8_slice_codeunits(arr, 0, int(length))
            found = pc.index_in(heads, value_set=pa.array(distinct, pa.string())).to_numpy(zero_copy_only=False)
            hit = np.flatnonzero(~np.isnan(found)) if found.dtype.kind == "f" else np.flatnonzero(found >= 0)
            which = found[hit].astype(np.int64)  # the distinct prefix of each hit value
            # every position holding that prefix (the same prefix may come from several conditions)
            by = np.argsort(inverse, kind="stable")
            counts = np.bincount(inverse, minlength=len(distinct))
            starts = np.concatenate(([0], np.cumsum(counts)))[:-1]
            n = counts[which]
            codes.append(np.repeat(hit, n))
            where.append(pos[by[ranges(starts[which], n)]])
        if not codes:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(codes).astype(np.int64), np.concatenate(where)

    def arrow_uniques(self) -> pa.Array:
        """The distinct values as Arrow strings (built once)."""
        return self._arrow()

    def _arrow(self) -> pa.Array:
        if self._arrow_uniques is None:
            self._arrow_uniques = pa.array(self.uniques.astype(str) if self.uniques.dtype != object
                                           else self.uniques, pa.string())
        return self._arrow_uniques

    def tokens(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(code, position in ``words``) of each value containing one of ``words`` as a whole word
        (lower-cased words of a description, or the countries of a ``|``-separated list)."""
        if self._tokens is None:
            self._tokens = self._token_index()
        vocab, starts, owners = self._tokens
        ids = np.fromiter((vocab.get(str(w), -1) for w in words), dtype=np.int64, count=len(words))
        pos = np.flatnonzero(ids >= 0)
        ids = ids[pos]
        lengths = starts[ids + 1] - starts[ids]
        return owners[ranges(starts[ids], lengths)], np.repeat(pos, lengths)

    def _token_index(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        arr = pa.array(self.uniques, type=pa.string())
        if self.kind == "countries":
            lists = pc.split_pattern(arr, "|")
        else:  # whole words, as re's \w+ finds them
            lists = pc.split_pattern_regex(pc.utf8_lower(arr), r"[^\p{L}\p{N}_]+")
        flat = pc.list_flatten(lists).to_numpy(zero_copy_only=False).astype(object)
        owner = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
        keep = flat != ""
        tok_codes, tok_uniques = pd.factorize(flat[keep])
        order = np.argsort(tok_codes, kind="stable")
        starts = np.concatenate(([0], np.cumsum(np.bincount(tok_codes, minlength=len(tok_uniques)))))
        vocab = {str(t): i for i, t in enumerate(tok_uniques)}
        return vocab, starts, owner[keep][order]


def _as_strings(uniques: np.ndarray) -> np.ndarray:
    """Distinct values as strings; integral numbers without ".0" (IDs read as numbers)."""
    if pd.api.types.infer_dtype(uniques, skipna=False) == "string":  # the usual case, checked in C
        return uniques
    out = np.empty(len(uniques), dtype=object)
    for i, v in enumerate(uniques):
        if isinstance(v, float | np.floating) and float(v).is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


class Table:
    """The declaration columns matching reads: a validated DataFrame or the canonical column arrays
    of ``features._columns`` (``day`` = days since 1970), indexed lazily per field."""

    def __init__(self, data: pd.DataFrame | Mapping[str, np.ndarray], kinds: Mapping[str, str],
                 scored: Mapping[str, Any] | None = None):
        self._data = data
        self._kinds = kinds
        self._fields: dict[str, FieldIndex] = {}
        # key columns already factorized by the feature pipeline (a ``features`` ColumnSet keeps them),
        # of ``data`` itself or of the columns the model scored from it (same rows, same values)
        self._factorized: dict[str, Any] = {**getattr(data, "factorized_", {}), **getattr(scored, "factorized_", {})}
        if isinstance(data, pd.DataFrame):
            self.n = len(data)
            self.day = to_days(data[DECLARATION.date_field].to_numpy())
        else:
            self.day = (np.asarray(data["day"], dtype=np.int64) if "day" in data
                        else to_days(np.asarray(data[DECLARATION.date_field])))
            self.n = len(self.day)

    def column(self, name: str) -> Any:
        kind = self._kinds[name]
        if name == DECLARATION.date_field:
            return self.day
        if name not in self._data:
            return np.full(self.n, None, dtype=object)
        values = self._data[name]
        if kind in NUMERIC_KINDS:
            return pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce")
        return values

    def field(self, name: str) -> FieldIndex:
        if name not in self._fields:
            kind = self._kinds[name]
            done = self._factorized.get(name)
            if done is not None and kind not in NUMERIC_KINDS and name != DECLARATION.date_field:
                self._fields[name] = FieldIndex(None, kind, done)
            else:
                self._fields[name] = FieldIndex(self.column(name), kind)
        return self._fields[name]

    def values(self, name: str) -> list[Any]:
        kind = self._kinds[name]
        if name == DECLARATION.date_field:
            return [float(d) for d in self.day.tolist()]
        if name not in self._data:
            return [None] * self.n
        raw = self._data[name]  # no pandas conversion: this path serves single declarations
        return row_values(raw.to_numpy(dtype=object) if isinstance(raw, pd.Series) else raw, kind)


def row_values(values: Any, kind: str) -> list[Any]:
    """A column as Python values in the form ``FieldIndex`` gives its distinct values (text as str,
    integral numbers in text fields without ".0", numbers as float, days as int), ``None`` when
    missing or blank: the single-declaration path reads these."""
    out: list[Any] = []
    numeric = kind in NUMERIC_KINDS
    for v in np.asarray(values, dtype=object).tolist():
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
            out.append(None)
        elif numeric:
            try:
                out.append(float(v))
            except (TypeError, ValueError):  # as pd.to_numeric(errors="coerce") does on the batch path
                out.append(None)
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            s = str(v)
            out.append(s if s != "" else None)
    return out
