"""Integer allocation helpers: exact quotas, tables with fixed margins, totals split into parts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def largest_remainder(weights: Sequence[float] | np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's method)."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return np.zeros(len(w), dtype=np.int64)
    raw = w / w.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return out


def integer_table(prior: np.ndarray, rows: np.ndarray, cols: np.ndarray, iters: int = 500) -> np.ndarray:
    """Non-negative integer table with exactly the given row and column sums, shaped like ``prior``.

    Iterative proportional fitting gives a real table with the margins; controlled rounding then
    keeps both margins exact (fractional parts first, then any row/column still short).
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.sum() != cols.sum():
        raise ValueError(f"margins disagree: rows {rows.sum()} vs columns {cols.sum()}")
    m = np.asarray(prior, dtype=float) + 1e-6
    for _ in range(iters):
        rs = m.sum(axis=1, keepdims=True)
        m *= np.divide(rows[:, None], rs, out=np.zeros_like(rs), where=rs > 0)
        cs = m.sum(axis=0, keepdims=True)
        m *= np.divide(cols[None, :], cs, out=np.zeros_like(cs), where=cs > 0)
    out = np.floor(m).astype(np.int64)
    rdef = rows - out.sum(axis=1)
    cdef = cols - out.sum(axis=0)
    frac = m - out
    for idx in np.argsort(-frac, axis=None, kind="stable"):
        i, j = divmod(int(idx), m.shape[1])
        if rdef[i] > 0 and cdef[j] > 0:
            out[i, j] += 1
            rdef[i] -= 1
            cdef[j] -= 1
    while rdef.sum() > 0:  # rare: fill the best remaining cell of a short row and column
        i = int(np.flatnonzero(rdef > 0)[0])
        js = np.flatnonzero(cdef > 0)
        j = int(js[np.argmax(m[i, js])])
        out[i, j] += 1
        rdef[i] -= 1
        cdef[j] -= 1
    return out


def assign_quotas(rng: np.random.Generator, weights: np.ndarray, counts: Sequence[int],
                  order: Sequence[int] | None = None) -> np.ndarray:
    """Give each of n items one of K labels so that label k is used exactly ``counts[k]`` times.

    Items are drawn for each label in turn with probability ∝ ``weights[:, k]`` (Gumbel top-k,
    i.e. weighted sampling without replacement); a zero weight means "not eligible". The last
    label in ``order`` takes the items left over, which must all be eligible for it.
    """
    n, k = weights.shape
    quota = np.asarray(counts, dtype=np.int64)
    if quota.sum() != n:
        raise ValueError(f"quotas sum to {quota.sum()}, not {n}")
    order = list(range(k)) if order is None else list(order)
    with np.errstate(divide="ignore"):
        score = np.log(weights) + rng.gumbel(size=(n, k))
    labels = np.full(n, -1, dtype=np.int64)
    for lab in order[:-1]:
        c = int(quota[lab])
        if c == 0:
            continue
        s = np.where(labels < 0, score[:, lab], -np.inf)
        pick = np.argsort(-s, kind="stable")[:c]
        if not np.isfinite(s[pick]).all():
            raise ValueError(f"quota {c} for label {lab} exceeds the eligible items")
        labels[pick] = lab
    last = order[-1]
    rest = labels < 0
    if (weights[rest, last] <= 0).any():
        raise ValueError(f"items left for the last label {last} are not eligible for it")
    labels[rest] = last
    return labels


def split_total(rng: np.random.Generator, n: int, total: int, sigma: float,
                fixed: Sequence[int] = ()) -> np.ndarray:
    """``n`` positive integers summing exactly to ``total``, heavy-tailed (lognormal ``sigma``).

    ``fixed`` values (large case-study seizures) take the first positions; the rest share what is left.
    """
    fixed = list(fixed)[:n]
    out = np.empty(n, dtype=np.int64)
    out[: len(fixed)] = fixed
    m = n - len(fixed)
    left = total - sum(fixed)
    if m == 0:
        return out
    if left < m:
        raise ValueError(f"cannot split {left} into {m} positive parts")
    w = rng.lognormal(0.0, sigma, size=m)
    out[len(fixed):] = 1 + largest_remainder(w, left - m)
    return out


def cap_rows(table: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Keep every cell of row i at most ``caps[i]`` by 2x2 swaps that preserve both margins.

    (A case holds at most one seizure of each commodity, so a region cannot have more seizures of
    one commodity than cases.)
    """
    t = table.copy()
    for _ in range(100_000):
        over = np.argwhere(t > caps[:, None])
        if len(over) == 0:
            return t
        i, j = over[0]
        done = False
        for i2 in np.argsort(-(caps - t[:, j])):
            if i2 == i or t[i2, j] >= caps[i2]:
                continue
            for j2 in np.argsort(-t[i2]):
                if j2 != j and t[i2, j2] > 0 and t[i, j2] < caps[i]:
                    t[i, j] -= 1
                    t[i2, j] += 1
                    t[i2, j2] -= 1
                    t[i, j2] += 1
                    done = True
                    break
            if done:
                break
        if not done:
            raise ValueError(f"cannot cap cell {(int(i), int(j))} at {caps[i]}")
    raise ValueError("cap_rows did not converge")
