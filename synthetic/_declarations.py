"""Declarations and inspection outcomes with planted risk patterns, linked to the seizure cases.

Generative story (see PATTERNS.md):

1. Ordinary declared traffic is drawn from a base distribution; a share of it is "case-like"
   traffic that copies the route, conveyance, office and declared goods of seizure cases.
2. Each declaration gets a latent risk ``p`` = base x product of the planted multipliers x noise.
   Whether it actually carries weapons is ``Z ~ Bernoulli(p)``.
3. Past selection: deterministic risk rules (seeing some patterns), a random stratum and a few
   officer picks. ``hit = inspected & Z``.
4. Each hit is linked to an unused seizure case with the same conveyance and HS heading (and office
   type for vehicles), preferably the same direction, whose merged route keeps the hit's route risk
   level; the hit then takes the case's date, office, direction and known route countries (none of
   which carries planted risk beyond the route level). Hits without such a case keep ``case_id``
   empty (documented in PATTERNS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import DECLARATION, OUTCOME
from synthetic._goods import (
    BIG_ADMINISTRATIONS,
    DESCRIPTIONS,
    GOODS,
    HUBS,
    ISLANDS,
    LOCATION_CODES,
    OFFICE_COUNTRY_WEIGHTS,
    PARTNER_REGION_WEIGHTS,
    PRIMARY_COVER,
    SECONDARY_COVER,
    TRAFFIC_WEIGHTS,
    draw_partners,
    partner_table,
    region_table,
)

START = np.datetime64("2022-01-01")
N_DAYS = 730  # 2022-01-01 .. 2023-12-31

# ---- planted pattern strengths (relative risk multipliers) ---------------------------------
COVER_PRIMARY_RR = 6.0
COVER_SECONDARY_RR = 2.0
LANE_RR = 5.0
RISKY_REGION_PAIR_RR = 2.0
EXPRESS_MAIL_RR = 3.0
LAND_BORDER_VEHICLE_RR = 2.5
REPEAT_OFFENDER_RR = 8.0
VALUE_ANOMALY_RR = 4.0
VALUE_ANOMALY_THRESHOLD = 0.35  # declared USD/kg below 35 % of the heading's median
NOISE_SIGMA = 0.5  # lognormal, mean 1: risk is never a function of the columns alone
PREVALENCE = 0.015  # mean latent risk over all declarations
RISK_CAP = 0.9

# ---- traffic and selection ------------------------------------------------------------------
CASE_LIKE_SHARE = 0.1
N_IMPORTERS = 25_000
N_OFFENDERS = 60
OFFENDER_TRAFFIC_SHARE = 0.03
N_DECLARANTS = 1_200
VALUE_ANOMALY_SHARE = 0.04
RANDOM_RATE = 0.025
OFFICER_RATE = 0.003
RULE_HEADINGS = ("8206", "9403", "7204")
EXPRESS_RULE_HEADINGS = ("8708", "8452", "9503")
RULE_TRUCK_KG = 8_000.0

LANE_DEST_ME = ("YE", "IQ", "SY", "LB", "JO")
LANE_DEST_TR = ("JO", "IQ", "SY", "LB", "LY")
LANE_DEST_CAR = ("HT", "DO", "JM", "TT", "BS")
BALKANS = ("AL", "XK", "RS", "BA", "MK", "ME")

PLANTED_PATTERNS: tuple[dict[str, Any], ...] = (
    {
        "name": "cover_hs_heading",
        "family": "goods_cover",
        "description": "Goods declared under the report's cover headings (8206 hand tools, 9403 furniture, "
                       "7204 scrap metal, 9405 lamps, 8452 sewing machine parts) carry concealed weapons or "
                       "parts more often; secondary cover 8205, 8708, 9503, 9506 less so.",
        "columns": ("hs_code", "goods_description"),
        "strength": COVER_PRIMARY_RR,
        "levels": {"primary cover heading": COVER_PRIMARY_RR, "secondary cover heading": COVER_SECONDARY_RR},
    },
    {
        "name": "transshipment_route",
        "family": "route",
        "description": "Trafficking lanes from the report: Asia-Pacific via AE (Jebel Ali) to YE/IQ/SY/LB/JO, "
                       "TR to JO/IQ/SY/LB/LY, North America to HT/DO/JM/TT/BS, Balkans to Western Europe; "
                       "weaker: departure region NAM/ECE/AP toward CAR/ME/CAM/WA/SA/NA.",
        "columns": ("departure_country", "transit_countries", "destination_country"),
        "strength": LANE_RR,
        "levels": {"lane": LANE_RR, "risky region pair": RISKY_REGION_PAIR_RR},
    },
    {
        "name": "conveyance_office",
        "family": "conveyance_office",
        "description": "Express courier and mail (parts and ammunition), vehicles at land borders (complete "
                       "firearms).",
        "columns": ("conveyance", "office_type"),
        "strength": EXPRESS_MAIL_RR,
        "levels": {"express courier or mail": EXPRESS_MAIL_RR, "vehicle at land border": LAND_BORDER_VEHICLE_RR},
    },
    {
        "name": "repeat_offender",
        "family": "trader_history",
        "description": f"{N_OFFENDERS} importers (about {OFFENDER_TRAFFIC_SHARE:.1%} of traffic) with a much "
                       "higher risk in both years, so their past hits predict future hits.",
        "columns": ("importer_id",),
        "strength": REPEAT_OFFENDER_RR,
        "levels": {"repeat-offender importer": REPEAT_OFFENDER_RR},
    },
    {
        "name": "value_anomaly",
        "family": "value_anomaly",
        "description": f"Customs value per kg below {VALUE_ANOMALY_THRESHOLD:.0%} of the HS heading's median "
                       "(under-declared value against the peer distribution).",
        "columns": ("customs_value", "gross_weight_kg", "hs_code"),
        "strength": VALUE_ANOMALY_RR,
        "levels": {"value per kg < 35 % of heading median": VALUE_ANOMALY_RR},
    },
)

OFFICE_TYPE_WEIGHTS = {"seaport": 0.28, "airport": 0.2, "land border": 0.22, "mail centre": 0.07, "inland": 0.18,
                       "other": 0.05}
CONVEYANCE_BY_OFFICE: dict[str, dict[str, float]] = {
    "seaport": {"vessel": 1.0},
    "airport": {"air": 0.65, "express courier": 0.35},
    "mail centre": {"mail": 0.7, "express courier": 0.3},
    "land border": {"vehicle": 0.88, "rail": 0.08, "pedestrian": 0.04},
    "inland": {"vehicle": 0.4, "rail": 0.15, "express courier": 0.2, "vessel": 0.15, "air": 0.1},
    "other": {"other": 0.6, "vehicle": 0.2, "vessel": 0.2},
}
WEIGHT_SCALE = {"mail": 0.01, "express courier": 0.03, "air": 0.2, "pedestrian": 0.01}


def _pick(rng: np.random.Generator, keys: list[str] | tuple[str, ...], weights: np.ndarray | list[float],
          size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), size=size, p=w / w.sum())]


def _partners(rng: np.random.Generator, n: int, avoid: list[np.ndarray], near: np.ndarray | None = None) -> np.ndarray:
    """Trade-partner countries (region by traffic weight, then country), avoiding given countries."""
    regions = list(PARTNER_REGION_WEIGHTS)
    rw = np.array([PARTNER_REGION_WEIGHTS[r] for r in regions])
    reg = rng.choice(len(regions), size=n, p=rw / rw.sum())
    if near is not None:  # land-border traffic comes mostly from the same region
        near_id = pd.Index(regions).get_indexer(pd.Index(near))
        same = (rng.random(n) < 0.7) & (near_id >= 0)
        reg = np.where(same, near_id, reg)
    out = np.empty(n, dtype=object)
    table = partner_table()
    for r in np.unique(reg):
        idx = np.flatnonzero(reg == r)
        codes, p = table[regions[r]]
        draw_partners(out, idx, codes, p, avoid, rng)
    return out


def _level(dep: object, transit: object, dest: object) -> int:
    """Route risk level of one route (see :func:`route_level`)."""
    regions = region_table()
    dep_r = regions.get(dep, "UNK") if isinstance(dep, str) else "UNK"
    dest_r = regions.get(dest, "UNK") if isinstance(dest, str) else "UNK"
    via_ae = isinstance(transit, str) and "AE" in transit.split("|")
    if ((dep_r == "AP" and via_ae and dest in LANE_DEST_ME) or (dep == "TR" and dest in LANE_DEST_TR)
            or (dep_r == "NAM" and dest in LANE_DEST_CAR) or (dep in BALKANS and dest_r == "WE")):
        return 2
    if dep_r in ("NAM", "ECE", "AP") and dest_r in ("CAR", "ME", "CAM", "WA", "SA", "NA"):
        return 1
    return 0


def route_level(dep: np.ndarray, transit: np.ndarray, dest: np.ndarray) -> np.ndarray:
    """0 = ordinary, 1 = risky region pair, 2 = trafficking lane (the planted route pattern)."""
    regions = region_table()
    dep_o = np.asarray(dep, dtype=object)
    dest_o = np.asarray(dest, dtype=object)
    dep_r = np.array([regions.get(x, "UNK") if isinstance(x, str) else "UNK" for x in dep_o], dtype=object)
    dest_r = np.array([regions.get(x, "UNK") if isinstance(x, str) else "UNK" for x in dest_o], dtype=object)
    via_ae = np.array([isinstance(t, str) and "AE" in t.split("|") for t in transit], dtype=bool)
    lane = ((dep_r == "AP") & via_ae & np.isin(dest_o, LANE_DEST_ME)) \
        | ((dep_o == "TR") & np.isin(dest_o, LANE_DEST_TR)) \
        | ((dep_r == "NAM") & np.isin(dest_o, LANE_DEST_CAR)) \
        | (np.isin(dep_o, BALKANS) & (dest_r == "WE"))
    pair = np.isin(dep_r, ["NAM", "ECE", "AP"]) & np.isin(dest_r, ["CAR", "ME", "CAM", "WA", "SA", "NA"])
    return np.where(lane, 2, np.where(pair, 1, 0)).astype(np.int8)


TWO_DIGITS = np.array([f"{i:02d}" for i in range(100)], dtype=object)


def _hs_codes(rng: np.random.Generator, heading: np.ndarray, office_country: np.ndarray) -> np.ndarray:
    """6 digits; 8 for European, Turkish and Mexican offices; 10 for the US."""
    n = len(heading)
    sub = np.array(["10", "20", "90", "00", "30"], dtype=object)[rng.integers(0, 5, size=n)]
    ext = TWO_DIGITS[rng.integers(0, 100, size=n)]
    ten = TWO_DIGITS[rng.integers(0, 100, size=n)]
    code = heading.astype(object) + sub
    us = office_country == "US"
    eight = np.isin(office_country, ["GB", "DE", "NL", "FR", "ES", "IT", "BE", "SE", "AT", "TR", "MX"]) | us
    code = np.where(eight, code + ext, code)
    return np.where(us, code + ten, code)


def _traffic(rng: np.random.Generator, n: int, cases: pd.DataFrame) -> dict[str, np.ndarray]:
    """Declared traffic: ordinary rows and case-like rows (copies of suitable seizure cases)."""
    n_like = int(round(CASE_LIKE_SHARE * n)) if len(cases) else 0
    ordinary = _ordinary_traffic(rng, n - n_like)
    if n_like == 0:
        return ordinary
    like = _case_like_traffic(rng, n_like, cases)
    return {k: np.concatenate([np.asarray(ordinary[k], dtype=object if k not in ("day", "source_case") else None),
                               np.asarray(like[k], dtype=object if k not in ("day", "source_case") else None)])
            for k in ordinary}


def _ordinary_offices(rng: np.random.Generator, n_ord: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Office country, office type (no land border on islands) and a conveyance fitting the office."""
    countries = list(OFFICE_COUNTRY_WEIGHTS)
    office_c = _pick(rng, countries, [OFFICE_COUNTRY_WEIGHTS[c] for c in countries], n_ord)
    types = list(OFFICE_TYPE_WEIGHTS)
    tw = np.array([OFFICE_TYPE_WEIGHTS[t] for t in types])
    office_t = _pick(rng, types, tw, n_ord)
    island = np.isin(office_c, list(ISLANDS))
    redo = island & (office_t == "land border")
    office_t[redo] = _pick(rng, types[:2], tw[:2], int(redo.sum()))
    conveyance = np.empty(n_ord, dtype=object)
    for t, probs in CONVEYANCE_BY_OFFICE.items():
        idx = np.flatnonzero(office_t == t)
        conveyance[idx] = _pick(rng, list(probs), list(probs.values()), len(idx))
    return office_c, office_t, conveyance


def _ordinary_routes(rng: np.random.Generator, office_c: np.ndarray, office_t: np.ndarray,
                     direction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Departure, destination and transit countries, with the planted lanes at realistic shares."""
    n_ord = len(office_c)
    regions = region_table()
    own_region = np.array([regions[c] for c in office_c], dtype=object)
    near = np.where(office_t == "land border", own_region, "UNK")
    partner = _partners(rng, n_ord, [office_c], near)
    other = _partners(rng, n_ord, [office_c, partner])
    dep = np.where(direction == "export", office_c, partner).astype(object)
    dest = np.where(direction == "import", office_c, np.where(direction == "export", partner, other)).astype(object)
    # North American exports to the Caribbean (a planted lane) at a realistic share
    us_car = (office_c == "US") & (direction == "export") & (rng.random(n_ord) < 0.05)
    dest[us_car] = _pick(rng, list(LANE_DEST_CAR), [4, 3, 3, 2, 1.5], int(us_car.sum()))
    # China -> (Jebel Ali) -> Middle East conflict destinations
    dep_region = np.array([regions[c] for c in dep], dtype=object)
    me = (direction == "import") & np.isin(office_c, LANE_DEST_ME) & (dep_region == "AP")
    dep = np.where(me & (rng.random(n_ord) < 0.6), "CN", dep)
    transit = np.full(n_ord, "", dtype=object)
    transit[me & (rng.random(n_ord) < 0.6)] = "AE"
    hub = (transit == "") & (direction != "transit") & (rng.random(n_ord) < 0.15)
    hubs = np.asarray(HUBS, dtype=object)[rng.integers(0, len(HUBS), size=n_ord)]
    hub &= (hubs != dep) & (hubs != dest)
    transit[hub] = hubs[hub]
    tr = direction == "transit"
    transit[tr] = office_c[tr]
    return dep, dest, transit


def _ordinary_traffic(rng: np.random.Generator, n_ord: int) -> dict[str, np.ndarray]:
    """Rows drawn from the base distribution: office, conveyance, direction, route, date, goods."""
    office_c, office_t, conveyance = _ordinary_offices(rng, n_ord)
    direction = _pick(rng, ["import", "export", "transit"], [0.82, 0.13, 0.05], n_ord)
    dep, dest, transit = _ordinary_routes(rng, office_c, office_t, direction)
    days = rng.integers(0, N_DAYS, size=n_ord)
    headings = list(TRAFFIC_WEIGHTS)
    heading = _pick(rng, headings, [TRAFFIC_WEIGHTS[h] for h in headings], n_ord)
    return dict({"day": days, "office_country": office_c, "office_type": office_t,
                 "direction": direction, "conveyance": conveyance, "departure_country": dep,
                 "destination_country": dest, "transit_countries": transit, "heading": heading,
                 "source_case": np.full(n_ord, -1)})


def _case_like_traffic(rng: np.random.Generator, n_like: int, cases: pd.DataFrame) -> dict[str, np.ndarray]:
    """The routes, offices and goods of seizure cases, at other dates."""
    pick = rng.integers(0, len(cases), size=n_like)
    c = cases.iloc[pick].reset_index(drop=True)
    event_day = (c["event_date"].to_numpy().astype("datetime64[D]") - START).astype(np.int64)
    day = np.clip(event_day + rng.integers(-120, 121, size=n_like), 0, N_DAYS - 1)
    dep = c["departure_country"].to_numpy(dtype=object)
    dest = c["destination_country"].to_numpy(dtype=object)
    missing = pd.isna(dep)
    dep[missing] = _partners(rng, int(missing.sum()), [dest[missing]])
    missing = pd.isna(dest)
    dest[missing] = _partners(rng, int(missing.sum()), [dep[missing]])
    return dict({"day": day, "office_country": c["reporting_country"].to_numpy(),
                 "office_type": c["detection_location"].to_numpy(), "direction": c["direction"].to_numpy(),
                 "conveyance": c["conveyance"].to_numpy(), "departure_country": dep,
                 "destination_country": dest, "transit_countries": c["transit_countries"].to_numpy(),
                 "heading": c["declared_hs_code"].to_numpy(), "source_case": pick})


def _suitable_cases(seizures: pd.DataFrame) -> pd.DataFrame:
    """Seizure cases that come from a goods declaration (declared goods known, cross-border)."""
    c = seizures.drop_duplicates("case_id")
    c = c[c["declared_hs_code"].notna() & (c["direction"] != "internal")
          & c["conveyance"].isin(["vessel", "express courier", "mail", "air", "vehicle", "rail", "other"])]
    c = c.assign(event_date=pd.to_datetime(c["event_date"]),
                 transit_countries=c["transit_countries"].fillna("").astype(object),
                 declared_hs_code=c["declared_hs_code"].astype(str).str[:4])
    return c[c["declared_hs_code"].isin(list(GOODS))].reset_index(drop=True)


def _link(rng: np.random.Generator, d: dict[str, np.ndarray], hits: np.ndarray, cases: pd.DataFrame) -> dict[int, int]:
    """hit row -> case row: same direction/conveyance/heading (office type for vehicles), route level."""
    # The key holds what carries risk (conveyance, heading; office type only for vehicles, where it
    # does) plus direction; date, office and route countries are taken over from the case.
    cloc = np.where(cases["conveyance"] == "vehicle", cases["detection_location"], "")
    ckey = list(zip(cases["direction"], cases["conveyance"], cloc, cases["declared_hs_code"], strict=True))
    keys: dict[tuple, list[int]] = {}
    for i in rng.permutation(len(cases)).tolist():
        keys.setdefault(ckey[i], []).append(i)
    cols = {k: d[k] for k in ("direction", "conveyance", "office_type", "heading",
                                                     "departure_country", "destination_country",
                                                     "transit_countries")}
    lvl = d["route_level"]
    c_dep = cases["departure_country"].to_numpy(dtype=object)
    c_dest = cases["destination_country"].to_numpy(dtype=object)
    c_tr = cases["transit_countries"].to_numpy(dtype=object)
    used: set[int] = set()
    link: dict[int, int] = {}
    loose: dict[tuple, list[int]] = {}
    for k, lst in keys.items():
        loose.setdefault(k[1:], []).extend(lst)
    # first pass: same direction; second pass: any direction (direction carries no planted risk,
    # the hit then takes the case's direction with its office and route)
    for strict in (True, False):
        for h in rng.permutation(hits).tolist():
            if h in link:
                continue
            conv = cols["conveyance"][h]
            k = (cols["direction"][h], conv, cols["office_type"][h] if conv == "vehicle" else "", cols["heading"][h])
            for ci in (keys.get(k, ()) if strict else loose.get(k[1:], ())):
                if ci in used:
                    continue
                dep = c_dep[ci] if isinstance(c_dep[ci], str) else cols["departure_country"][h]
                dest = c_dest[ci] if isinstance(c_dest[ci], str) else cols["destination_country"][h]
                tr = c_tr[ci] if c_tr[ci] else cols["transit_countries"][h]
                if dep != dest and _level(dep, tr, dest) == lvl[h]:
                    used.add(ci)
                    link[h] = ci
                    break
    return link


@dataclass
class _Goods:
    weight: np.ndarray
    value: np.ndarray
    value_anomaly: np.ndarray
    quantity: np.ndarray


@dataclass
class _Traders:
    importer: np.ndarray
    declarant: np.ndarray
    offender: np.ndarray


@dataclass
class _Selection:
    """Who was inspected in the past and why, and who was caught."""

    rule: np.ndarray
    random_sel: np.ndarray
    inspected: np.ndarray
    hit: np.ndarray


@dataclass
class _Placed:
    """Date, office and route of every row, after hits took over those of their seizure case."""

    day: np.ndarray
    lag_insp: np.ndarray
    office_c: np.ndarray
    otype: np.ndarray
    direction: np.ndarray
    dep: np.ndarray
    dest: np.ndarray
    transit: np.ndarray
    case_id: np.ndarray


def _goods(rng: np.random.Generator, d: dict[str, np.ndarray]) -> _Goods:
    """Weights, values (a planted share far below the heading's price) and quantities."""
    n = len(d["day"])
    heading = d["heading"]
    kg_med = np.array([GOODS[h][0] for h in heading])
    usd_kg = np.array([GOODS[h][1] for h in heading])
    kg_unit = np.array([GOODS[h][2] for h in heading])
    scale = np.array([WEIGHT_SCALE.get(c, 1.0) for c in d["conveyance"]])
    weight = np.maximum(0.1, np.round(kg_med * scale * rng.lognormal(0.0, 1.0, size=n), 1))
    ratio = rng.lognormal(0.0, 0.45, size=n)
    planted = rng.random(n) < VALUE_ANOMALY_SHARE
    ratio = np.where(planted, rng.uniform(0.06, 0.3, size=n), ratio)
    value = np.round(weight * usd_kg * ratio, 2)
    value_anomaly = (value / weight) < VALUE_ANOMALY_THRESHOLD * usd_kg
    quantity = np.maximum(1.0, np.round(weight / kg_unit * rng.lognormal(0.0, 0.3, size=n)))
    return _Goods(weight, value, value_anomaly, quantity)


def _traders(rng: np.random.Generator, n: int) -> _Traders:
    """Importers (Pareto sizes; a few repeat offenders with a fixed share of traffic) and declarants."""
    sizes = rng.pareto(1.1, size=N_IMPORTERS) + 1.0
    offenders = rng.choice(np.arange(200, N_IMPORTERS), size=N_OFFENDERS, replace=False)
    is_off = np.zeros(N_IMPORTERS, dtype=bool)
    is_off[offenders] = True
    sizes[is_off] = sizes[~is_off].sum() * OFFENDER_TRAFFIC_SHARE / (1 - OFFENDER_TRAFFIC_SHARE) / N_OFFENDERS
    importer = rng.choice(N_IMPORTERS, size=n, p=sizes / sizes.sum())
    dsizes = rng.pareto(1.0, size=N_DECLARANTS) + 1.0
    declarant = rng.choice(N_DECLARANTS, size=n, p=dsizes / dsizes.sum())
    return _Traders(importer, declarant, is_off[importer])


def _latent_risk(rng: np.random.Generator, d: dict[str, np.ndarray], goods: _Goods,
                 traders: _Traders) -> np.ndarray:
    """Base prevalence x the planted multipliers x noise (also sets ``d["route_level"]``)."""
    n = len(d["day"])
    heading, conv, otype = d["heading"], d["conveyance"], d["office_type"]
    lvl = route_level(d["departure_country"], d["transit_countries"], d["destination_country"])
    d["route_level"] = lvl
    rr = np.where(np.isin(heading, PRIMARY_COVER), COVER_PRIMARY_RR,
                  np.where(np.isin(heading, SECONDARY_COVER), COVER_SECONDARY_RR, 1.0))
    rr *= np.select([lvl == 2, lvl == 1], [LANE_RR, RISKY_REGION_PAIR_RR], 1.0)
    rr *= np.where(np.isin(conv, ["express courier", "mail"]), EXPRESS_MAIL_RR,
                   np.where((conv == "vehicle") & (otype == "land border"), LAND_BORDER_VEHICLE_RR, 1.0))
    rr *= np.where(traders.offender, REPEAT_OFFENDER_RR, 1.0)
    rr *= np.where(goods.value_anomaly, VALUE_ANOMALY_RR, 1.0)
    rr *= rng.lognormal(-NOISE_SIGMA ** 2 / 2, NOISE_SIGMA, size=n)
    return np.minimum(RISK_CAP, rr * PREVALENCE / rr.mean())


def _past_selection(rng: np.random.Generator, d: dict[str, np.ndarray], goods: _Goods, traders: _Traders,
                    carries: np.ndarray) -> _Selection:
    """Rules that see some patterns, a random stratum and officer picks; a hit is inspected and carrying."""
    n = len(d["day"])
    heading, conv, otype, lvl = d["heading"], d["conveyance"], d["office_type"], d["route_level"]
    rule = ((np.isin(heading, RULE_HEADINGS) & (conv == "vessel")) | (lvl == 2)
            | ((conv == "vehicle") & (otype == "land border") & (goods.weight >= RULE_TRUCK_KG))
            | ((conv == "express courier") & np.isin(heading, EXPRESS_RULE_HEADINGS)))
    random_sel = ~rule & (rng.random(n) < RANDOM_RATE)
    officer_p = OFFICER_RATE * np.where(traders.offender, 20.0, 1.0) * np.where(goods.value_anomaly, 4.0, 1.0)
    officer = ~rule & ~random_sel & (rng.random(n) < officer_p)
    inspected = rule | random_sel | officer
    return _Selection(rule, random_sel, inspected, inspected & carries)


def _place_linked_hits(rng: np.random.Generator, d: dict[str, np.ndarray], link: dict[int, int],
                       cases: pd.DataFrame) -> _Placed:
    """Linked hits take their case's date (inspected 0-3 days after it), office, direction and route."""
    n = len(d["day"])
    lag_insp = rng.integers(0, 4, size=n)
    p = _Placed(d["day"].copy(), lag_insp, d["office_country"].copy(), d["office_type"].copy(),
                d["direction"].copy(), d["departure_country"].copy(), d["destination_country"].copy(),
                d["transit_countries"].copy(), np.full(n, None, dtype=object))
    if not link:
        return p
    rows = np.fromiter(link.keys(), dtype=np.int64)
    crow = np.fromiter(link.values(), dtype=np.int64)
    c = cases.iloc[crow]
    event_day = (c["event_date"].to_numpy().astype("datetime64[D]") - START).astype(np.int64)
    before = np.minimum(rng.integers(0, 3, size=len(rows)), event_day)
    p.day[rows] = event_day - before
    p.lag_insp[rows] = before + rng.integers(0, 4 - before)
    p.office_c[rows] = c["reporting_country"].to_numpy()
    p.otype[rows] = c["detection_location"].to_numpy()
    p.direction[rows] = c["direction"].to_numpy()
    cdep, cdest, ctr = (c[k].to_numpy(dtype=object) for k in
                        ("departure_country", "destination_country", "transit_countries"))
    p.dep[rows] = np.where(pd.isna(cdep), p.dep[rows], cdep)
    p.dest[rows] = np.where(pd.isna(cdest), p.dest[rows], cdest)
    p.transit[rows] = np.where(ctr == "", p.transit[rows], ctr)
    p.case_id[rows] = c["case_id"].to_numpy()
    return p


def _descriptions(rng: np.random.Generator, heading: np.ndarray) -> np.ndarray:
    descriptions = np.empty(len(heading), dtype=object)
    for h in np.unique(heading):
        idx = np.flatnonzero(heading == h)
        opts = np.asarray(DESCRIPTIONS[h], dtype=object)
        descriptions[idx] = opts[rng.integers(0, len(opts), size=len(idx))]
    return descriptions


def _declaration_frame(rng: np.random.Generator, d: dict[str, np.ndarray], goods: _Goods, traders: _Traders,
                       p: _Placed) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The declarations in generation order, their dates, and the date order that numbers their ids."""
    n = len(d["day"])
    heading = d["heading"]
    origin = np.where(rng.random(n) < 0.8, p.dep, _partners(rng, n, [p.office_c]))
    origin = np.where(p.direction == "export", p.office_c, origin)
    big = np.isin(p.office_c, list(BIG_ADMINISTRATIONS))
    office_no = np.where(big, rng.integers(1, 4, size=n), 1)
    loc_code = np.array([LOCATION_CODES[t] for t in p.otype], dtype=object)
    office_id = p.office_c + "-" + loc_code + TWO_DIGITS[office_no]
    descriptions = _descriptions(rng, heading)
    decl_date = START + p.day.astype("timedelta64[D]")
    order = np.lexsort((rng.random(n), decl_date))
    ids = np.empty(n, dtype=object)
    ids[order] = np.char.add("D", np.char.zfill(np.arange(1, n + 1).astype(str), 7)).astype(object)
    decl = pd.DataFrame({
        "declaration_id": ids,
        "declaration_date": decl_date.astype("datetime64[ns]"),
        "direction": p.direction,
        "office_id": office_id,
        "office_type": p.otype,
        "importer_id": np.char.add("IMP", np.char.zfill(traders.importer.astype(str), 6)).astype(object),
        "declarant_id": np.char.add("DCL", np.char.zfill(traders.declarant.astype(str), 4)).astype(object),
        "origin_country": origin,
        "departure_country": p.dep,
        "transit_countries": p.transit,
        "destination_country": p.dest,
        "conveyance": d["conveyance"],
        "hs_code": _hs_codes(rng, heading, p.office_c),
        "goods_description": descriptions,
        "quantity": goods.quantity,
        "gross_weight_kg": goods.weight,
        "customs_value": goods.value,
        "currency": "USD",
    })
    return decl, decl_date, order


def _outcomes(rng: np.random.Generator, sel: _Selection, goods: _Goods, p: _Placed, ids: np.ndarray,
              decl_date: np.ndarray) -> pd.DataFrame:
    """One row per inspected declaration: source, selection probability, hit, case and revenue."""
    ins = np.flatnonzero(sel.inspected)
    source = np.where(sel.rule, "rule", np.where(sel.random_sel, "random", "officer"))[ins]
    prob = np.where(source == "rule", 1.0, np.where(source == "random", RANDOM_RATE, np.nan))
    value = goods.value
    revenue = np.where(sel.hit[ins],
                       np.where(rng.random(len(ins)) < 0.4, value[ins] * rng.uniform(0.05, 0.3, len(ins)), 0.0),
                       np.where(rng.random(len(ins)) < 0.03, value[ins] * rng.uniform(0.02, 0.2, len(ins)), 0.0))
    return pd.DataFrame({
        "declaration_id": ids[ins],
        "inspected_date": (decl_date[ins] + p.lag_insp[ins].astype("timedelta64[D]")).astype("datetime64[ns]"),
        "inspected": True,
        "selection_source": source,
        "selection_probability": prob,
        "hit": sel.hit[ins],
        "case_id": p.case_id[ins],
        "revenue": np.round(revenue, 2),
    })


def build_declarations(seizures: pd.DataFrame, n: int = 200_000,
                       seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Declarations, outcomes and the hidden latent risk (indexed like the declarations).

    The steps draw from one generator in a fixed order: reordering them changes every seed's data.
    """
    rng = np.random.default_rng([seed, 2])
    cases = _suitable_cases(seizures)
    d = _traffic(rng, n, cases)
    goods = _goods(rng, d)
    traders = _traders(rng, len(d["day"]))
    risk = _latent_risk(rng, d, goods, traders)
    carries = rng.random(len(risk)) < risk
    sel = _past_selection(rng, d, goods, traders, carries)
    link = _link(rng, d, np.flatnonzero(sel.hit), cases) if len(cases) else {}
    placed = _place_linked_hits(rng, d, link, cases)
    decl, decl_date, order = _declaration_frame(rng, d, goods, traders, placed)
    out = _outcomes(rng, sel, goods, placed, decl["declaration_id"].to_numpy(), decl_date)
    latent = pd.Series(risk, name="latent_risk")
    decl = decl.iloc[order].reset_index(drop=True)
    latent = latent.iloc[order].reset_index(drop=True)
    out = out.sort_values(["inspected_date", "declaration_id"], kind="stable").reset_index(drop=True)
    return decl[DECLARATION.columns], out[OUTCOME.columns], latent


def generate_declarations(seizures: pd.DataFrame, n: int = 200_000,
                          seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Declarations over 2022-2023 and the outcomes of the inspected ones (hits linked to cases)."""
    decl, out, _ = build_declarations(seizures, n, seed)
    return decl, out
