"""Value and weight anomalies against the HS heading's peers known at the time."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from features._asof import AsOfTable
from features._base import CategoryCodes, Columns, FeatureFamily, GlobalRate, global_rate, outcome_table, rate
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


#: a categorical extra column with at least this many distinct values in the training rows names
#: parties (a seller, a shipper), not categories: as a LightGBM categorical it overfits (thousands of
#: levels, most seen a few times), so its feature is the party's past hit rate instead
ENTITY_MIN_LEVELS = 1000


class ExtraColumnFeatures(FeatureFamily):
    """Source columns a mapping keeps (e.g. the Korean procedural codes) as generic features.

    Numeric columns are used as they are, categorical ones as category codes, except identifier
    columns (``entity_min_levels`` distinct training values or more, e.g. a seller ID): their
    feature is the smoothed hit rate of that value among outcomes known before the declaration
    date, as for importers and declarants.
    """

    name = "extra"
    label = "other declared fields"
    # (models pickled before identifier columns existed have none)
    entity_: tuple[str, ...] = ()
    entity_tables_: dict[str, AsOfTable] = {}  # noqa: RUF012 - read-only default
    global_: GlobalRate | None = None

    def __init__(self, numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = (), min_count: int = 5,
                 entity_min_levels: int = ENTITY_MIN_LEVELS):
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count
        self.entity_min_levels = entity_min_levels

    def fit(self, history: History, train: Columns) -> ExtraColumnFeatures:
        levels = {c: len({v for v in train[c] if v is not None}) for c in self.categorical}
        self.entity_ = tuple(c for c in self.categorical if levels[c] >= self.entity_min_levels)
        self.codes_ = {c: CategoryCodes(train[c], self.min_count) for c in self.categorical if c not in self.entity_}
        self._fit_history(history)
        self._set_names()
        return self

    def _fit_history(self, history: History) -> None:
        ev = history.outcome_events()
        self.entity_tables_ = {c: outcome_table(history.outcome_values(c), ev) for c in self.entity_}
        self.global_ = global_rate(history) if self.entity_ else None

    def _set_names(self) -> None:
        self.feature_names_ = tuple(f"x_{c}" for c in (*self.numeric, *self.categorical))
        self.categorical_ = tuple(f"x_{c}" for c in self.categorical if c not in self.entity_)

    def refresh(self, history: History, empty: Columns) -> ExtraColumnFeatures:
        """New look-ups of the identifier columns; which columns are identifiers and the category
        vocabularies stay those of training."""
        check_is_fitted(self, "feature_names_")
        self._fit_history(history)
        return self

    def narrowed(self, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ExtraColumnFeatures:
        """This fitted family restricted to some of its columns (their look-ups kept, no refit)."""
        new = ExtraColumnFeatures(numeric, categorical, self.min_count, self.entity_min_levels)
        new.entity_ = tuple(c for c in self.entity_ if c in categorical)
        new.codes_ = {c: self.codes_[c] for c in categorical if c not in new.entity_}
        new.entity_tables_ = {c: self.entity_tables_[c] for c in new.entity_}
        new.global_ = self.global_ if new.entity_ else None
        new._set_names()
        return new

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        f = {f"x_{c}": np.asarray(cols[c], dtype=np.float64) for c in self.numeric}
        f.update({f"x_{c}": enc.encode(cols[c]) for c, enc in self.codes_.items()})
        if self.entity_ and self.global_ is not None:
            day = cols["day"]
            prior = self.global_.at(day)
            for c in self.entity_:
                h = self.entity_tables_[c].lookup(cols[c], day)
                f[f"x_{c}"] = rate(h["hit"], h["insp"], prior)
        return {n: f[n] for n in self.feature_names_}

    def reason(self, cols: Columns, feats, i: int) -> str:
        shown = []
        for c in (*self.numeric, *self.categorical)[:3]:
            if c in self.entity_ and cols[c][i] is not None:
                h = self.entity_tables_[c].lookup(cols[c][i:i + 1], cols["day"][i:i + 1])
                shown.append(f"{c} {cols[c][i]}: {int(h['hit'][0])} hits in {int(h['insp'][0])} past inspections")
            else:
                shown.append(f"{c}={cols[c][i]}")
        return f"declared fields ({', '.join(shown)})"
