"""Does a profile find anything? Matches, inspections and hits per profile and watch list over a
period, from recorded selections joined to recorded outcomes, beside the model's own hit rate."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
RETIRE_AFTER = 30  # inspections without a single hit that make a profile a candidate for retirement

STATS_COLUMNS = (
    "kind", "rule_id", "versions", "matches", "inspections", "hits", "hit_rate", "hit_rate_low",
    "hit_rate_high", "model_inspections", "model_hits", "model_hit_rate", "model_hit_rate_low",
    "model_hit_rate_high", "candidate_for_retirement",
)


def wilson_interval(hits: np.ndarray | int, n: np.ndarray | int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a proportion (NaN where ``n`` is 0): it stays inside 0-1 and is
    honest for the few inspections a profile gets, where the normal approximation is not."""
    h = np.asarray(hits, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = h / m
        denom = 1 + z**2 / m
        centre = (p + z**2 / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def _versions(v: pd.Series) -> list[int]:
    return sorted({int(x) for x in v})


def _in_period(selections: pd.DataFrame, since: dt.date | None, until: dt.date | None) -> pd.DataFrame:
    day = pd.to_datetime(selections["declaration_date"])
    keep = pd.Series(True, index=selections.index)
    if since is not None:
        keep &= day >= pd.Timestamp(since)
    if until is not None:
        keep &= day <= pd.Timestamp(until)
    return selections.loc[keep, ["declaration_id", "selection_source"]]


def profile_stats(rule_hits: pd.DataFrame, selections: pd.DataFrame, outcomes: pd.DataFrame,
                  since: dt.date | None = None, until: dt.date | None = None,
                  retire_after: int = RETIRE_AFTER) -> pd.DataFrame:
    """One row per profile and watch list (``STATS_COLUMNS``).

    ``rule_hits``: ``declaration_id, kind, rule_id, version`` (one row per match recorded at scoring);
    ``selections``: ``declaration_id, declaration_date, selection_source`` (every scored declaration);
    ``outcomes``: ``declaration_id, inspected, hit`` (the outcome contract). The period is of
    declaration dates (``since``/``until`` inclusive). Inspections and hits count every inspected
    match whatever selected it; the model's hit rate is over declarations the model selected in
    the same period. A rule with ``retire_after`` inspections or more and no hit is flagged.
    """
    scored = _in_period(selections, since, until)
    found = outcomes[["declaration_id", "inspected", "hit"]].drop_duplicates("declaration_id", keep="last")
    scored = scored.merge(found, on="declaration_id", how="left")
    scored["inspected"] = scored["inspected"].fillna(False).astype(bool)
    scored["hit"] = (scored["hit"].fillna(False).astype(bool) & scored["inspected"])
    hits = rule_hits.merge(scored, on="declaration_id", how="inner")
    per = hits.groupby(["kind", "rule_id"], sort=True)
    out = pd.DataFrame({
        "versions": per["version"].agg(_versions),
        "matches": per["declaration_id"].nunique(),
        "inspections": hits[hits["inspected"]].groupby(["kind", "rule_id"])["declaration_id"].nunique(),
        "hits": hits[hits["hit"]].groupby(["kind", "rule_id"])["declaration_id"].nunique(),
    }).fillna({"inspections": 0, "hits": 0}).reset_index()
    out[["inspections", "hits"]] = out[["inspections", "hits"]].astype(np.int64)
    out["hit_rate"] = out["hits"] / out["inspections"].where(out["inspections"] > 0)
    out["hit_rate_low"], out["hit_rate_high"] = wilson_interval(out["hits"].to_numpy(), out["inspections"].to_numpy())
    model = scored[(scored["selection_source"] == "model") & scored["inspected"]]
    n_model, h_model = len(model), int(model["hit"].sum())
    out["model_inspections"], out["model_hits"] = n_model, h_model
    out["model_hit_rate"] = h_model / n_model if n_model else np.nan
    low, high = wilson_interval(h_model, n_model)
    out["model_hit_rate_low"], out["model_hit_rate_high"] = float(low), float(high)
    out["candidate_for_retirement"] = (out["inspections"] >= retire_after) & (out["hits"] == 0)
    return out[list(STATS_COLUMNS)]


def rule_hits_table(declaration_ids: np.ndarray, rule_hits: np.ndarray) -> pd.DataFrame:
    """The long table ``profile_stats`` reads, from per-row ``RuleHit`` tuples as scoring records them."""
    rows = [(d, h.kind, h.id, h.version) for d, hs in zip(declaration_ids, rule_hits, strict=True) for h in hs]
    return pd.DataFrame(rows, columns=["declaration_id", "kind", "rule_id", "version"])
