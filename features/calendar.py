"""Calendar: day of week and month of the declaration."""

from __future__ import annotations

import numpy as np

from features._base import Columns, FeatureFamily
from features.history import History


class CalendarFeatures(FeatureFamily):
    name = "calendar"
    label = "calendar"
    features = ("day_of_week", "month")
    # seasonal patterns of one period often do not carry over to the next: the family has to earn
    # its place on the validation periods
    must_help = True

    def _fit(self, history: History, train: Columns) -> None:
        pass

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        d = day.astype("datetime64[D]")
        month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
        return {"day_of_week": ((day + 3) % 7).astype(np.float64), "month": month.astype(np.float64)}

    def reason(self, cols: Columns, feats, i: int) -> str:
        return "day of week and month"
