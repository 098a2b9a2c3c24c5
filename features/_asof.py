"""Point-in-time lookups: cumulative event sums per key, read *strictly before* a day.

An :class:`AsOfTable` is built once from events ``(key, day, values...)``. ``lookup(keys, days)``
returns, for each query, the sums over events of the same key with ``event day < query day``.
The same vectorised code answers one row (the API) and millions (training, batch), so the
training path and the serving path cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat

import numpy as np
import pandas as pd

Columns = Mapping[str, np.ndarray]

_SHIFT = np.int64(1) << np.int64(32)
_DAY0 = np.int64(1) << np.int64(30)  # days are offset so they stay positive inside the composite key
NO_DAY = -(10**9)


class KeyEncoder:
    """Maps hashable keys (strings) to dense integer codes; unknown or missing keys → -1."""

    def __init__(self, keys: Sequence[object] | np.ndarray):
        uniq = sorted({k for k in keys if k is not None and k == k}, key=str)
        self.vocab_: dict[object, int] = {k: i for i, k in enumerate(uniq)}

    def __len__(self) -> int:
        return len(self.vocab_)

    def encode(self, keys: np.ndarray | Factorized) -> np.ndarray:
        if isinstance(keys, Factorized):  # each distinct key once, spread back to the rows
            return keys.spread(self.encode(keys.uniques), -1)
        # map(dict.get) is the fastest public look-up here (None is never a key, so it gets -1)
        return np.fromiter(map(self.vocab_.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))


class Factorized:
    """A key column as distinct values + row codes (missing → -1), shared by the look-ups that
    read the same keys: each table then maps only the distinct keys to its own codes."""

    def __init__(self, keys: np.ndarray):
        arr = np.asarray(keys)
        codes, uniques = pd.factorize(arr if arr.dtype.kind in "iu" else np.asarray(keys, dtype=object),
                                      use_na_sentinel=True)
        self.codes = codes
        self.uniques = np.asarray(uniques, dtype=object)

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

    @classmethod
    def constant(cls, key: object, n: int) -> Factorized:
        f = cls.__new__(cls)
        f.codes = np.zeros(n, dtype=np.intp)
        f.uniques = np.array([key], dtype=object)
        return f


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

    def codes(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        key = np.zeros(len(parts[0]), dtype=np.int64)
        unseen = np.zeros(len(key), dtype=bool)
        for p, vocab in zip(parts, self.vocabs_, strict=True):
            if len(key) >= FACTORIZE_MIN_ROWS:
                f = Factorized(p)
                c = f.spread(np.fromiter((vocab.get(u, -1) for u in f.uniques), np.int64, len(f.uniques)), 0)
            else:
                c = np.fromiter((vocab.get(v, -1) for v in p), np.int64, len(p))
            unseen |= c < 0
            key = key * len(vocab) + np.maximum(c, 0)
        key[unseen] = -1
        return key


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
        codes = self.encoder_.encode(keys if isinstance(keys, Factorized) else np.asarray(keys, dtype=object))
        q = codes * _SHIFT + (np.asarray(days, dtype=np.int64) + _DAY0)
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
