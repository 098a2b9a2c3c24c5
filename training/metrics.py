"""Ranking metrics used by customs targeting: precision/recall/revenue at inspection rates."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

RATES = (1, 2, 5, 10)


def top_k(scores: np.ndarray, rate_pct: float) -> np.ndarray:
    n = len(scores)
    k = max(1, int(np.floor(n * rate_pct / 100.0)))
    return np.argsort(-scores, kind="stable")[:k]


def ranking_metrics(y: np.ndarray, scores: np.ndarray, revenue: np.ndarray | None = None,
                    rates: tuple[float, ...] = RATES) -> dict[str, Any]:
    """Precision, recall (and revenue share) at each inspection rate, each also divided by the
    oracle ceiling (what a perfect ranking would reach at the same rate)."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos = y.sum()
    out: dict[str, Any] = {"precision_at": {}, "recall_at": {}, "precision_at_norm": {}, "n": int(len(y)),
                           "positives": int(pos), "base_rate": float(y.mean()) if len(y) else 0.0}
    if revenue is not None:
        out["revenue_share_at"] = {}
        out["revenue_share_at_norm"] = {}
    for r in rates:
        idx = top_k(scores, r)
        k = len(idx)
        hits = y[idx].sum()
        prec = hits / k
        ceiling = min(1.0, pos / k) if k else 0.0
        key = f"{r:g}"
        out["precision_at"][key] = float(prec)
        out["recall_at"][key] = float(hits / pos) if pos else 0.0
        out["precision_at_norm"][key] = float(prec / ceiling) if ceiling else 0.0
        if revenue is not None:
            rev = np.nan_to_num(np.asarray(revenue, dtype=np.float64))
            total = rev.sum()
            got = rev[idx].sum()
            best = np.sort(rev)[::-1][:k].sum()
            out["revenue_share_at"][key] = float(got / total) if total else 0.0
            out["revenue_share_at_norm"][key] = float(got / best) if best else 0.0
    if 0 < pos < len(y):
        out["auc"] = float(roc_auc_score(y, scores))
        out["average_precision"] = float(average_precision_score(y, scores))
    else:
        out["auc"] = None
        out["average_precision"] = None
    clipped = np.clip(scores, 0, 1)
    out["brier"] = float(brier_score_loss(y, clipped)) if len(y) else None
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted vs observed rate per quantile bin."""
    order = np.argsort(p)
    chunks = np.array_split(order, bins)
    return {
        "predicted": [float(p[c].mean()) for c in chunks if len(c)],
        "observed": [float(np.asarray(y, dtype=float)[c].mean()) for c in chunks if len(c)],
        "count": [int(len(c)) for c in chunks if len(c)],
    }


def ipw_hit_rate(hit: np.ndarray, source: np.ndarray, probability: np.ndarray) -> dict[str, float | None]:
    """Selection bias: naive hit rate of all inspected items vs the random stratum weighted by
    1 / selection_probability (an unbiased estimate of the hit rate in all traffic)."""
    hit = np.asarray(hit, dtype=float)
    src = np.asarray(source, dtype=object)
    prob = np.asarray(probability, dtype=float)
    naive = float(hit.mean()) if len(hit) else None
    rnd = (src == "random") & np.isfinite(prob) & (prob > 0)
    if rnd.sum() == 0:
        return {"naive_hit_rate": naive, "random_hit_rate": None, "random_ipw_hit_rate": None,
                "random_inspections": 0}
    w = 1.0 / prob[rnd]
    return {
        "naive_hit_rate": naive,
        "random_hit_rate": float(hit[rnd].mean()),
        "random_ipw_hit_rate": float((w * hit[rnd]).sum() / w.sum()),
        "random_inspections": int(rnd.sum()),
    }


def weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC under each row of ``weights`` (resamples × items), ties counted half; one sort for all.

    With Poisson(1) weights this is a bootstrap of the AUC; two score vectors under the same
    weights give a paired bootstrap of their difference.
    """
    y = np.asarray(y, dtype=bool)
    order = np.argsort(scores, kind="stable")
    s, yy, w = np.asarray(scores)[order], y[order], np.asarray(weights, dtype=np.float64)[:, order]
    _, start, group = np.unique(s, return_index=True, return_inverse=True)
    neg = w * ~yy
    pos = w * yy
    neg_in_group = np.add.reduceat(neg, start, axis=1)
    neg_below = np.cumsum(neg_in_group, axis=1) - neg_in_group
    credit = neg_below[:, group] + 0.5 * neg_in_group[:, group]
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (pos * credit).sum(axis=1) / den, np.nan)
