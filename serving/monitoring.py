"""Monitoring from the serving store: the recorded selections (audit log) joined to the recorded
outcomes, through :func:`monitoring.build_monitoring` — the same figures ``riskprof monitor`` writes
and ``GET /v1/monitoring`` answers."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.errors import FieldProblem, InputError
from serving.store import Store, outcomes_frame

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
AUDIT_COLUMNS = ["declaration_id", "created_at", "risk_score", "lane", "selection", "selection_probability"]


def store_frames(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(outcomes, selections) recorded in the store; empty frames when it holds none yet."""
    from monitoring import selections_from_audit

    if sa.inspect(store.engine).has_table("audit_items"):
        audit = store.selections_frame()  # the six columns monitoring reads, not the whole audit log
    else:
        audit = pd.DataFrame(columns=AUDIT_COLUMNS)
    return outcomes_frame(store), selections_from_audit(audit)


def parse_since(text: str | None) -> pd.Timestamp | None:
    """``YYYY-MM-DD`` → the first day reported; an impossible date is a 422 naming ``since``."""
    if text is None or not text.strip():
        return None
    problem = None
    if not re.fullmatch(DATE_PATTERN, text):
        problem = "expected a date such as 2024-03-01"
    else:
        try:
            return pd.Timestamp(dt.date.fromisoformat(text))
        except ValueError as exc:
            problem = f"not a date: {exc}"
    raise InputError([FieldProblem("since", problem, value=text[:40], has_value=True)])


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such figures (an empty week) are answered as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def monitoring_from_store(store: Store, since: pd.Timestamp | None = None,
                          inspection_rate: float | None = None) -> dict[str, Any]:
    """Weekly hit rates by selection source, the IPW overall rate, precision, calibration and lanes."""
    from monitoring import build_monitoring

    outcomes, selections = store_frames(store)
    result = build_monitoring(selections if len(selections) else None, outcomes, since=since,
                              inspection_rate=inspection_rate)
    return _finite(json.loads(json.dumps(result, default=str)))
