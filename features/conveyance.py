"""Conveyance, office and direction, with their historical seizure intensity and hit rates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from features._asof import AsOfTable
from features._base import (
    CategoryCodes,
    CodedFamily,
    Columns,
    OutcomeFeatures,
    counted,
    global_rate,
    outcome_table,
)
from features._columns import derived, keys_of, pair, pair_arrow
from features.history import History

_CODED = ("conveyance", "office_type", "direction", "office_id")
_OFFICE = OutcomeFeatures("office", ("hit_rate",))
_CONVEYANCE = OutcomeFeatures("conveyance", ("hit_rate", "hit_ratio"))


def _at(conveyance: np.ndarray, location: np.ndarray) -> np.ndarray:
    return pair(conveyance, location, "@")


def _at_arrow(conveyance: pa.Array, location: pa.Array) -> pa.Array:
    return pair_arrow(conveyance, location, "@")


class ConveyanceOfficeFeatures(CodedFamily):
    name = "conveyance_office"
    label = "conveyance and office"
    features = (*_CODED, "conveyance_seizure_cases", "conveyance_location_seizure_cases", *_OFFICE.names,
                *_CONVEYANCE.names)
    categorical_features = _CODED

    def _fit(self, history: History, train: Columns) -> None:
        self.codes_ = {c: CategoryCodes(train[c], self.min_count) for c in _CODED}
        cases = history.case_events()
        ones = np.ones(len(cases["day"]))
        self.conv_cases_ = AsOfTable(cases["conveyance"], cases["day"], {"n": ones})
        self.conv_loc_cases_ = AsOfTable(_at(cases["conveyance"], cases["detection_location"]), cases["day"],
                                         {"n": ones})
        out = history.outcome_events()
        self.office_hits_ = outcome_table(out["office_id"], out)
        self.conv_hits_ = outcome_table(out["conveyance"], out)
        self.global_ = global_rate(history)

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        conv = keys_of(cols, "conveyance")  # read by a code and two tables
        f = {c: enc.encode(keys_of(cols, c)) for c, enc in self.codes_.items()}
        f["conveyance_seizure_cases"] = self.conv_cases_.lookup(conv, day)["n"]
        f["conveyance_location_seizure_cases"] = self.conv_loc_cases_.lookup(
            derived(cols, "conveyance@office_type", _at, ("conveyance", "office_type"), _at_arrow), day)["n"]
        prior = self.global_.at(day)
        f |= _OFFICE.compute(self.office_hits_, keys_of(cols, "office_id"), day, prior)
        f |= _CONVEYANCE.compute(self.conv_hits_, conv, day, prior)
        return f

    def reason(self, cols: Columns, feats, i: int) -> str:
        conv = cols["conveyance"][i] or "unknown conveyance"
        loc = cols["office_type"][i] or "unknown office type"
        n = int(feats["conveyance_location_seizure_cases"][i])
        text = f"{conv} at {loc}"
        if n:
            text += f": {counted(n, 'past weapon seizure case')} by this conveyance at this kind of location"
        ratio = feats["conveyance_hit_ratio"][i]
        if ratio >= 1.5:
            text += f"; hit rate {ratio:.1f}× the average"
        return text
