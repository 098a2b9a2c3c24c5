"""The monitoring figures, week by week, from recorded selections joined to recorded outcomes.

Inputs are plain frames so the CLI, the API and tests share one function:

* ``selections``: one row per scored declaration — ``declaration_id``, ``selected_ts`` (when it was
  scored; the audit log's ``created_at`` is accepted), ``risk_score``, ``lane``, ``selection``
  (``model`` / ``random`` / ``none``) and ``selection_probability``;
* ``outcomes``: the OUTCOME contract (``declaration_id``, ``inspected_date``, ``selection_source``,
  ``selection_probability``, ``hit`` …).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitoring.metrics import (
    ECE_BAND,
    PSI_BANDS,
    hit_rate,
    ipw_rate,
    precision_at_rate,
    psi_table,
    reliability,
)

SOURCES = ("model", "rule", "random", "officer")
SELECTION_COLUMNS = ("declaration_id", "selected_ts", "risk_score", "lane", "selection", "selection_probability")
LANES = ("red", "yellow", "green")
MIN_WEEK_CALIBRATION = 50  # a week's ECE over fewer scored outcomes is noise, not a warning


def week_start(dates: pd.Series) -> pd.Series:
    """Monday of each date's week (naive UTC days)."""
    d = pd.to_datetime(dates, utc=True).dt.tz_convert(None).dt.normalize()
    return d - pd.to_timedelta(d.dt.weekday, unit="D")


def normalise_selections(selections: pd.DataFrame | None) -> pd.DataFrame:
    """The selection columns in canonical types; the audit log's ``created_at`` becomes ``selected_ts``."""
    if selections is None or not len(selections):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in SELECTION_COLUMNS})
    s = selections.rename(columns={"created_at": "selected_ts"}) if "selected_ts" not in selections else selections
    missing = [c for c in ("declaration_id", "risk_score") if c not in s.columns]
    if missing:
        raise ValueError(f"selections: missing column(s) {missing}; expected {list(SELECTION_COLUMNS)}")
    out = pd.DataFrame({"declaration_id": s["declaration_id"].astype(str)})
    out["selected_ts"] = (pd.to_datetime(s["selected_ts"], utc=True).dt.tz_convert(None)
                          if "selected_ts" in s else pd.NaT)
    out["risk_score"] = pd.to_numeric(s["risk_score"], errors="coerce")
    out["lane"] = s["lane"].astype(object) if "lane" in s else None
    sel = s["selection"].astype(object) if "selection" in s else pd.Series(None, index=s.index, dtype=object)
    out["selection"] = sel.where(sel.isin(["model", "random"]), "none")
    out["selection_probability"] = (pd.to_numeric(s["selection_probability"], errors="coerce")
                                    if "selection_probability" in s else np.nan)
    return out.reset_index(drop=True)


def join_outcomes(selections: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each outcome with its latest selection record: source, probability, score and the week it counts in.

    The outcome's own source and probability win; the selection record fills them when empty. The
    week is the week the item was scored, or inspected when no selection record exists.
    """
    for col in ("declaration_id", "inspected_date", "hit"):
        if col not in outcomes.columns:
            raise ValueError(f"outcomes: missing column {col!r}")
    latest = selections.sort_values("selected_ts", kind="stable").drop_duplicates("declaration_id", keep="last")
    o = outcomes.assign(declaration_id=outcomes["declaration_id"].astype(str))
    j = o.merge(latest.rename(columns={"selection_probability": "sel_probability"}), on="declaration_id",
                how="left")
    src = j["selection_source"].astype(object) if "selection_source" in j else pd.Series(None, index=j.index)
    from_sel = j["selection"].where(j["selection"].isin(["model", "random"]))
    j["source"] = src.where(src.notna(), from_sel).fillna("unknown")
    prob = pd.to_numeric(j["selection_probability"], errors="coerce") if "selection_probability" in j \
        else pd.Series(np.nan, index=j.index)
    j["probability"] = prob.where(prob.notna(), j["sel_probability"])
    j["hit"] = j["hit"].astype(bool)
    when = j["selected_ts"].where(j["selected_ts"].notna(), pd.to_datetime(j["inspected_date"]))
    j["day"] = pd.to_datetime(when, utc=True).dt.tz_convert(None).dt.normalize()  # the day it counts on
    j["week"] = week_start(when)
    return j


def _outcome_figures(j: pd.DataFrame, scores_all: np.ndarray, rate: float) -> dict[str, Any]:
    """Hit rates by source, the IPW overall rate, precision at the inspection rate and calibration."""
    by_source = {s: hit_rate(j.loc[j["source"] == s, "hit"].to_numpy()) for s in SOURCES}
    unknown = (j["source"] == "unknown").to_numpy()
    if unknown.any():  # outcomes with no source and no selection on record: counted, so the sources add up
        by_source["unknown"] = hit_rate(j.loc[unknown, "hit"].to_numpy())
    prob = j["probability"].to_numpy(dtype=float)
    certain_or_random = j["source"].isin(["model", "rule", "random"]).to_numpy()
    ipw = ipw_rate(j["hit"].to_numpy()[certain_or_random], prob[certain_or_random])
    score = j["risk_score"].to_numpy(dtype=float)
    prec = precision_at_rate(scores_all, score, j["hit"].to_numpy(), prob, rate)
    # selection by score alone (model, random stratum) leaves the hit rate at a given score unbiased;
    # rules and officers pick on other grounds, so their items would distort the curve
    cal = j["source"].isin(["model", "random"]).to_numpy() & np.isfinite(score) & np.isfinite(prob) & (prob > 0)
    rel = reliability(score[cal], j["hit"].to_numpy()[cal], 1.0 / prob[cal])
    return {"inspections": int(len(j)), "hits": int(j["hit"].sum()), "hit_rate": hit_rate(j["hit"].to_numpy()),
            "by_source": by_source, "ipw_overall": ipw, "precision_at_rate": prec, "calibration": rel}


def _lanes(sel: pd.DataFrame) -> dict[str, int]:
    counts = sel["lane"].value_counts()
    out = {lane: int(counts.get(lane, 0)) for lane in LANES}
    out["scored"] = int(len(sel))
    return out


def _warnings(overall: dict[str, Any], weeks: list[dict[str, Any]], drift: list[dict[str, Any]] | None,
              ece_band: float, since: pd.Timestamp | None = None) -> list[str]:
    out = []
    if not weeks:  # an empty report said nothing (e.g. --since in the future, or a store nothing reached yet)
        out.append("WARNING nothing to monitor: no declaration scored and no outcome counted"
                   + (f" from {since.date().isoformat()} on" if since is not None else ""))
    for row in drift or []:
        if row["band"] != "stable":
            band = PSI_BANDS[1] if row["band"] == "significant" else PSI_BANDS[0]
            out.append(f"WARNING drift: {row['feature']} PSI {row['psi']:.3f} ≥ {band} ({row['band']} shift "
                       f"between the training period and recent traffic)")
    ece = overall["calibration"]["ece"]
    if ece is not None and ece > ece_band:
        out.append(f"WARNING calibration: expected calibration error {ece:.3f} > {ece_band} over the period "
                   f"(scores no longer match observed hit rates; refresh or retrain)")
    if weeks:
        last = weeks[-1]
        lece = last["calibration"]["ece"]
        if lece is not None and lece > ece_band and last["calibration"]["items"] >= MIN_WEEK_CALIBRATION:
            out.append(f"WARNING calibration: expected calibration error {lece:.3f} > {ece_band} in the week of "
                       f"{last['week']}")
    if overall["inspections"] and overall["ipw_overall"]["estimate"] is None:
        out.append("WARNING no random-stratum inspections: the overall hit rate cannot be estimated without "
                   "selection bias (score with a random share)")
    return out


def build_monitoring(selections: pd.DataFrame | None, outcomes: pd.DataFrame,
                     reference_features: pd.DataFrame | None = None, recent_features: pd.DataFrame | None = None,
                     since: str | pd.Timestamp | None = None, inspection_rate: float | None = None,
                     ece_band: float = ECE_BAND) -> dict[str, Any]:
    """Every monitoring figure, weekly and over the whole period, with drift and warning lines (JSON-ready).

    ``since``: only selections scored and outcomes counted (the day the item was scored, else inspected)
    from this day on; a ``since`` in mid-week makes its first week a partial one. ``inspection_rate``:
    the rate precision is taken at (default: the setting ``RISKPROF_INSPECTION_RATE``).
    """
    if inspection_rate is None:
        from settings import get_settings

        inspection_rate = get_settings().inspection_rate
    sel = normalise_selections(selections)
    # one record per declaration, the latest: a declaration scored again (two batch outputs of the same
    # manifest, a batch run and an API call) was counted in the lanes and the precision once per record
    n_records = len(sel)
    sel = sel.sort_values("selected_ts", kind="stable").drop_duplicates("declaration_id", keep="last")
    sel = sel.sort_index().reset_index(drop=True)
    sel["week"] = week_start(sel["selected_ts"]) if len(sel) else pd.Series(dtype="datetime64[ns]")
    j = join_outcomes(sel, outcomes)
    start = pd.Timestamp(since) if since is not None else None
    if start is not None:
        sel = sel[sel["selected_ts"].isna() | (sel["selected_ts"] >= start)]
        # by day, as the selections: the week's Monday let in the outcomes of the days before ``since``
        j = j[j["day"] >= start]
    weeks: list[dict[str, Any]] = []
    for wk in sorted(set(j["week"].dropna()) | set(sel["week"].dropna())):
        ws = sel[sel["week"] == wk]
        fig = _outcome_figures(j[j["week"] == wk], ws["risk_score"].to_numpy(dtype=float), inspection_rate)
        weeks.append({"week": wk.date().isoformat(), **fig, "lanes": _lanes(ws)})
    overall = {**_outcome_figures(j, sel["risk_score"].to_numpy(dtype=float), inspection_rate),
               "lanes": _lanes(sel)}
    drift = None
    if reference_features is not None and recent_features is not None:
        drift = psi_table(reference_features, recent_features)
    return {"since": start.date().isoformat() if start is not None else None, "inspection_rate": inspection_rate,
            "rescored_records": n_records - len(sel),
            "ece_band": ece_band, "psi_bands": list(PSI_BANDS), "weeks": weeks, "overall": overall,
            "drift": drift, "warnings": _warnings(overall, weeks, drift, ece_band, start)}
