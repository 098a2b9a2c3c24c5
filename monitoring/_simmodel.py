"""The simulator's model and selection strategies.

The model is deliberately small (a few dozen LightGBM rounds on the declaration's own fields as
categories): the simulator refits it every week for every strategy, and what it measures is the
effect of *which outcomes are observed*, not the last point of precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from monitoring.metrics import Z95
from scoring import capacity_count, select_for_inspection

CATEGORIES = ("heading", "departure_country", "destination_country", "origin_country", "first_transit",
              "conveyance", "office_type", "direction", "office_country")
# the fields a new pattern shows up in; an item whose rarest value here has few outcomes is uncertain
UNCERTAIN_KEYS = ("heading", "departure_country", "destination_country", "first_transit", "origin_country")
STRATEGIES = ("exploit", "random", "ucb")


@dataclass(frozen=True)
class Encoded:
    """The stream as a numeric matrix: category codes (LightGBM categoricals) then numbers."""

    matrix: np.ndarray
    names: tuple[str, ...]
    codes: dict[str, np.ndarray]


def encode_stream(decl: pd.DataFrame) -> Encoded:
    """Codes over the whole stream (no label is used), so a category first seen after drift has its own code."""
    cols = {
        "heading": decl["hs_code"].astype(str).str[:4],
        "departure_country": decl["departure_country"].astype(str),
        "destination_country": decl["destination_country"].astype(str),
        "origin_country": decl["origin_country"].astype(str),
        "first_transit": decl["transit_countries"].fillna("").astype(str).str.split("|").str[0],
        "conveyance": decl["conveyance"].astype(str),
        "office_type": decl["office_type"].astype(str),
        "direction": decl["direction"].astype(str),
        "office_country": decl["office_id"].astype(str).str[:2],
    }
    codes = {k: pd.factorize(v, sort=True)[0].astype(np.int32) for k, v in cols.items()}
    weight = pd.to_numeric(decl["gross_weight_kg"], errors="coerce").to_numpy(dtype=float)
    value = pd.to_numeric(decl["customs_value"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lvk = np.log(np.maximum(value, 0.01) / np.maximum(weight, 0.01))
    median = pd.Series(lvk).groupby(codes["heading"]).transform("median").to_numpy()
    numbers = {"value_per_kg_vs_heading": lvk - median, "log_weight": np.log1p(np.maximum(weight, 0))}
    matrix = np.column_stack([*(codes[k] for k in CATEGORIES), *numbers.values()]).astype(np.float64)
    return Encoded(matrix, (*CATEGORIES, *numbers), codes)


def fit_model(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], rounds: int, num_threads: int,
              seed: int) -> lgb.Booster | None:
    """A small deterministic LightGBM; None while the outcomes hold no hit or no miss (nothing to learn)."""
    if y.all() or not y.any():
        return None
    params = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 10,
              "min_sum_hessian_in_leaf": 1e-3, "min_data_per_group": 5, "cat_smooth": 5.0, "cat_l2": 5.0,
              "max_cat_to_onehot": 8, "lambda_l2": 1.0, "num_threads": num_threads, "seed": seed,
              "deterministic": True, "force_col_wise": True, "verbose": -1}
    data = lgb.Dataset(x, label=y.astype(np.float64), feature_name=list(names),
                       categorical_feature=list(CATEGORIES), free_raw_data=True)
    return lgb.train(params, data, num_boost_round=rounds)


def predict(model: lgb.Booster | None, x: np.ndarray, prior: float) -> np.ndarray:
    if model is None:
        return np.full(len(x), prior)
    return np.asarray(model.predict(x, num_threads=1), dtype=np.float64)


def exploration_value(codes: dict[str, np.ndarray], rows: np.ndarray, labelled: np.ndarray,
                    hit: np.ndarray) -> np.ndarray:
    """How much inspecting each item would teach: over UNCERTAIN_KEYS, the highest value of
    ``upper · √(volume / (1 + n))`` — ``upper`` the 95 % Wilson upper bound of the hit rate of the
    item's value among the outcomes so far (1 for a value never inspected), ``n`` those outcomes,
    ``volume`` the items with that value this week.

    Optimism in the face of uncertainty (UCB, by segment), weighted towards values that carry much
    of this week's traffic but few outcomes: a new route or a surging heading is worth a look, one of
    a thousand rare countries with one declaration a week less so, and a value inspected often
    without a hit not at all.
    """
    z2 = Z95 * Z95
    best = np.zeros(len(rows))
    for key in UNCERTAIN_KEYS:
        c = codes[key]
        size = int(c.max()) + 1
        n = np.bincount(c[labelled], minlength=size).astype(float)[c[rows]]
        h = np.bincount(c[labelled], weights=hit.astype(float), minlength=size)[c[rows]]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = h / n
            den = 1 + z2 / n
            upper = (p + z2 / (2 * n) + Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / den
        upper = np.where(n > 0, np.minimum(upper, 1.0), 1.0)
        volume = np.bincount(c[rows], minlength=size).astype(float)[c[rows]]
        upper = upper * np.sqrt(volume / (1.0 + n))
        best = np.maximum(best, upper)
    return best


def poisson_probabilities(weight: np.ndarray, k: float) -> np.ndarray:
    """Inclusion probabilities ∝ weight with expected total k, capped at 1 (the cap's excess spread again)."""
    w = np.maximum(np.asarray(weight, dtype=float), 0.0)
    p = np.zeros(len(w))
    free = w > 0
    budget = float(k)
    for _ in range(len(w) + 1):
        total = w[free].sum()
        if budget <= 0 or total <= 0:
            break
        p[free] = budget * w[free] / total
        over = free & (p >= 1.0)
        if not over.any():
            break
        p[over] = 1.0
        free &= ~over
        budget = float(k) - float((p == 1.0).sum())
    return np.minimum(p, 1.0)


def select(strategy: str, scores: np.ndarray, ids: np.ndarray, capacity: str | float | int, share: float,
           seed: int, optimism: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(selected mask, selection probability per item) for one week under ``strategy``.

    ``exploit`` fills the capacity by score; ``random`` keeps ``share`` of it for a uniform draw
    among the rest (the production selection, ``scoring.select_for_inspection``); ``ucb`` keeps
    the same share for a Poisson draw among the rest with probability ∝ ``optimism``
    (:func:`exploration_value`), so every item's probability is known and IPW still works.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {list(STRATEGIES)}")
    if strategy in ("exploit", "random"):
        sel = select_for_inspection(scores, ids, capacity, random_share=share if strategy == "random" else 0.0,
                                    seed=seed)
        return sel.selected != "", sel.probability
    k = capacity_count(len(scores), capacity)
    k_explore = int(round(k * share))
    sel = select_for_inspection(scores, ids, k - k_explore, random_share=0.0, seed=seed)
    chosen = sel.selected != ""
    prob = sel.probability.copy()
    rest = np.flatnonzero(~chosen)
    if k_explore and len(rest):
        weight = scores[rest] if optimism is None else optimism[rest]
        prob[rest] = poisson_probabilities(weight, k_explore)
        draw = np.random.default_rng(seed).random(len(rest))
        chosen[rest[draw < prob[rest]]] = True
    return chosen, prob
