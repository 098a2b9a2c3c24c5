"""Drift scenarios: new trafficking patterns that appear mid-stream, as the report describes them.

Traffickers adapt to what gets inspected: routes move, new concealment goods appear, one weapon
type surges (the report's 2023 rise of imitation hand guns, mostly air imports, and the rise of
non-lethal weapons in Libya among others; firearms conversion "a challenge in Europe, the Middle
East and North Africa"). Each scenario changes declarations dated on or after ``start`` and
multiplies their latent risk, so a model trained before ``start`` has never seen the pattern:

* ``route`` — a new lane, Libya via Malta into Western European seaports: a share ``ROUTE_SHARE``
  of later traffic (container imports declared at a Western European office) is rerouted,
  risk × ``NEW_ROUTE_RR``;
* ``heading`` — a new cover heading, 8418 (refrigerators and freezers), risk × ``NEW_COVER_RR``;
* ``weapon`` — imitation hand guns by air: air cargo and express-courier imports declared as toys or
  sports goods (9503, 9506), risk × ``WEAPON_RISE_RR``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthetic._declarations import RISK_CAP

DRIFT_KINDS = ("route", "heading", "weapon")
ROUTE_SHARE = 0.02  # of all traffic from ``start`` on
ROUTE_DEPARTURE, ROUTE_TRANSIT = "LY", "MT"
ROUTE_OFFICES = ("IT", "ES", "FR", "DE", "GB", "NL", "BE")
NEW_ROUTE_RR = 20.0
NEW_COVER_HEADING = "8418"
NEW_COVER_RR = 10.0
WEAPON_CONVEYANCES = ("air", "express courier")
WEAPON_HEADINGS = ("9503", "9506")
WEAPON_RISE_RR = 10.0


@dataclass(frozen=True)
class Drifted:
    """Declarations and latent risk after the drift; ``pattern`` names the new pattern of each row ('' = none)."""

    declarations: pd.DataFrame
    latent_risk: np.ndarray
    pattern: np.ndarray


def parse_drift(kinds: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"route,heading"``, ``"all"``, ``"none"`` or a list → the scenario names, in DRIFT_KINDS order."""
    if kinds is None:
        return ()
    items = [k.strip().lower() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    if items in (["all"], ["yes"]):
        return DRIFT_KINDS
    if items in ([], ["none"]):
        return ()
    unknown = sorted(set(items) - set(DRIFT_KINDS))
    if unknown:
        raise ValueError(f"unknown drift scenario(s) {unknown}; choose from {list(DRIFT_KINDS)}, 'all' or 'none'")
    return tuple(k for k in DRIFT_KINDS if k in items)


def apply_drift(declarations: pd.DataFrame, latent_risk: np.ndarray | pd.Series, start: str | pd.Timestamp,
                kinds: Iterable[str] = DRIFT_KINDS, seed: int = 0, keep_route: np.ndarray | None = None) -> Drifted:
    """The declarations with the chosen scenarios from ``start`` on (same seed, same rows changed).

    ``keep_route``: rows whose route must not change (e.g. hits that took their seizure case's route).
    """
    chosen = parse_drift(list(kinds))
    rng = np.random.default_rng([seed, 11])
    d = declarations.copy()
    risk = np.asarray(latent_risk, dtype=float).copy()
    after = (pd.to_datetime(d["declaration_date"]) >= pd.Timestamp(start)).to_numpy()
    pattern = np.full(len(d), "", dtype=object)
    heading = d["hs_code"].astype(str).str[:4].to_numpy()
    draw = rng.random(len(d))  # drawn whatever the scenarios, so each scenario's rows do not depend on the others
    if "route" in chosen:
        office_c = d["office_id"].astype(str).str[:2].to_numpy()
        # ordinary container traffic otherwise: nothing but the route gives it away
        eligible = (after & (d["direction"].to_numpy() == "import") & np.isin(office_c, ROUTE_OFFICES)
                    & (d["conveyance"].to_numpy() == "vessel"))
        if keep_route is not None:
            eligible &= ~np.asarray(keep_route, dtype=bool)
        share = min(1.0, ROUTE_SHARE * after.sum() / max(1, eligible.sum()))
        rows = eligible & (draw < share)
        d.loc[rows, ["departure_country", "origin_country"]] = ROUTE_DEPARTURE
        d.loc[rows, "transit_countries"] = ROUTE_TRANSIT
        risk[rows] *= NEW_ROUTE_RR
        pattern[rows] = "route"
    if "heading" in chosen:
        rows = after & (heading == NEW_COVER_HEADING)
        risk[rows] *= NEW_COVER_RR
        pattern[rows & (pattern == "")] = "heading"
    if "weapon" in chosen:
        rows = (after & np.isin(d["conveyance"].to_numpy(), WEAPON_CONVEYANCES)
                & (d["direction"].to_numpy() == "import") & np.isin(heading, WEAPON_HEADINGS))
        risk[rows] *= WEAPON_RISE_RR
        pattern[rows & (pattern == "")] = "weapon"
    return Drifted(d, np.minimum(RISK_CAP, risk), pattern)


def generate_drifted(out_dir: str | Path, seed: int = 0, n_declarations: int = 200_000,
                     kinds: Iterable[str] = DRIFT_KINDS, start: str | pd.Timestamp = "2023-07-01") -> dict[str, Path]:
    """``synthetic.generate`` with the drift scenarios from ``start`` on: same files, same seed → same bytes.

    The recorded outcomes stay consistent with the new risk: an inspected item of a new pattern that
    did not carry under the old risk r carries now with probability (r' - r) / (1 - r), so it
    carries with probability r' overall and every hit of the undrifted data stays a hit. Routes are
    changed only where no rule looked at the route (not a trafficking lane before) and no seizure
    case gave the hit its route.
    """
    from synthetic._declarations import build_declarations, route_level
    from synthetic._generate import FILES, write_parquet
    from synthetic._seizures import generate_seizures

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seizures = generate_seizures(seed)
    decl, outcomes, latent = build_declarations(seizures, n=n_declarations, seed=seed)
    linked = decl["declaration_id"].isin(outcomes.loc[outcomes["case_id"].notna(), "declaration_id"]).to_numpy()
    lane = route_level(decl["departure_country"].to_numpy(), decl["transit_countries"].to_numpy(),
                       decl["destination_country"].to_numpy()) == 2
    old = latent.to_numpy()
    drifted = apply_drift(decl, old, start, kinds, seed, keep_route=linked | lane)
    gain = np.where(drifted.latent_risk > old, (drifted.latent_risk - old) / np.maximum(1e-12, 1 - old), 0.0)
    newly = np.random.default_rng([seed, 13]).random(len(decl)) < gain
    row = pd.Series(np.arange(len(decl)), index=decl["declaration_id"]).loc[outcomes["declaration_id"]].to_numpy()
    outcomes = outcomes.assign(hit=outcomes["hit"].to_numpy() | newly[row])
    paths = {name: out / fname for name, fname in FILES.items()}
    write_parquet(seizures, paths["seizures"])
    write_parquet(drifted.declarations, paths["declarations"])
    write_parquet(outcomes, paths["outcomes"])
    return paths
