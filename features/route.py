"""Route features: countries, regions, transit, and seizure / hit history of the route."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features._asof import AsOfTable
from features._base import (
    CategoryCodes,
    CodedFamily,
    Columns,
    OutcomeFeatures,
    counted,
    global_rate,
    is_missing,
    outcome_table,
    token_max,
)
from features._columns import derived, keys_of, known_arrow, pair, pair_arrow, per_unique
from features.history import History, explode_transits, route_key
from features.reference import region_of

_COUNTRIES = ("origin_country", "departure_country", "destination_country")
_REGIONS = ("departure_region_code", "destination_region_code")
_REGION_CODES = {r: float(i) for i, r in enumerate(
    ("NAM", "WE", "ECE", "CIS", "ME", "AP", "SA", "CAR", "CAM", "WA", "WCA", "ESA", "NA", "UNK"))}
_ROUTE = OutcomeFeatures("route", ("inspections", "hit_rate", "hit_ratio"))


def _route_arrow(dep: pa.Array, transit: pa.Array, dest: pa.Array) -> pa.Array:
    """:func:`features.history.route_key` on Arrow strings: ``DEP>[TRANSIT>]DEST``, ``?`` if unknown."""
    t = pc.fill_null(transit, "")
    via = pc.if_else(pc.equal(t, ""), "", pc.binary_join_element_wise(t, ">", ""))
    return pc.binary_join_element_wise(known_arrow(dep), ">", via, known_arrow(dest), "")


def _transit_countries(transit: object) -> list[str]:
    return transit.split("|") if isinstance(transit, str) and transit else []


class RouteFeatures(CodedFamily):
    name = "route"
    label = "route"
    features = (
        *_COUNTRIES, *_REGIONS, "n_transit", "unknown_departure", "unknown_destination",
        "route_seizure_cases", "departure_seizure_cases", "destination_seizure_cases",
        "transit_seizure_cases", "route_declarations", *_ROUTE.names,
    )
    categorical_features = (*_COUNTRIES, *_REGIONS)

    def _fit(self, history: History, train: Columns) -> None:
        self.codes_ = {c: CategoryCodes(train[c], self.min_count) for c in _COUNTRIES}
        cases = history.case_events()
        ones = np.ones(len(cases["day"]))
        self.dep_cases_ = AsOfTable(cases["departure_country"], cases["day"], {"n": ones})
        self.dest_cases_ = AsOfTable(cases["destination_country"], cases["day"], {"n": ones})
        self.pair_cases_ = AsOfTable(cases["route_pair"], cases["day"], {"n": ones})
        tk, td = explode_transits(cases["transit_countries"], cases["day"])
        self.transit_cases_ = AsOfTable(tk, td, {"n": np.ones(len(td))})
        decl = history.declaration_events()
        self.route_decls_ = AsOfTable(decl["route"], decl["day"], {"n": np.ones(len(decl["day"]))})
        out = history.outcome_events()
        self.route_hits_ = outcome_table(out["route"], out)
        self.global_ = global_rate(history)

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        dep, dest = keys_of(cols, "departure_country"), keys_of(cols, "destination_country")
        transit = keys_of(cols, "transit_countries")
        f = {c: self.codes_[c].encode(keys_of(cols, c)) for c in self.codes_}
        def region_code(c: object) -> float:
            return _REGION_CODES[region_of(c)]

        f["departure_region_code"] = per_unique(dep, region_code, np.float64)
        f["destination_region_code"] = per_unique(dest, region_code, np.float64)
        f["n_transit"] = per_unique(transit, lambda t: t.count("|") + 1 if t else 0, np.float64)
        f["unknown_departure"] = is_missing(dep)
        f["unknown_destination"] = is_missing(dest)
        pairs = derived(cols, "route_pair", pair, ("departure_country", "destination_country"), pair_arrow)
        f["route_seizure_cases"] = self.pair_cases_.lookup(pairs, day)["n"]
        f["departure_seizure_cases"] = self.dep_cases_.lookup(dep, day)["n"]
        f["destination_seizure_cases"] = self.dest_cases_.lookup(dest, day)["n"]
        f["transit_seizure_cases"] = token_max(self.transit_cases_, transit, _transit_countries, day)
        # read by two tables
        route = derived(cols, "route", route_key, ("departure_country", "transit_countries", "destination_country"),
                        _route_arrow)
        f["route_declarations"] = self.route_decls_.lookup(route, day)["n"]
        f |= _ROUTE.compute(self.route_hits_, route, day, self.global_.at(day))
        return f

    def reason(self, cols: Columns, feats, i: int) -> str:
        dep = cols["departure_country"][i] or "unknown"
        dest = cols["destination_country"][i] or "unknown"
        transit = cols["transit_countries"][i]
        path = " → ".join([dep, *(transit.split("|") if transit else []), dest])
        parts = []
        cases = int(feats["route_seizure_cases"][i])
        tcases = int(feats["transit_seizure_cases"][i])
        if cases:
            parts.append(f"{counted(cases, 'past weapon seizure case')} on {dep} → {dest}")
        if tcases:
            parts.append(f"transit via a hub seen in {counted(tcases, 'past seizure case')}")
        ratio = feats["route_hit_ratio"][i]
        if feats["route_inspections"][i] >= 5 and ratio >= 1.5:
            parts.append(f"hit rate {ratio:.1f}× the average")
        if not parts:
            if dep == "unknown":
                parts.append("departure country not declared")
            else:
                parts.append("route risk")
        return f"route {path}: " + ", ".join(parts)
