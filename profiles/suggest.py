"""Draft profiles proposed from the seizure history: combinations of route (departure → destination),
conveyance and declared cover heading whose case counts rose in the recent window against the
window before it. Each proposal carries its evidence; it is a ``draft`` and fires only after an
analyst activates it."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.reference import heading_name, hs_headings
from profiles.model import Profile
from profiles.validate import validate_profiles

DIMENSIONS = ("route", "conveyance", "heading")


@dataclass(frozen=True)
class Suggestion:
    """A draft profile and why: distinct cases before and after, the change and example case ids."""

    profile: Profile
    combination: dict[str, str]
    before: int
    after: int
    change: int
    example_cases: tuple[str, ...]
    earlier_window: tuple[dt.date, dt.date]
    recent_window: tuple[dt.date, dt.date]

    def evidence(self) -> dict[str, Any]:
        return {"combination": self.combination, "cases_before": self.before, "cases_after": self.after,
                "change": self.change, "example_cases": list(self.example_cases),
                "earlier_window": [str(d) for d in self.earlier_window],
                "recent_window": [str(d) for d in self.recent_window]}


def _cases(seizures: pd.DataFrame) -> pd.DataFrame:
    """One row per case and combination (a case counts once however many items it seized)."""
    when = seizures["reported_date"] if "reported_date" in seizures else seizures["event_date"]
    not_weapons = set(hs_headings().loc[lambda h: h["weapons_relevance"] != "weapon", "heading"])
    heading = seizures["declared_hs_code"].astype("string").str[:4]
    cases = pd.DataFrame({
        "case_id": seizures["case_id"].astype(str),
        "day": pd.to_datetime(when).dt.normalize(),
        "departure": seizures["departure_country"].astype("string"),
        "destination": seizures["destination_country"].astype("string"),
        "conveyance": seizures["conveyance"].astype("string"),
        # weapons declared as weapons are not cover goods: no profile on them
        "heading": heading.where(heading.isin(not_weapons)),
    })
    cases["route"] = (cases["departure"] + ">" + cases["destination"]).astype("string")
    return cases.drop_duplicates(["case_id", "route", "conveyance", "heading"])


def _rises(cases: pd.DataFrame, dims: tuple[str, ...], since: pd.Timestamp, window: pd.Timedelta,
           min_recent: int, min_ratio: float, examples: int) -> list[dict[str, Any]]:
    known = cases.dropna(subset=list(dims))
    recent = known[known["day"] >= since]
    earlier = known[(known["day"] < since) & (known["day"] >= since - window)]
    after = recent.groupby(list(dims))["case_id"].nunique()
    before = earlier.groupby(list(dims))["case_id"].nunique().reindex(after.index, fill_value=0)
    keep = (after >= min_recent) & ((after + 1) / (before + 1) >= min_ratio)
    out = []
    for key in after.index[keep]:
        key = key if isinstance(key, tuple) else (key,)
        mask = pd.Series(True, index=recent.index)
        for d, v in zip(dims, key, strict=True):
            mask &= recent[d] == v
        ids = recent.loc[mask].sort_values(["day", "case_id"], ascending=[False, True])["case_id"].unique()
        out.append({"combination": dict(zip(dims, key, strict=True)), "before": int(before[key]),
                    "after": int(after[key]), "examples": tuple(ids[:examples])})
    return out


def _redundant(s: dict[str, Any], others: list[dict[str, Any]]) -> bool:
    """A broader combination is left out when a narrower one holds exactly its cases."""
    return any(len(o["combination"]) > len(s["combination"])
               and s["combination"].items() <= o["combination"].items()
               and (o["before"], o["after"]) == (s["before"], s["after"]) for o in others)


def _draft(combo: dict[str, str], before: int, after: int, windows: tuple[str, str], valid_from: dt.date,
           valid_days: int, owner: str) -> dict[str, Any]:
    conditions, parts, slug = [], [], []
    if "heading" in combo:
        h = combo["heading"]
        conditions.append({"field": "hs_code", "op": "prefix", "values": [h]})
        parts.append(f"{heading_name(h) or 'goods'} (HS {h})")
        slug.append(h)
    if "route" in combo:
        dep, dest = combo["route"].split(">")
        conditions += [{"field": "departure_country", "op": "in", "values": [dep]},
                       {"field": "destination_country", "op": "in", "values": [dest]}]
        parts.append(f"from {dep} to {dest}")
        slug.append(f"{dep}-{dest}")
    if "conveyance" in combo:
        conditions.append({"field": "conveyance", "op": "in", "values": [combo["conveyance"]]})
        parts.append(f"by {combo['conveyance']}")
        slug.append(combo["conveyance"].replace(" ", "_"))
    what = " ".join(parts)
    return {
        "id": "suggested-" + "-".join(slug), "name": f"Suggested: {what}"[:120],
        "criterion": f"{what}: seizure cases rose from {before} ({windows[0]}) to {after} ({windows[1]})",
        "conditions": conditions, "action": {"lane": "yellow", "alert": True},
        "valid_from": str(valid_from), "valid_to": str(valid_from + dt.timedelta(days=valid_days)),
        "status": "draft", "owner": owner,
    }


def suggest_profiles(seizures: pd.DataFrame, since: dt.date | None = None, window_days: int = 365,
                     min_recent: int = 3, min_ratio: float = 2.0, limit: int = 20, examples: int = 5,
                     valid_days: int = 180, owner: str = "suggestions") -> list[Suggestion]:
    """Draft profiles from a validated seizure table (the SEIZURE contract), by distinct cases dated
    when they became known (``reported_date``).

    The recent window runs from ``since`` (default: ``window_days`` before the last case) to the last
    case; the earlier window is as long and ends where the recent one starts. A combination of route,
    conveyance and declared cover heading (two of them or all three) is proposed when it has
    ``min_recent`` cases or more in the recent window and (after + 1) / (before + 1) ≥ ``min_ratio``;
    a broader combination holding exactly the cases of a narrower one is left out. Sorted by the
    rise, largest first; valid from the day after the last case for ``valid_days``.
    """
    cases = _cases(seizures)
    if cases.empty:
        return []
    end = cases["day"].max()
    start = pd.Timestamp(since) if since is not None else end - pd.Timedelta(days=window_days - 1)
    window = end - start + pd.Timedelta(days=1)
    found: list[dict[str, Any]] = []
    for size in (3, 2):
        for dims in itertools.combinations(DIMENSIONS, size):
            found += _rises(cases, dims, start, window, min_recent, min_ratio, examples)
    found = [s for s in found if not _redundant(s, found)]
    found.sort(key=lambda s: (-(s["after"] - s["before"]), -s["after"], sorted(s["combination"].items())))
    found = found[:limit]
    earlier = ((start - window).date(), (start - pd.Timedelta(days=1)).date())
    recent = (start.date(), end.date())
    labels = (f"{earlier[0]} to {earlier[1]}", f"{recent[0]} to {recent[1]}")
    valid_from = (end + pd.Timedelta(days=1)).date()
    docs = [_draft(s["combination"], s["before"], s["after"], labels, valid_from, valid_days, owner) for s in found]
    profiles, _ = validate_profiles(docs)
    return [Suggestion(p, s["combination"], s["before"], s["after"], s["after"] - s["before"], s["examples"],
                       earlier, recent) for p, s in zip(profiles, found, strict=True)]
