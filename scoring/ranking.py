"""Lanes and inspection selection: pure functions over score arrays."""

from __future__ import annotations

import math
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
    """``"5%"`` or ``0.05`` (fractions < 1) or ``120`` → number of items to inspect.

    Raises ValueError (never OverflowError) for text that is not a number and for non-finite numbers.
    """
    if isinstance(capacity, str):
        c = capacity.strip()
        try:
            value = float(c.removesuffix("%"))
        except ValueError:
            raise ValueError(f"capacity {capacity!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"capacity must be finite, got {capacity!r}")
        if c.endswith("%"):
            if not 0 <= value <= 100:
                raise ValueError(f"capacity {capacity!r}: a percentage must be within 0-100")
            return int(np.floor(n * value / 100.0 + 1e-9))
        capacity = value
    if isinstance(capacity, float) and not math.isfinite(capacity):
        raise ValueError(f"capacity must be finite, got {capacity}")
    if capacity < 0:
        raise ValueError(f"capacity must be ≥ 0, got {capacity}")
    if 0 < capacity < 1:
        return int(np.floor(n * capacity + 1e-9))
    if capacity != int(capacity):  # 1.5 selected 1 item: neither a count nor a fraction below 1
        raise ValueError(f"capacity {capacity:g} is not a whole number of items (a fraction must be below 1)")
    return min(int(capacity), n)


def rank_order(risk: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Descending risk; ties broken by id so the ranking is deterministic."""
    return np.lexsort((ids.astype(str), -risk))


@dataclass
class Selection:
    rank: np.ndarray  # 1 = highest risk
    selected: np.ndarray  # "model" | "random" | ""
    probability: np.ndarray  # probability the item was selected under this policy


SELECTION_NAMES = ("none", "model", "random")  # the codes select_in_order returns


def select_in_order(order: np.ndarray, capacity: str | int | float, random_share: float = 0.0,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection given a ranking (``order``: item indices, riskiest first).

    Fills ``capacity`` with the top-ranked items, keeping ``random_share`` of it for a random draw
    among the rest (a minimum random rate, as ASYCUDA does), so hit rates stay measurable without
    selection bias. Returns (rank, selection code per item — see ``SELECTION_NAMES`` — and the
    probability the item was selected, for inverse-propensity weighting). uint8 codes keep it small
    for 10 M-row manifests.
    """
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within 0-1, got {random_share}")
    n = len(order)
    k = capacity_count(n, capacity)
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
        # a seeded draw over the ranked remainder: the same manifest draws the same items
        rng = np.random.default_rng(seed)
        keys = rng.random(len(rest))
        pick = rest[np.argsort(keys, kind="stable")[:k_random]]
        selection[pick] = 2
        prob[rest] = min(1.0, k_random / len(rest))
    return rank, selection, prob


def select_for_inspection(risk: np.ndarray, ids: np.ndarray, capacity: str | int | float,
                          random_share: float = 0.0, seed: int = 0) -> Selection:
    """:func:`select_in_order` over the ranking by risk (ties by id), with selections as strings."""
    rank, codes, prob = select_in_order(rank_order(risk, ids), capacity, random_share, seed)
    names = np.array(["", "model", "random"], dtype=object)
    return Selection(rank, names[codes], prob)


RULE_SELECTION_NAMES = ("none", "model", "random", "rule")  # the codes select_with_rules returns


def select_with_rules(order: np.ndarray, forced: np.ndarray, capacity: str | int | float,
                      random_share: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection when risk profiles force some items (``forced``: one bool per item), in this order:

    1. every item a rule selects: code 3 (``"rule"``), probability 1 — even beyond capacity, since a
       profile is an officer's order (callers can warn when ``forced.sum()`` exceeds the capacity);
    2. of the capacity ``k`` left after them, the random share keeps ``round(k × random_share)``
       places (fewer if less is left), and the model's ranking (``order``, riskiest first) fills the
       rest with the top items not forced: code 1, probability 1;
    3. the random places are a seeded draw among the items neither forced nor model-selected:
       code 2, each of those items with probability ``places / items``.

    Returns (rank by the model's order, code per item — see ``RULE_SELECTION_NAMES`` — and the
    probability of selection). With nothing forced it equals :func:`select_in_order`.
    """
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be within 0-1, got {random_share}")
    forced = np.asarray(forced, dtype=bool)
    n = len(order)
    if len(forced) != n:
        raise ValueError(f"forced has {len(forced)} values for {n} items")
    k = capacity_count(n, capacity)
    left = max(k - int(forced.sum()), 0)
    k_random = min(int(round(k * random_share)), left)
    k_model = left - k_random
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    selection = np.zeros(n, dtype=np.uint8)
    prob = np.zeros(n)
    selection[forced] = 3
    prob[forced] = 1.0
    free = order[~forced[order]]
    top = free[:k_model]
    selection[top] = 1
    prob[top] = 1.0
    rest = free[k_model:]
    if k_random and len(rest):
        rng = np.random.default_rng(seed)  # the same draw as select_in_order when nothing is forced
        pick = rest[np.argsort(rng.random(len(rest)), kind="stable")[:k_random]]
        selection[pick] = 2
        prob[rest] = min(1.0, k_random / len(rest))
    return rank, selection, prob
