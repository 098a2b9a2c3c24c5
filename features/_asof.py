"""Point-in-time lookups: cumulative event sums per key, read *strictly before* a day.

An :class:`AsOfTable` is built once from events ``(key, day, values...)``. ``lookup(keys, days)``
returns, for each query, the sums over events of the same key with ``event day < query day``.
The same vectorised code answers one row (the API) and millions (training, batch), so the
training path and the serving path cannot disagree.

A query dated after the table's last event (every row of a nightly manifest scored with a snapshot
cut before it) sees all of its key's events: the answer is the key's *latest* sums, a static table
indexed by key code (:meth:`AsOfTable.latest`), read with one ``take`` instead of a binary search.
Rows dated on or before the last event keep the binary search; a mixed batch is split by day.
``SNAPSHOT_JOIN = False`` forces the binary search everywhere (benchmarks compare the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Columns = Mapping[str, np.ndarray]

_SHIFT = np.int64(1) << np.int64(32)
_DAY0 = np.int64(1) << np.int64(30)  # days are offset so they stay positive inside the composite key
NO_DAY = -(10**9)

#: read rows dated after a table's last event from its latest sums per key (``False``: always the
#: binary search; the results are identical, ``tests/test_features_snapshot.py``)
SNAPSHOT_JOIN = True


class KeyEncoder:
    """Maps hashable keys (strings) to dense integer codes; unknown or missing keys → -1."""

    def __init__(self, keys: Sequence[object] | np.ndarray):
        uniq = sorted({k for k in keys if k is not None and k == k}, key=str)
        self.vocab_: dict[object, int] = {k: i for i, k in enumerate(uniq)}

    def __len__(self) -> int:
        return len(self.vocab_)

    def encode(self, keys: np.ndarray | Factorized) -> np.ndarray:
        if isinstance(keys, Factorized):  # each distinct key once, spread back to the rows
            if keys.arrow_uniques is not None and keys.n_uniques >= ARROW_MIN_UNIQUES:
                return keys.spread(str_codes(self.vocab_, self.__dict__, keys.arrow_uniques, -1), -1)
            return keys.spread(self.encode(keys.uniques), -1)
        if keys.dtype.kind in "iu":  # integer keys (composite codes): a binary search, no Python int per row
            return int_codes(self.vocab_, self.__dict__, keys)
        # map(dict.get) is the fastest public look-up here (None is never a key, so it gets -1)
        return np.fromiter(map(self.vocab_.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}


def int_codes(vocab: Mapping[object, int], cache: dict, keys: np.ndarray) -> np.ndarray:
    """``vocab.get(k, -1)`` for an integer array ``keys``: the vocabulary's integer keys sorted
    once (kept in ``cache``, an object's ``__dict__``, under ``_cache_ints``), then searched."""
    index = cache.get("_cache_ints")
    if index is None:
        ints = sorted((k, c) for k, c in vocab.items() if isinstance(k, int | np.integer) and not isinstance(k, bool))
        index = (np.array([k for k, _ in ints], dtype=np.int64), np.array([c for _, c in ints], dtype=np.int64))
        cache["_cache_ints"] = index
    sorted_keys, codes = index
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.int64)
    if len(keys) >= FACTORIZE_MIN_ROWS:
        # a batch: one hash look-up per row in the vocabulary's own table (built once, then shared by
        # the chunks in flight), 2-3x faster than factorizing the keys and searching the distinct ones
        pos = _int_index(cache, sorted_keys).get_indexer(keys)  # type: ignore[arg-type]  # (an array is fine)
        return np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, codes[pos], -1)


def filled_index(keys: Any, dtype: Any = None) -> pd.Index:
    """``keys`` as a pandas Index whose hash table is already filled: safe to keep and share between
    threads (one built lazily could be read half built by another thread), and its ``get_indexer``
    looks a batch of values up in C."""
    index = pd.Index(keys, dtype=dtype)
    index.get_indexer(index[:1])  # fills the hash table
    return index


def _int_index(cache: dict, sorted_keys: np.ndarray) -> pd.Index:
    """The vocabulary's integer keys as a :func:`filled_index`, kept in ``cache`` (under
    ``_cache_int_index``)."""
    index = cache.get("_cache_int_index")
    if index is None:
        index = cache["_cache_int_index"] = filled_index(sorted_keys)
    return index


def str_codes(vocab: Mapping[Any, float], cache: dict, values: pa.Array, missing: float) -> np.ndarray:
    """``vocab.get(v, missing)`` for Arrow strings ``values``: a hash look-up in C++ (``index_in``)
    against the vocabulary's string keys, kept as an Arrow array in ``cache`` (an object's
    ``__dict__``, under ``_cache_strings``)."""
    entry = cache.get("_cache_strings")
    if entry is None:
        keys = [k for k in vocab if isinstance(k, str)]
        entry = (pa.array(keys, pa.string()), np.array([vocab[k] for k in keys]))
        cache["_cache_strings"] = entry
    value_set, codes = entry
    pos = pc.fill_null(pc.index_in(values, value_set=value_set), -1).to_numpy(zero_copy_only=False)
    out = np.empty(len(codes) + 1, dtype=np.float64 if missing != missing else np.int64)  # NaN: float codes
    out[:-1] = codes
    out[-1] = missing  # position -1: not in the vocabulary
    return out[pos]


#: distinct values from which a vocabulary is read in Arrow rather than with ``dict.get``
ARROW_MIN_UNIQUES = 256


class Factorized:
    """A key column as distinct values + row codes (missing → -1), shared by the look-ups that
    read the same keys: each table then maps only the distinct keys to its own codes."""

    #: the distinct values as Arrow strings, when the column was read from Arrow (:meth:`prefix`)
    arrow_uniques: pa.Array | None = None
    _uniques: np.ndarray | None = None

    def __init__(self, keys: np.ndarray):
        arr = np.asarray(keys)
        codes, uniques = pd.factorize(arr if arr.dtype.kind in "iu" else np.asarray(keys, dtype=object),
                                      use_na_sentinel=True)
        self.codes = codes
        self.uniques = np.asarray(uniques, dtype=object)

    @property
    def uniques(self) -> np.ndarray:
        """The distinct values as Python objects (``None`` for a missing one). A column read from Arrow
        makes them on first use: a batch's look-ups read the Arrow values instead, so a column of
        40,000 distinct HS codes builds no Python string unless something asks for one."""
        if self._uniques is None:
            arrow = self.arrow_uniques
            self._uniques = (np.zeros(0, dtype=object) if arrow is None else
                             np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=object))
        return self._uniques

    @uniques.setter
    def uniques(self, values: np.ndarray | None) -> None:
        self._uniques = values

    @property
    def n_uniques(self) -> int:
        """``len(self.uniques)``, without making the Python values."""
        if self._uniques is not None:
            return len(self._uniques)
        return len(self.arrow_uniques) if self.arrow_uniques is not None else 0

    def __len__(self) -> int:
        return len(self.codes)

    def spread(self, per_unique: np.ndarray, missing: object) -> np.ndarray:
        """One value per distinct key (in ``uniques`` order) → one per row; missing keys get ``missing``."""
        out = np.empty(len(per_unique) + 1, dtype=per_unique.dtype)
        out[:-1] = per_unique
        out[-1] = missing  # code -1
        return out[self.codes]

    def key(self, i: int) -> object:
        c = self.codes[i]
        return self.uniques[c] if c >= 0 else None

    def values(self) -> np.ndarray:
        """The column as an object array (``None`` where missing): one take, no string built."""
        return self.spread(self.uniques, None)

    @classmethod
    def from_codes(cls, codes: np.ndarray, uniques: np.ndarray | None) -> Factorized:
        f = cls.__new__(cls)
        f.codes = codes
        f.uniques = uniques
        return f

    @classmethod
    def from_arrow(cls, arr: pa.Array | pa.ChunkedArray, blank_is_missing: bool = True) -> Factorized:
        """A string column read from Arrow: dictionary-encoded in C++, each distinct value decoded
        to a Python string once (nulls, and blanks if ``blank_is_missing``, are missing)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.intp)
        dictionary = enc.dictionary
        # the missing values among the distinct ones, found in Arrow: a null, or a blank if
        # ``blank_is_missing`` (the Python values are made only if asked for, :attr:`uniques`)
        absent = dictionary.is_null()
        if blank_is_missing and (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
            absent = pc.fill_null(pc.or_kleene(absent, pc.equal(dictionary, "")), False)
        missing = np.flatnonzero(absent.to_numpy(zero_copy_only=False))
        if len(missing):  # the missing value has code -1, whatever spelled it
            remap = np.arange(len(dictionary) + 1, dtype=np.intp)
            remap[missing] = -1
            remap[-1] = -1
            codes = remap[codes]
            dictionary = pc.if_else(absent, pa.scalar(None, dictionary.type), dictionary)
        f = cls.from_codes(codes, None)
        f.arrow_uniques = dictionary
        return f

    def prefix(self, length: int) -> Factorized:
        """Each key cut to its first ``length`` characters (``None`` for a missing or empty key):
        Arrow cuts the distinct values, which are then factorized again, so a column of 40,000
        distinct HS codes becomes a few hundred subheadings without a Python string per value."""
        arrow = getattr(self, "arrow_uniques", None)
        if arrow is None:
            arrow = pa.array(self.uniques, pa.large_string())
        inner = Factorized.from_arrow(pc.utf8_slice_codeunits(arrow, 0, length))
        codes = np.append(inner.codes, -1)[self.codes]
        f = Factorized.from_codes(codes, inner.uniques)
        f.arrow_uniques = inner.arrow_uniques
        return f

    @classmethod
    def combine(cls, parts: Sequence[Factorized], fn: Callable[..., np.ndarray],
                arrow_fn: Callable[..., pa.Array] | None = None) -> Factorized:
        """A key derived from several columns by ``fn`` (arrays of values → array of keys), called
        once on the distinct combinations of their values (a ``None`` result is a missing key).
        ``arrow_fn``, the same function on Arrow string arrays (nulls for missing values), is used
        instead when every part was read from Arrow."""
        n = len(parts[0])
        key = parts[0].codes.astype(np.int64) + 1
        size = parts[0].n_uniques + 1
        for p in parts[1:]:
            if size * (p.n_uniques + 1) >= 2**62:  # made dense again first: the product never overflows
                key = pd.factorize(key)[0].astype(np.int64)
                size = int(key.max()) + 1 if n else 1
            key = key * (p.n_uniques + 1) + (p.codes + 1)
            size *= p.n_uniques + 1
        codes, uniq = pd.factorize(key)
        first = np.empty(len(uniq), dtype=np.intp)
        first[codes[::-1]] = np.arange(n - 1, -1, -1)  # a row of each combination (its first)
        arrow = None
        if arrow_fn is not None and all(p.arrow_uniques is not None for p in parts):
            picks = [p.codes[first] for p in parts]
            arrow = arrow_fn(*(p.arrow_uniques.cast(pa.string()).take(pa.array(c, mask=c < 0))  # type: ignore[union-attr]
                               for p, c in zip(parts, picks, strict=True)))
            uniques = None  # made from ``arrow`` if asked for (:attr:`uniques`)
            missing = arrow.is_null().to_numpy(zero_copy_only=False)
        else:
            cols = [_with_missing(p.uniques)[p.codes[first]] for p in parts]
            uniques = np.empty(len(uniq), dtype=object)
            uniques[:] = fn(*cols)
            missing = np.array([u is None for u in uniques], dtype=bool)
        if missing.any():
            codes = np.where(missing[codes], -1, codes)
        f = cls.from_codes(codes.astype(np.intp), uniques)
        f.arrow_uniques = arrow
        return f

    @classmethod
    def constant(cls, key: object, n: int) -> Factorized:
        f = cls.__new__(cls)
        f.codes = np.zeros(n, dtype=np.intp)
        f.uniques = np.array([key], dtype=object)
        return f


def _with_missing(uniques: np.ndarray) -> np.ndarray:
    """``uniques`` and a ``None`` after them, read by code -1."""
    out = np.empty(len(uniques) + 1, dtype=object)
    out[:-1] = uniques
    return out


FACTORIZE_MIN_ROWS = 4096


def factorized(keys: np.ndarray) -> np.ndarray | Factorized:
    """``keys`` factorized when that pays (``FACTORIZE_MIN_ROWS`` rows or more); small arrays (the
    API's) are looked up directly. Both give identical results (``tests/test_features.py``)."""
    return Factorized(keys) if len(keys) >= FACTORIZE_MIN_ROWS else keys


class CompositeKey:
    """Rows of several key columns → one integer per combination, from vocabularies of the columns
    fitted on the events (a missing part is a value of its own; a value never seen gives -1, which
    has no history). Each column's distinct values are looked up once, no string per row is built."""

    def __init__(self, parts: Sequence[np.ndarray]):
        self.vocabs_: list[dict[object, int]] = []
        size = 1
        for p in parts:
            values = sorted({v for v in np.asarray(p, dtype=object) if v is not None}, key=str)
            vocab: dict[object, int] = {v: i for i, v in enumerate(values, start=1)}
            vocab[None] = 0
            self.vocabs_.append(vocab)
            size *= len(vocab)
        if size >= 2**62:
            raise ValueError(f"{size} combinations do not fit one integer key")

    def codes(self, parts: Sequence[np.ndarray | Factorized]) -> np.ndarray:
        key = np.zeros(len(parts[0]), dtype=np.int64)
        unseen = np.zeros(len(key), dtype=bool)
        for i, (p, vocab) in enumerate(zip(parts, self.vocabs_, strict=True)):
            if not isinstance(p, Factorized) and p.dtype.kind in "iu":  # codes of another key: searched
                ints = self.__dict__.setdefault(f"_cache_part{i}", {})
                c = int_codes(vocab, ints, p)
            elif isinstance(p, Factorized) and p.arrow_uniques is not None and p.n_uniques >= ARROW_MIN_UNIQUES:
                strs = self.__dict__.setdefault(f"_cache_strpart{i}", {})
                c = p.spread(str_codes(vocab, strs, p.arrow_uniques, -1), 0)
            elif isinstance(p, Factorized) or len(key) >= FACTORIZE_MIN_ROWS:
                f = p if isinstance(p, Factorized) else Factorized(p)
                c = f.spread(np.fromiter((vocab.get(u, -1) for u in f.uniques), np.int64, len(f.uniques)), 0)
            else:
                c = np.fromiter((vocab.get(v, -1) for v in p), np.int64, len(p))
            unseen |= c < 0
            key = key * len(vocab) + np.maximum(c, 0)
        key[unseen] = -1
        return key

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}


class AsOfTable:
    """Cumulative sums of event values per key, read as of a day (events strictly before it)."""

    def __init__(self, keys: np.ndarray, days: np.ndarray, values: Mapping[str, np.ndarray],
                 last_day_of: str | None = None):
        keys = np.asarray(keys, dtype=object)
        days = np.asarray(days, dtype=np.int64)
        valid = np.array([k is not None and k == k for k in keys], dtype=bool) if len(keys) else np.zeros(0, bool)
        keys, days = keys[valid], days[valid]
        vals = {n: np.asarray(v, dtype=np.float64)[valid] for n, v in values.items()}
        self.encoder_ = KeyEncoder(keys)
        self.names_ = tuple(vals)
        codes = self.encoder_.encode(keys)
        composite = codes * _SHIFT + (days + _DAY0)
        order = np.argsort(composite, kind="stable")
        composite = composite[order]
        uniq, start = np.unique(composite, return_index=True)
        self.composite_ = uniq
        group_code = uniq // _SHIFT
        first_of_code = np.r_[True, group_code[1:] != group_code[:-1]] if len(uniq) else np.zeros(0, bool)
        self.cum_: dict[str, np.ndarray] = {}
        for name, v in vals.items():
            per_day = np.add.reduceat(v[order], start) if len(uniq) else np.zeros(0)
            total = np.cumsum(per_day)
            # subtract the running total at the start of each key's block
            base = np.where(first_of_code, total - per_day, np.nan)
            base = _ffill(base)
            self.cum_[name] = total - base
        self.last_day_: np.ndarray | None = None
        if last_day_of is not None:
            flag = vals[last_day_of][order]
            per_day = np.add.reduceat(flag, start) if len(uniq) else np.zeros(0)
            day_of = (uniq % _SHIFT) - _DAY0
            marked = np.where(per_day > 0, group_code * _SHIFT + day_of + _DAY0, group_code * _SHIFT)
            acc = np.maximum.accumulate(marked) if len(marked) else marked
            last = acc - group_code * _SHIFT - _DAY0
            self.last_day_ = np.where(acc == group_code * _SHIFT, NO_DAY, last)

    def lookup(self, keys: np.ndarray | Factorized, days: np.ndarray) -> dict[str, np.ndarray]:
        """Sums over events with the same key and an earlier day; zeros when none."""
        if len(keys) == 1:
            return self._lookup_one(keys.key(0) if isinstance(keys, Factorized) else keys[0], int(days[0]))
        if not isinstance(keys, Factorized):
            keys = np.asarray(keys)
            keys = keys if keys.dtype.kind in "iu" else keys.astype(object)
        codes = self.encoder_.encode(keys)
        days = np.asarray(days, dtype=np.int64)
        after = self.after_last_event(days)
        if after.all():
            return self.latest_at(codes)
        if not after.any():
            return self._search(codes, days)
        out = self.latest_at(codes)  # then the rows dated inside the snapshot's period, searched
        inside = np.flatnonzero(~after)
        for n, v in self._search(codes[inside], days[inside]).items():
            out[n][inside] = v
        return out

    def _search(self, codes: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
        """The as-of look-up proper: a binary search per row on (key code, day)."""
        q = codes * _SHIFT + (days + _DAY0)
        idx = np.searchsorted(self.composite_, q, side="left") - 1
        safe = np.minimum(np.maximum(idx, 0), max(len(self.composite_) - 1, 0))
        hit = (idx >= 0) & (codes >= 0)
        if len(self.composite_):
            hit &= (self.composite_[safe] // _SHIFT) == codes
        else:
            hit &= False
        out = {n: np.where(hit, c[safe] if len(c) else 0.0, 0.0) for n, c in self.cum_.items()}
        if self.last_day_ is not None:
            ld = self.last_day_[safe] if len(self.last_day_) else np.zeros(len(q), np.int64)
            out["last_day"] = np.where(hit, ld, NO_DAY).astype(np.float64)
        return out

    # ---- the snapshot join: rows dated after the last event ------------------------------------
    def last_event_day(self) -> int:
        """The day of the table's last event (``NO_DAY`` when it has none)."""
        return self._snapshot()[0]

    def after_last_event(self, days: np.ndarray) -> np.ndarray:
        """Rows dated after the last event (they read :meth:`latest`); none if ``SNAPSHOT_JOIN`` is off."""
        if not SNAPSHOT_JOIN:
            return np.zeros(len(days), dtype=bool)
        return np.asarray(days) > self.last_event_day()

    def latest(self) -> dict[str, np.ndarray]:
        """Per key code, the sums over all of its events (what a query dated after the last event
        reads); one more element at the end, read by code -1 (unknown key): zeros, ``NO_DAY``."""
        return self._snapshot()[1]

    def latest_at(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`latest` read at key codes (-1: unknown key), one take per value column."""
        return {n: v.take(codes) for n, v in self.latest().items()}

    def _snapshot(self) -> tuple[int, dict[str, np.ndarray]]:
        # built on first use and kept on the table, never pickled (``__getstate__``): a model file
        # stays what it was, and two chunks in flight at most build it twice, identically
        snap = self.__dict__.get("_snapshot_cache")
        if snap is None:
            snap = self._build_snapshot()
            self.__dict__["_snapshot_cache"] = snap
        return snap

    def _build_snapshot(self) -> tuple[int, dict[str, np.ndarray]]:
        comp = self.composite_
        n_codes = len(self.encoder_)
        if not len(comp):
            last_day, idx = NO_DAY, np.zeros(0, np.intp)
        else:
            last_day = int((comp % _SHIFT).max() - _DAY0)
            group = comp // _SHIFT
            idx = np.flatnonzero(np.r_[group[1:] != group[:-1], True])  # each code's last entry
            if len(idx) != n_codes or not np.array_equal(group[idx], np.arange(n_codes)):
                raise AssertionError("every key of the vocabulary has events")
        latest = {n: np.r_[c[idx], 0.0].astype(np.float64) for n, c in self.cum_.items()}
        if self.last_day_ is not None:
            latest["last_day"] = np.r_[self.last_day_[idx], NO_DAY].astype(np.float64)
        return last_day, latest

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_snapshot_cache"}

    def _lookup_one(self, key: object, day: int) -> dict[str, np.ndarray]:
        """The same look-up for one row with scalar arithmetic (the API's hot path: ~10× less overhead
        than the array code; ``tests/test_features.py`` checks both agree)."""
        code = self.vocab_get(key)
        i = -1
        if code >= 0 and len(self.composite_):
            q = code * int(_SHIFT) + day + int(_DAY0)
            i = int(self.composite_.searchsorted(q, side="left")) - 1
            if i >= 0 and int(self.composite_[i]) // int(_SHIFT) != code:
                i = -1
        out = {n: np.array([float(c[i]) if i >= 0 else 0.0]) for n, c in self.cum_.items()}
        if self.last_day_ is not None:
            out["last_day"] = np.array([float(self.last_day_[i]) if i >= 0 else float(NO_DAY)])
        return out

    def vocab_get(self, key: object) -> int:
        return self.encoder_.vocab_.get(key, -1) if key is not None else -1


def _ffill(a: np.ndarray) -> np.ndarray:
    if not len(a):
        return a
    idx = np.where(~np.isnan(a), np.arange(len(a)), 0)
    np.maximum.accumulate(idx, out=idx)
    return a[idx]


def to_days(values: np.ndarray) -> np.ndarray:
    """Dates (datetime64, date objects or ISO strings) → integer days since 1970-01-01."""
    arr = np.asarray(values)
    if arr.dtype.kind != "M":
        arr = arr.astype("datetime64[D]")
    return arr.astype("datetime64[D]").astype(np.int64)
