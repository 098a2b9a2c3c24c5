"""Seen and novel rows: does an evaluated consignment repeat one of the training history?

Declaration data repeat consignments (same goods, origin, route and value) with the same outcome,
and a model can score well on them by remembering; that says little about new traffic. A row is
*seen* when its consignment profile, HS subheading × origin × departure country × declared value
level, occurs in the training history, else *novel*. The profile is the goods-by-origin family's
(:func:`features.goods.goods_from` and :func:`features.goods.value_level`), so "seen" means what
that family can look up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features import object_array
from features.goods import goods_from, value_level
from training.metrics import RATES, ranking_metrics

PROFILE_COLUMNS = ("hs_code", "origin_country", "departure_country", "customs_value")


def consignment_profiles(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of (HS6, origin, departure, value level); a missing part is a value
    of its own, so two rows both lacking a departure country share a profile."""
    missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"consignment profile needs the column(s) {missing}")
    cols = {c: object_array(frame[c]) for c in PROFILE_COLUMNS[:3]}
    hs6, origin, departure = goods_from(cols)
    values = pd.to_numeric(frame["customs_value"], errors="coerce").to_numpy(dtype=np.float64)
    parts = pd.DataFrame({"hs6": hs6, "origin": origin, "departure": departure}).fillna("\x00")
    parts["level"] = value_level(values)
    return pd.util.hash_pandas_object(parts, index=False).to_numpy()


def seen_mask(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """True for each row of ``rows`` whose consignment profile occurs in ``history``.

    ``history``: the training history a model could have learned outcomes from (its labelled
    training rows); ``rows``: the evaluated rows.
    """
    if rows.empty:
        return np.zeros(0, dtype=bool)
    if history.empty:
        return np.zeros(len(rows), dtype=bool)
    return np.isin(consignment_profiles(rows), consignment_profiles(history))


def novelty(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """``"seen"`` or ``"novel"`` per row of ``rows`` (see :func:`seen_mask`)."""
    return np.where(seen_mask(history, rows), "seen", "novel").astype(object)


def split_metrics(y: np.ndarray, score: np.ndarray, revenue: np.ndarray | None, seen: np.ndarray,
                  rates: tuple[float, ...] = RATES) -> dict[str, Any]:
    """Ranking metrics of all rows (top-level keys, as :func:`training.metrics.ranking_metrics`),
    of the seen rows (``"seen"``) and of the novel rows (``"novel"``), with each part's share of the
    rows (``"shares"``) and of the positives (``"positive_shares"``). A part without rows is ``None``.

    Each part is ranked on its own: precision at 5 % of the novel rows is the precision an
    inspection of 5 % of new traffic would reach.
    """
    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    seen = np.asarray(seen, dtype=bool)
    if not (len(y) == len(score) == len(seen)) or (revenue is not None and len(revenue) != len(y)):
        raise ValueError(f"split_metrics: lengths differ (y {len(y)}, score {len(score)}, seen {len(seen)}"
                         + (f", revenue {len(revenue)})" if revenue is not None else ")"))
    out = ranking_metrics(y, score, revenue, rates)
    n, pos = len(y), int(y.sum())
    for part, mask in (("seen", seen), ("novel", ~seen)):
        rev = None if revenue is None else np.asarray(revenue)[mask]
        out[part] = ranking_metrics(y[mask], score[mask], rev, rates) if mask.any() else None
    out["shares"] = {"seen": float(seen.mean()) if n else 0.0, "novel": float((~seen).mean()) if n else 0.0}
    out["positive_shares"] = {"seen": float(y[seen].sum() / pos) if pos else 0.0,
                              "novel": float(y[~seen].sum() / pos) if pos else 0.0}
    return out


__all__ = ["PROFILE_COLUMNS", "consignment_profiles", "novelty", "seen_mask", "split_metrics"]
