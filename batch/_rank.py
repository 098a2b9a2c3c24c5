"""Ranking and selection over the whole manifest, on two small columns (id, risk).

:func:`scoring.select_for_inspection` sorts ids as Python strings, which for tens of millions of
rows costs gigabytes. Here ids are first replaced by their dense rank (Arrow sorts UTF-8 strings
by code point, as Python does), and the same policy runs on integers: identical ranks, selection
and probabilities (``tests/test_batch_rank.py`` checks it against the shared function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring import capacity_count


def id_codes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dense rank of each id in ascending string order (equal ids share a code)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(pc.rank(ids, sort_keys="ascending", tiebreaker="dense")).astype(np.int64)


def first_occurrence(codes: np.ndarray) -> np.ndarray:
    """True for the first row of each id (in input order), False for later duplicates."""
    keep = np.ones(len(codes), dtype=bool)
    if len(codes) < 2:
        return keep
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    dup = np.r_[False, sc[1:] == sc[:-1]]
    keep[order[dup]] = False
    return keep


@dataclass
class ManifestSelection:
    rank: np.ndarray  # 1 = highest risk
    selection: np.ndarray  # uint8: 0 none, 1 model, 2 random
    probability: np.ndarray
    manifest_percentile: np.ndarray  # share (0-100) of the manifest with risk ≤ this item's


SELECTION_NAMES = ("none", "model", "random")


def select_manifest(risk: np.ndarray, codes: np.ndarray, capacity: str | int | float, random_share: float = 0.0,
                    seed: int = 0) -> ManifestSelection:
    """:func:`scoring.select_for_inspection` on id codes instead of id strings (same result)."""
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within 0-1, got {random_share}")
    n = len(risk)
    k = capacity_count(n, capacity)
    order = np.lexsort((codes, -risk))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    k_random = int(round(k * random_share))
    k_model = k - k_random
    selection = np.zeros(n, dtype=np.uint8)
    prob = np.zeros(n)
    top = order[:k_model]
    selection[top] = 1
    prob[top] = 1.0
    rest = order[k_model:]
    if k_random and len(rest):
        rng = np.random.default_rng(seed)
        keys = rng.random(len(rest))
        pick = rest[np.argsort(keys, kind="stable")[:k_random]]
        selection[pick] = 2
        prob[rest] = min(1.0, k_random / len(rest))
    del order
    sorted_risk = np.sort(risk)
    pct = 100.0 * np.searchsorted(sorted_risk, risk, side="right") / max(n, 1)
    return ManifestSelection(rank, selection, prob, pct)
