"""The case file's history: the importer's, the route's and the goods' past inspections and hits, as the
served model's features saw them for this declaration.

The figures are the counts behind the outcome features (``importer_inspections``, ``route_hit_rate``
…), read by the features' own point-in-time look-ups through
:meth:`features.pipeline.FeaturePipeline.outcome_counts`: the model's feature snapshot, as of the
declaration date (outcomes known before that day). Nothing is recounted from raw data here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.contracts import TRANSIT_SEP
from features.pipeline import FeaturePipeline
from serving.errors import ServiceError

Declaration = Mapping[str, Any]


def _text(value: Any, missing: str = "not declared") -> str:
    return str(value) if value not in (None, "") else missing


def _route(d: Declaration) -> str:
    """The route as the route family keys it: departure → transit countries → destination."""
    transit = d.get("transit_countries") or []
    if isinstance(transit, str):
        transit = [c for c in transit.split(TRANSIT_SEP) if c]
    return " → ".join([_text(d.get("departure_country"), "?"), *transit, _text(d.get("destination_country"), "?")])


def _hs(d: Declaration, digits: int) -> str:
    hs = str(d.get("hs_code") or "")
    return f"HS {hs[:digits]}" if hs else "HS code not declared"


def _goods_from(d: Declaration) -> str:
    return (f"{_hs(d, 6)} from {_text(d.get('origin_country'), 'unknown origin')} "
            f"via {_text(d.get('departure_country'), 'unknown departure')}")


#: the outcome look-ups shown, in order: (feature prefix, what, the key it counts under)
SUBJECTS: tuple[tuple[str, str, Callable[[Declaration], str]], ...] = (
    ("importer", "Importer", lambda d: _text(d.get("importer_id"))),
    ("declarant", "Declarant", lambda d: _text(d.get("declarant_id"))),
    ("route", "Route (departure → transit → destination)", _route),
    ("conveyance", "Conveyance", lambda d: _text(d.get("conveyance"))),
    ("heading", "Goods: HS heading", lambda d: _hs(d, 4)),
    ("hs6", "Goods: HS subheading", lambda d: _hs(d, 6)),
    ("hs6_origin_departure", "Goods by origin and departure", _goods_from),
)


@dataclass(frozen=True)
class HistoryRow:
    prefix: str
    what: str
    key: str
    inspections: int
    hits: int

    @property
    def rate(self) -> float | None:
        """Hits over inspections (the features smooth it toward the overall rate; this is the plain one)."""
        return self.hits / self.inspections if self.inspections else None


@dataclass(frozen=True)
class CaseHistory:
    as_of: str  # the declaration date: outcomes known before this day count
    snapshot_cutoff: str | None  # the last day the model's feature snapshot covers
    outcome_delay_days: int  # an outcome counts this many days after its inspection
    rows: list[HistoryRow]
    not_used: list[str]  # subjects whose features this model does not use (left out in training)


def case_history(pipeline: FeaturePipeline, declaration: Declaration) -> CaseHistory:
    """Past inspections and hits of the declaration's importer, route and goods, as its features saw them."""
    counts = pipeline.outcome_counts(pipeline.columns([dict(declaration)]))
    rows, not_used = [], []
    for prefix, what, key in SUBJECTS:
        found = counts.get(prefix)
        if found is None:
            not_used.append(what)
            continue
        rows.append(HistoryRow(prefix, what, key(declaration), int(round(float(found["inspections"][0]))),
                               int(round(float(found["hits"][0])))))
    cutoff = getattr(pipeline, "cutoff_", None)
    return CaseHistory(str(declaration.get("declaration_date") or ""),
                       None if cutoff is None else str(pd.Timestamp(cutoff).date()),
                       int(getattr(pipeline, "outcome_delay_days_", 0) or 0), rows, not_used)


def served_case_history(service: Any, declaration: Declaration) -> CaseHistory | str:
    """:func:`case_history` with the served model's pipeline, or why it cannot be shown (the page says so)."""
    if not declaration.get("declaration_date"):  # e.g. a batch output whose manifest file has changed
        return "The declaration's fields are not available, so its history cannot be looked up."
    try:
        model = service.served.loaded.model
    except ServiceError:
        return "No model is loaded, so the history its features saw cannot be shown."
    pipeline = getattr(model, "pipeline", None)
    if not isinstance(pipeline, FeaturePipeline):
        return "The served model has no feature pipeline to read the history from."
    return case_history(pipeline, declaration)
