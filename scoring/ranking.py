"""Lanes and inspection selection: pure functions over score arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANES = ("red", "yellow", "green")


@dataclass(frozen=True)
class LaneThresholds:
    """Score thresholds: red ≥ ``red``, yellow ≥ ``yellow``, else green (red ≥ yellow ≥ 0)."""

    red: float = 0.30
    yellow: float = 0.10

    def __post_init__(self) -> None:
        if not (1.0 >= self.red >= self.yellow >= 0.0):
            raise ValueError(f"lane thresholds must satisfy 1 ≥ red ≥ yellow ≥ 0, got red={self.red}, "
                             f"yellow={self.yellow}")


def thresholds_at_shares(reference_scores: np.ndarray, red_share: float, yellow_share: float) -> LaneThresholds:
    """Lanes by capacity: thresholds at the scores that put ``red_share`` of recent traffic in red and
    ``yellow_share`` in red or yellow (the API and batch scoring share this definition)."""

    def at_share(share: float) -> float:
        if share <= 0 or not len(reference_scores):
            return 1.0
        return float(np.quantile(reference_scores, 1.0 - share, method="higher"))

    red, yellow = at_share(red_share), at_share(yellow_share)
    return LaneThresholds(red=max(red, yellow), yellow=yellow)


def assign_lanes(risk: np.ndarray, thresholds: LaneThresholds) -> np.ndarray:
    return np.where(risk >= thresholds.red, "red", np.where(risk >= thresholds.yellow, "yellow", "green"))


def capacity_count(n: int, capacity: str | int | float) -> int:
    """``"5%"`` or ``0.05`` (fractions < 1) or ``120`` → number of items to inspect."""
    if isinstance(capacity, str):
        c = capacity.strip()
        if c.endswith("%"):
            pct = float(c[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(f"capacity {capacity!r}: a percentage must be within 0-100")
            return int(np.floor(n * pct / 100.0 + 1e-9))
        capacity = float(c)
    if capacity < 0:
        raise ValueError(f"capacity must be ≥ 0, got {capacity}")
    if 0 < capacity < 1:
        return int(np.floor(n * capacity + 1e-9))
    return min(int(capacity), n)


def rank_order(risk: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Descending risk; ties broken by id so the ranking is deterministic."""
    return np.lexsort((ids.astype(str), -risk))


@dataclass
class Selection:
    rank: np.ndarray  # 1 = highest risk
    selected: np.ndarray  # "model" | "random" | ""
    probability: np.ndarray  # probability the item was selected under this policy


def select_for_inspection(risk: np.ndarray, ids: np.ndarray, capacity: str | int | float,
                          random_share: float = 0.0, seed: int = 0) -> Selection:
    """Fill ``capacity`` with the top-ranked items, keeping ``random_share`` of it for a random draw
    among the rest (a minimum random rate, as ASYCUDA does), so hit rates stay measurable without
    selection bias. Each item's selection probability is recorded for inverse-propensity weighting.
    """
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within 0-1, got {random_share}")
    n = len(risk)
    k = capacity_count(n, capacity)
    order = rank_order(risk, ids)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    k_random = int(round(k * random_share))
    k_model = k - k_random
    selected = np.full(n, "", dtype=object)
    prob = np.zeros(n)
    top = order[:k_model]
    selected[top] = "model"
    prob[top] = 1.0
    rest = order[k_model:]
    if k_random and len(rest):
        # a seeded permutation keyed on the ids: the same manifest draws the same items
        rng = np.random.default_rng(seed)
        keys = rng.random(len(rest))
        pick = rest[np.argsort(keys, kind="stable")[:k_random]]
        selected[pick] = "random"
        prob[rest] = min(1.0, k_random / len(rest))
    return Selection(rank, selected, prob)
