"""Value and weight anomalies against the HS heading's peers known at the time."""

from __future__ import annotations

import numpy as np

from features._asof import AsOfTable
from features._base import Columns, FeatureFamily
from features._columns import prefix_keys
from features.history import History

MIN_PEERS = 5


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(a) - np.log(b)
    return np.where(np.isfinite(r), r, np.nan)


class ValueAnomalyFeatures(FeatureFamily):
    name = "value_anomaly"
    label = "value and weight"
    features = ("log_value", "log_weight", "log_quantity", "log_value_per_kg", "log_value_per_unit",
                "log_kg_per_unit", "value_per_kg_z", "heading_peers")

    def _fit(self, history: History, train: Columns) -> None:
        d = history.declaration_events()
        lv = _log_ratio(d["customs_value"], d["gross_weight_kg"])
        ok = np.isfinite(lv)
        self.peers_ = AsOfTable(d["heading"][ok], d["day"][ok], {"n": np.ones(ok.sum()), "s": lv[ok], "ss": lv[ok] ** 2})

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
        p = self.peers_.lookup(prefix_keys(cols, "hs_code", 4), cols["day"])
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


def __getattr__(name: str) -> object:
    # models pickled before the calendar and extra-column families had modules of their own name
    # them here; loading such a model must keep working
    if name == "CalendarFeatures":
        from features.calendar import CalendarFeatures

        return CalendarFeatures
    if name == "ExtraColumnFeatures":
        from features.extra import ExtraColumnFeatures

        return ExtraColumnFeatures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
