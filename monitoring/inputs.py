"""Monitoring inputs: selections from batch outputs, and the declaration features whose drift is watched."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

BATCH_COLUMNS = ("declaration_id", "risk_score", "lane", "selection", "selection_probability")


def _batch_time(path: Path) -> pd.Timestamp:
    """When a batch output was scored: ``finished`` in its ``.meta.json``, else the file's modification time."""
    base = path.with_suffix("") if path.suffix.lower() in (".parquet", ".pq") else path
    meta = base.with_name(base.name + ".meta.json")
    if meta.exists():
        try:
            info = json.loads(meta.read_text())
            stamp = pd.Timestamp(info.get("finished") or info.get("started"))
            if not pd.isna(stamp):
                return stamp.tz_convert(None) if stamp.tzinfo else stamp
        except (ValueError, TypeError, json.JSONDecodeError):
            pass  # an unreadable meta file falls back to the file time rather than losing the selections
    return pd.Timestamp(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)).tz_convert(None)


def selections_from_batch(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Batch scoring outputs (``*.parquet`` with selection columns) as one selections frame."""
    frames = []
    for p in paths:
        path = Path(p)
        df = pd.read_parquet(path)
        missing = [c for c in BATCH_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: not a batch scoring output (missing column(s) {missing})")
        frames.append(df[list(BATCH_COLUMNS)].assign(selected_ts=_batch_time(path)))
    if not frames:
        return pd.DataFrame(columns=[*BATCH_COLUMNS, "selected_ts"])
    return pd.concat(frames, ignore_index=True)


def selections_from_audit(audit: pd.DataFrame) -> pd.DataFrame:
    """The serving audit log (``Store.audit_frame()``) as a selections frame: calls that selected, or scored."""
    if not len(audit):
        return pd.DataFrame(columns=[*BATCH_COLUMNS, "selected_ts"])
    cols = ["declaration_id", "created_at", "risk_score", "lane", "selection", "selection_probability"]
    return audit[cols].rename(columns={"created_at": "selected_ts"}).reset_index(drop=True)


def declaration_features(declarations: pd.DataFrame) -> pd.DataFrame:
    """The declaration fields the model's families are built from, as one column each (for PSI).

    Route and goods as categories (HS heading, countries, conveyance, office type, direction),
    amounts as logarithms (value per kg, weight, value): a shift in any of them moves the features
    computed from it.
    """
    d = declarations
    out = pd.DataFrame(index=d.index)
    for col in ("direction", "office_type", "conveyance", "origin_country", "departure_country",
                "destination_country"):
        if col in d.columns:
            out[col] = d[col].astype(object)
    if "transit_countries" in d.columns:
        t = d["transit_countries"].astype(object)
        out["first_transit"] = t.where(t.notna() & (t != ""), "<none>").astype(str).str.split("|").str[0]
    if "hs_code" in d.columns:
        out["hs_heading"] = d["hs_code"].astype(str).str[:4]
    if "office_id" in d.columns:
        out["office_id"] = d["office_id"].astype(object)
    value = pd.to_numeric(d["customs_value"], errors="coerce") if "customs_value" in d else None
    weight = pd.to_numeric(d["gross_weight_kg"], errors="coerce") if "gross_weight_kg" in d else None
    with np.errstate(divide="ignore", invalid="ignore"):
        if value is not None:
            out["log_value"] = np.log1p(value.clip(lower=0))
        if weight is not None:
            out["log_weight_kg"] = np.log1p(weight.clip(lower=0))
        if value is not None and weight is not None:
            out["log_value_per_kg"] = np.log1p((value / weight.where(weight > 0)).clip(lower=0))
    return out.reset_index(drop=True)


def split_by_date(declarations: pd.DataFrame, since: str | pd.Timestamp,
                  date_column: str = "declaration_date") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Declarations before ``since`` (the reference: the training period) and from ``since`` on (recent)."""
    when = pd.to_datetime(declarations[date_column])
    start = pd.Timestamp(since)
    return declarations[when < start], declarations[when >= start]
