"""Value and weight anomalies against the HS heading's peers known at the time."""

from __future__ import annotations

import numpy as np

from features._asof import AsOfTable
from features._base import Columns, FeatureFamily
from features._columns import heading
from features.history import History

MIN_PEERS = 5


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(a) - np.log(b)
    return np.where(np.isfinite(r), r, np.nan)


class ValueAnomalyFeatures(FeatureFamily):
    name = "value_anomaly"
    label = "value and weight"

    def fit(self, history: History, train: Columns) -> ValueAnomalyFeatures:
        d = history.declaration_events()
        lv = _log_ratio(d["customs_value"], d["gross_weight_kg"])
        ok = np.isfinite(lv)
        self.peers_ = AsOfTable(d["heading"][ok], d["day"][ok], {"n": np.ones(ok.sum()), "s": lv[ok], "ss": lv[ok] ** 2})
        self.feature_names_ = ("log_value", "log_weight", "log_quantity", "log_value_per_kg", "log_value_per_unit",
                               "log_kg_per_unit", "value_per_kg_z", "heading_peers")
        self.categorical_ = ()
        return self

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        v, w, q = cols["customs_value"], cols["gross_weight_kg"], cols["quantity"]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = {
                "log_value": np.log1p(v),
                "log_weight": np.log1p(w),
                "log_quantity": np.log1p(q),
            }
        f["log_value_per_kg"] = _log_ratio(v, w)
        f["log_value_per_unit"] = _log_ratio(v, q)
        f["log_kg_per_unit"] = _log_ratio(w, q)
        p = self.peers_.lookup(heading(cols["hs_code"]), cols["day"])
        n = p["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = p["s"] / n
            var = p["ss"] / n - mean**2
            z = np.clip((f["log_value_per_kg"] - mean) / np.sqrt(np.maximum(var, 0.01)), -20.0, 20.0)
        f["value_per_kg_z"] = np.where(n >= MIN_PEERS, z, np.nan)
        f["heading_peers"] = n
        return f

    def reason(self, cols: Columns, feats, i: int) -> str:
        z = feats["value_per_kg_z"][i]
        if np.isfinite(z) and z <= -1.0:
            return (f"declared value per kg far below similar goods: {-z:.1f} standard deviations under "
                    "the usual value of this HS heading")
        if np.isfinite(z) and z >= 1.5:
            return (f"declared value per kg far above similar goods: {z:.1f} standard deviations over "
                    "the usual value of this HS heading")
        return "declared value, weight and quantity"


class CalendarFeatures(FeatureFamily):
    name = "calendar"
    label = "calendar"

    def fit(self, history: History, train: Columns) -> CalendarFeatures:
        self.feature_names_ = ("day_of_week", "month")
        self.categorical_ = ()
        return self

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        d = day.astype("datetime64[D]")
        month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
        return {"day_of_week": ((day + 3) % 7).astype(np.float64), "month": month.astype(np.float64)}

    def reason(self, cols: Columns, feats, i: int) -> str:
        return "day of week and month"


class ExtraColumnFeatures(FeatureFamily):
    """Source columns a mapping keeps (e.g. the Korean procedural codes) as generic features."""

    name = "extra"
    label = "other declared fields"

    def __init__(self, numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = (), min_count: int = 5):
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count

    def fit(self, history: History, train: Columns) -> ExtraColumnFeatures:
        from features._base import CategoryCodes

        self.codes_ = {c: CategoryCodes(train[c], self.min_count) for c in self.categorical}
        self.feature_names_ = tuple(f"x_{c}" for c in (*self.numeric, *self.categorical))
        self.categorical_ = tuple(f"x_{c}" for c in self.categorical)
        return self

    def narrowed(self, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ExtraColumnFeatures:
        """This fitted family restricted to some of its columns (their vocabularies kept, no refit)."""
        new = ExtraColumnFeatures(numeric, categorical, self.min_count)
        new.codes_ = {c: self.codes_[c] for c in categorical}
        new.feature_names_ = tuple(f"x_{c}" for c in (*numeric, *categorical))
        new.categorical_ = tuple(f"x_{c}" for c in categorical)
        return new

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        f = {f"x_{c}": np.asarray(cols[c], dtype=np.float64) for c in self.numeric}
        f.update({f"x_{c}": enc.encode(cols[c]) for c, enc in self.codes_.items()})
        return f

    def reason(self, cols: Columns, feats, i: int) -> str:
        shown = ", ".join(f"{c}={cols[c][i]}" for c in (*self.numeric, *self.categorical)[:3])
        return f"declared fields ({shown})"
