"""Monitoring statistics: hit rates with intervals, the inverse-propensity-weighted rate, precision at
the inspection rate, reliability and expected calibration error, and the population stability index.

Pure functions over arrays, each small enough to check by hand (tests/test_monitoring.py does).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
PSI_BANDS = (0.1, 0.25)  # below 0.1 stable, 0.1-0.25 moderate shift, 0.25 and above significant shift
ECE_BAND = 0.05  # expected calibration error above which the scores no longer mean what they say
PSI_FLOOR = 1e-4  # share given to an empty bin, so a bin that appears or vanishes counts but stays finite


def wilson_interval(hits: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """95 % Wilson score interval of a proportion (sensible at 0 or n hits, unlike the normal one).

    ``n`` may be an effective sample size (not a whole number) for a weighted proportion.
    """
    if n <= 0:
        return None, None
    p = hits / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def hit_rate(hit: np.ndarray) -> dict[str, Any]:
    """Inspections, hits, hit rate and its Wilson interval."""
    h = np.asarray(hit, dtype=bool)
    n, k = int(len(h)), int(h.sum())
    low, high = wilson_interval(k, n)
    return {"inspections": n, "hits": k, "rate": (k / n) if n else None, "low": low, "high": high}


def ipw_rate(hit: np.ndarray, probability: np.ndarray, population: int | None = None) -> dict[str, Any]:
    """Inverse-propensity-weighted hit rate of all traffic from inspections with a known selection probability.

    Items selected for certain (model or rule, probability 1) count once; a random-stratum item
    drawn with probability p stands for 1/p items. With ``population`` (the number of items the
    selection was made from) this is the Horvitz-Thompson estimate ``Σ y/p / N``, unbiased; without
    it, the self-normalised (Hájek) ``Σ y/p / Σ 1/p``, which needs no count of the traffic and is
    not pulled down by outcomes not yet recorded.

    The 95 % interval carries the uncertainty of the random stratum only (certain items are
    counted, not sampled): the Wilson interval of its weighted hit rate at the effective sample
    size ``(Σ 1/p)² / Σ 1/p²`` (the number of draws when all p are equal), scaled like the
    estimate. Wilson, not ±1.96 standard errors, because a stratum of a few hundred draws at a 1 %
    rate often holds no hit at all, and a normal interval then has zero width.
    """
    y = np.asarray(hit, dtype=float)
    p = np.asarray(probability, dtype=float)
    known = np.isfinite(p) & (p > 0)
    y, p = y[known], np.minimum(p[known], 1.0)
    rnd = p < 1
    if not rnd.any():
        return {"estimate": None, "low": None, "high": None, "random_inspections": 0, "weighted_items": None}
    certain_hits, certain_n = float(y[~rnd].sum()), float((~rnd).sum())
    # every weight 1/p times the smallest p: ratios in [.., 1], finite even when a p is subnormal (1/1e-320
    # is inf and made the estimate NaN); sums over the stratum then scale back by that p
    p_min = float(p[rnd].min())
    scaled = p_min / p[rnd]
    s_sum = float(scaled.sum())  # (Σ 1/p) · p_min
    rate = float((scaled * y[rnd]).sum()) / s_sum
    n_eff = s_sum ** 2 / float((scaled * scaled).sum())
    # (counts of the certain items, Σ 1/p) · p_min: the estimate is a ratio of these, finite at any p
    total_scaled = float(population) * p_min if population else certain_n * p_min + s_sum
    certain_scaled = certain_hits * p_min
    low, high = wilson_interval(rate * n_eff, n_eff)
    assert low is not None and high is not None
    total = float(population) if population else certain_n + s_sum / p_min
    return {"estimate": (certain_scaled + s_sum * rate) / total_scaled,
            "low": min(1.0, (certain_scaled + s_sum * low) / total_scaled),
            "high": min(1.0, (certain_scaled + s_sum * high) / total_scaled),
            "random_inspections": int(rnd.sum()), "weighted_items": total if math.isfinite(total) else None}


def precision_at_rate(scores_all: np.ndarray, scores: np.ndarray, hit: np.ndarray, probability: np.ndarray,
                      rate: float) -> dict[str, Any]:
    """Hit rate of the items scored in the top ``rate`` of all traffic (``scores_all``), estimated from the
    inspected ones among them (``scores``, ``hit``, ``probability``) weighted by 1/probability.

    When the model fills the capacity at this rate, the top items are exactly the model's
    selections and this is their hit rate. ``coverage`` is the share of the top items with an outcome.
    """
    s_all = np.asarray(scores_all, dtype=float)
    s_all = s_all[np.isfinite(s_all)]
    if not len(s_all) or rate <= 0:
        return {"rate": rate, "threshold": None, "top_items": 0, "labelled": 0, "precision": None,
                "coverage": None}
    k = max(1, int(np.floor(len(s_all) * rate + 1e-9)))
    threshold = float(np.sort(s_all)[::-1][k - 1])
    s = np.asarray(scores, dtype=float)
    p = np.asarray(probability, dtype=float)
    top = np.isfinite(s) & (s >= threshold) & np.isfinite(p) & (p > 0)
    y = np.asarray(hit, dtype=float)[top]
    w = 1.0 / np.minimum(p[top], 1.0)
    prec = float((w * y).sum() / w.sum()) if len(y) else None
    n_top = int((s_all >= threshold).sum())
    return {"rate": rate, "threshold": threshold, "top_items": n_top, "labelled": int(top.sum()),
            "precision": prec, "coverage": float(top.sum() / n_top) if n_top else None}


def reliability(scores: np.ndarray, hit: np.ndarray, weight: np.ndarray | None = None,
                bins: int = 10) -> dict[str, Any]:
    """Reliability curve over equal-width score bins and the expected calibration error.

    ECE = Σ_b (weight in b / total weight) · |mean score in b - hit rate in b|; bin b holds scores in
    [b/bins, (b+1)/bins), the last bin includes 1. Weights (1/selection probability) make the random
    stratum stand for the traffic it was drawn from.
    """
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    y = np.asarray(hit, dtype=float)
    w = np.ones(len(s)) if weight is None else np.asarray(weight, dtype=float)
    ok = np.isfinite(s) & np.isfinite(w) & (w > 0)
    s, y, w = s[ok], y[ok], w[ok]
    idx = np.minimum((s * bins).astype(int), bins - 1)
    curve: list[dict[str, Any]] = []
    ece = 0.0
    total = float(w.sum())
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        wb = float(w[m].sum())
        pred = float((w[m] * s[m]).sum() / wb)
        obs = float((w[m] * y[m]).sum() / wb)
        curve.append({"bin_low": b / bins, "bin_high": (b + 1) / bins, "count": int(m.sum()), "weight": wb,
                      "predicted": pred, "observed": obs})
        ece += wb / total * abs(pred - obs)
    return {"bins": curve, "ece": ece if total else None, "items": int(len(s))}


def psi(reference: pd.Series, recent: pd.Series, bins: int = 10, max_categories: int = 20) -> float:
    """Population stability index Σ (a - e) · ln(a / e) over the reference's bins.

    Numbers: the reference's deciles (distinct edges), with missing values a bin of their own.
    Categories: the reference's ``max_categories`` most frequent values, the rest pooled as one bin.
    Empty bins get a share of ``PSI_FLOOR``.
    """
    e_counts, a_counts = _binned(reference, recent, bins, max_categories)
    e = np.maximum(e_counts / max(e_counts.sum(), 1), PSI_FLOOR)
    a = np.maximum(a_counts / max(a_counts.sum(), 1), PSI_FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


def _binned(reference: pd.Series, recent: pd.Series, bins: int, max_categories: int) -> tuple[np.ndarray, np.ndarray]:
    if pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference):
        ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
        rec = pd.to_numeric(recent, errors="coerce").to_numpy(dtype=float)
        finite = ref[np.isfinite(ref)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])

        def counts(v: np.ndarray) -> np.ndarray:
            nan = ~np.isfinite(v)
            c = np.bincount(np.searchsorted(edges, v[~nan], side="right"), minlength=len(edges) + 1)
            return np.append(c, nan.sum()).astype(float)

        return counts(ref), counts(rec)
    ref_s = reference.astype(object).where(reference.notna(), "<missing>")
    rec_s = recent.astype(object).where(recent.notna(), "<missing>")
    top = list(ref_s.value_counts().index[:max_categories])
    ref_c = ref_s.where(ref_s.isin(top), "<other>")
    rec_c = rec_s.where(rec_s.isin(top), "<other>")
    cats = [*top, "<other>"]
    return (ref_c.value_counts().reindex(cats, fill_value=0).to_numpy(dtype=float),
            rec_c.value_counts().reindex(cats, fill_value=0).to_numpy(dtype=float))


def psi_band(value: float) -> str:
    low, high = PSI_BANDS
    return "stable" if value < low else "moderate" if value < high else "significant"


def psi_table(reference: pd.DataFrame, recent: pd.DataFrame) -> list[dict[str, Any]]:
    """PSI and band of every column the two frames share, largest shift first."""
    rows = []
    for col in [c for c in reference.columns if c in recent.columns]:
        value = psi(reference[col], recent[col])
        rows.append({"feature": str(col), "psi": value, "band": psi_band(value)})
    return sorted(rows, key=lambda r: (-r["psi"], r["feature"]))
