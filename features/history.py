"""The history that features are computed from: past declarations, outcomes and seizures.

Each event carries the day it became *known*: declarations on their declaration date, outcomes
on their inspection date, seizures on their reported date. Families build
:class:`~features._asof.AsOfTable` objects from these events, so a declaration dated *t* only
sees events known strictly before *t*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features._asof import to_days
from features._columns import clean_strings, columns_from_frame, heading, object_array
from features.contracts import TRANSIT_SEP


def route_key(dep: np.ndarray, transit: np.ndarray, dest: np.ndarray) -> np.ndarray:
    return np.array(
        [f"{d or '?'}>{(t + '>') if t else ''}{x or '?'}" for d, t, x in zip(dep, transit, dest, strict=True)],
        dtype=object,
    )


@dataclass
class History:
    """Past events. ``outcomes`` needs declaration_id, inspected_date, inspected, hit."""

    declarations: pd.DataFrame
    outcomes: pd.DataFrame
    seizures: pd.DataFrame | None = None
    cutoff: pd.Timestamp | None = None  # for the record: the latest day the history covers
    # an outcome counts in features only this many days after its inspection date (results take
    # time to be recorded; training with the delay of the serving snapshot avoids a freshness skew)
    outcome_delay_days: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.cutoff is None:
            dates = [self.declarations["declaration_date"].max()]
            if len(self.outcomes):
                dates.append(self.outcomes["inspected_date"].max())
            self.cutoff = max(d for d in dates if pd.notna(d))

    # ---- declarations as events --------------------------------------------------------------
    def declaration_events(self) -> dict[str, np.ndarray]:
        if "decl" not in self._cache:
            cols = columns_from_frame(self.declarations)
            cols["route"] = route_key(cols["departure_country"], cols["transit_countries"],
                                      cols["destination_country"])
            cols["heading"] = heading(cols["hs_code"])
            self._cache["decl"] = cols
        return self._cache["decl"]

    # ---- outcomes joined to the attributes of their declarations -------------------------------
    def outcome_events(self) -> dict[str, np.ndarray]:
        if "out" not in self._cache:
            decl = self.declaration_events()
            pos = pd.Index(decl["declaration_id"]).get_indexer(
                object_array(self.outcomes["declaration_id"]))
            known = pos >= 0
            o = self.outcomes[known]
            pos = pos[known]
            self._cache["out_pos"] = pos
            ev = {k: v[pos] for k, v in decl.items() if k != "day"}
            # an outcome is never known before its declaration: a mistyped early inspection date (2001 for a
            # declaration of 2023) counts from the declaration's day, not in the history of every
            # declaration in between (training says how many: training.data.early_outcomes)
            inspected = to_days(o["inspected_date"].to_numpy())
            ev["day"] = np.maximum(inspected, decl["day"][pos]) + int(self.outcome_delay_days)
            ev["inspected"] = o["inspected"].fillna(False).to_numpy(dtype=np.float64)
            ev["hit"] = (o["hit"].fillna(False).to_numpy(dtype=bool) & (ev["inspected"] > 0)).astype(np.float64)
            self._cache["out"] = ev
        return self._cache["out"]

    def outcome_values(self, column: str) -> np.ndarray:
        """A source column of the declarations (e.g. a mapping's extra column), one value per
        outcome event of :meth:`outcome_events` (``None`` where the history does not have it)."""
        self.outcome_events()  # sets the events' positions among the declarations
        pos = self._cache["out_pos"]
        if column not in self.declarations.columns:
            return np.full(len(pos), None, dtype=object)
        return clean_strings(self.declarations[column])[pos]

    # ---- seizure cases (one row per case) ------------------------------------------------------
    def case_events(self) -> dict[str, np.ndarray]:
        if "cases" not in self._cache:
            s = self.seizures
            if s is None or not len(s):
                empty = np.zeros(0, dtype=object)
                self._cache["cases"] = {k: empty for k in (
                    "departure_country", "destination_country", "transit_countries", "conveyance",
                    "detection_location", "route_pair", "heading", "description")} | {
                    "day": np.zeros(0, np.int64)}
            else:
                s = s.sort_values(["case_id", "seizure_id"])
                cases = s.drop_duplicates("case_id")
                date_col = "reported_date" if "reported_date" in s.columns else "event_date"
                day = to_days(cases[date_col].fillna(cases["event_date"]).to_numpy())

                def obj(c: str) -> np.ndarray:
                    if c not in cases.columns:
                        return np.full(len(cases), None, dtype=object)
                    arr = object_array(cases[c])
                    arr[arr == ""] = None
                    return arr

                # declared HS heading of *any* seizure in the case that was declared as something else
                decl_hs = s.dropna(subset=["declared_hs_code"]) if "declared_hs_code" in s.columns else s.iloc[:0]
                first_hs = decl_hs.drop_duplicates("case_id").set_index("case_id")["declared_hs_code"]
                hs = object_array(cases["case_id"].map(first_hs))
                head = np.array([h[:4] if h and not h.startswith("93") else None for h in hs], dtype=object)
                dep, dest = obj("departure_country"), obj("destination_country")
                transit = obj("transit_countries")
                self._cache["cases"] = {
                    "departure_country": dep,
                    "destination_country": dest,
                    "transit_countries": np.array([t or "" for t in transit], dtype=object),
                    "conveyance": obj("conveyance"),
                    "detection_location": obj("detection_location"),
                    "route_pair": np.array([f"{d or '?'}>{x or '?'}" for d, x in zip(dep, dest, strict=True)],
                                           dtype=object),
                    "heading": head,
                    "description": obj("declared_description"),
                    "day": day,
                }
        return self._cache["cases"]


def explode_transits(transit: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, days = [], []
    for t, d in zip(transit, day, strict=True):
        if t:
            for c in t.split(TRANSIT_SEP):
                keys.append(c)
                days.append(d)
    return np.array(keys, dtype=object), np.array(days, dtype=np.int64)


def outcomes_from_labels(declarations: pd.DataFrame, label: str, known_column: str = "declaration_date") -> pd.DataFrame:
    """Outcome rows for data where every row was inspected and carries a label column."""
    return pd.DataFrame({
        "declaration_id": declarations["declaration_id"],
        "inspected_date": declarations[known_column],
        "inspected": True,
        "selection_source": pd.Series(pd.NA, index=declarations.index, dtype="string"),
        "selection_probability": np.nan,
        "hit": declarations[label].astype(bool),
    })
