"""Calibration targets: the report's figures plus the documented choices where it is silent.

Everything here is deterministic (no randomness): the same tables hold for every seed, so exact
figures are exact for every seed. See PATTERNS.md for the reasoning behind each choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from synthetic.figures import YEARS, cases_by_country, load_figures, seizures_by_weapon_type, weapon_type_name

WEAPON_CATEGORIES = ("small arms", "light weapons", "other weapons")

# Report regions in a fixed order (WCA is not in Figure 2: no weapon seizures are placed there).
REGION_ORDER = ("NAM", "WE", "ME", "ECE", "CAR", "CIS", "SA", "AP", "WA", "ESA", "CAM", "NA", "WCA")

# Figure 2 leaves CAM and NA at "low numbers": our choice.
LOW_REGION_WEAPON_SEIZURES = {"CAM": {2022: 4, 2023: 3}, "NA": {2022: 4, 2023: 3}, "WCA": {2022: 0, 2023: 0}}

# Cases by reporting country. Figure 3 countries are overwritten from the YAML; the other counts
# are our choice (Kosovo, Oman, Argentina, Sweden, Croatia, Ukraine kept in the 2023 top 15).
REPORTERS: dict[int, dict[str, dict[str, int]]] = {
    2022: {
        "NAM": {"US": 2136, "MX": 96, "CA": 40},
        "ME": {"SA": 181, "AE": 108, "OM": 22, "JO": 12, "QA": 9, "KW": 7, "YE": 4, "BH": 3, "LB": 2, "IQ": 2},
        "WE": {"GB": 40, "SE": 8, "DE": 7, "ES": 5, "FR": 6, "NL": 5, "IT": 4, "BE": 3, "AT": 3, "IE": 2,
               "CH": 2},
        "ECE": {"XK": 25, "HR": 15, "AL": 15, "UA": 12, "TR": 8, "PL": 8, "RO": 6, "RS": 5, "BG": 5, "MK": 3,
                "HU": 3},
        "CAR": {"DO": 30, "JM": 14, "TT": 11, "BS": 8, "BB": 4, "HT": 3, "LC": 3, "KN": 2},
        "CIS": {"KZ": 12, "UZ": 8, "GE": 7, "AZ": 6, "BY": 4, "AM": 3},
        "SA": {"AR": 12, "BR": 6, "CO": 4, "PY": 3},
        "AP": {"AU": 6, "NZ": 4, "PH": 4, "JP": 3, "HK": 3, "TH": 2},
        "WA": {"NG": 4, "GH": 2, "TG": 2, "SN": 2},
        "ESA": {"KE": 2, "ZA": 2, "MU": 1},
        "CAM": {"GT": 2, "HN": 2, "PA": 1},
        "NA": {"MA": 2, "LY": 2, "TN": 1},
        "WCA": {"CM": 1, "GA": 1},
    },
    2023: {
        "NAM": {"US": 1282, "MX": 71, "CA": 30},
        "ME": {"SA": 247, "AE": 182, "OM": 22, "QA": 7, "KW": 4, "JO": 7, "YE": 3, "BH": 2, "LB": 2, "IQ": 1},
        "WE": {"GB": 446, "SE": 28, "DE": 15, "ES": 7, "FR": 8, "NL": 6, "IT": 5, "BE": 3, "AT": 3, "IE": 1,
               "CH": 1},
        "ECE": {"TR": 48, "XK": 38, "HR": 25, "UA": 22, "AL": 6, "PL": 4, "RO": 3, "RS": 2, "BG": 2},
        "CAR": {"DO": 16, "JM": 8, "TT": 7, "BS": 5, "BB": 4},
        "CIS": {"KZ": 9, "UZ": 6, "GE": 5, "AZ": 3, "AM": 2},
        "SA": {"AR": 18, "BR": 2, "CO": 2},
        "AP": {"AU": 6, "NZ": 4, "PH": 4, "JP": 3, "HK": 3},
        "WA": {"NG": 6, "GH": 3, "TG": 3, "SN": 2},
        "ESA": {"KE": 4, "ZA": 3, "MU": 2},
        "CAM": {"GT": 2, "HN": 1, "PA": 1},
        "NA": {"LY": 3, "MA": 2, "TN": 1},
        "WCA": {"CM": 1, "GA": 1},
    },
}

# Weapon types the report names without a seizure count (our choice; "shotguns and revolvers
# saw significant numbers, fewer in 2023"; blunt instruments declined; gas pistol 2022 absent).
UNLISTED_TYPE_SEIZURES = {
    "gas pistol": {2022: 6},
    "revolver": {2022: 75, 2023: 58},
    "shotgun": {2022: 48, 2023: 36},
    "hunting rifle": {2022: 14, 2023: 10},
    "blunt instrument": {2022: 30, 2023: 18},
    "other weapon": {2022: 12, 2023: 14},
    "machine gun": {2022: 3, 2023: 2},
    "light weapon": {2022: 2, 2023: 1},
}

# Figure 4 counts every seizure of a weapon type, Figure 2 only weapon seizures; the difference
# (Figure 4's types add up to more than Figure 2's weapons in 2023) is parts and accessories
# seizures that carry the weapon type they belong to (pistol slides, Kalashnikov components ...).
TYPED_PARTS_SHARE = {  # how the typed parts seizures of a year split over weapon types
    "semi-automatic pistol": 0.63, "assault rifle, carbine, military use": 0.31, "air gun": 0.03,
    "shotgun": 0.02, "submachine gun": 0.01,
}

SMALL_ARMS = ("semi-automatic pistol", "revolver", "assault rifle, carbine, military use", "shotgun",
              "hunting rifle", "submachine gun")
LIGHT_WEAPONS = ("machine gun", "light weapon")

# Non-weapon seizures per year (our choice; ammunition seizures fall by just over 40 %, parts fall).
AMMUNITION_SEIZURES = {2022: 2850, 2023: 1650}
EXPLOSIVES_SEIZURES = {2022: 71, 2023: 60}

# Pieces per weapon type and year (our choice, honouring Figure 9's changes and Figure 4's notes:
# air guns about fivefold (+428 %), shotguns +290 %, hunting rifles +200 %, assault rifles +44 %,
# imitation hand guns about 280 pieces in 2023). Parts take what is left of the report's total.
TYPE_PIECES = {
    "semi-automatic pistol": {2022: 2600, 2023: 1500},
    "electric weapon": {2022: 2500, 2023: 3500},
    "assault rifle, carbine, military use": {2022: 600, 2023: 864},
    "slash and stab weapon": {2022: 1500, 2023: 6000},
    "air gun": {2022: 900, 2023: 4752},
    "pepper / CS spray": {2022: 3000, 2023: 5000},
    "blank firing gun": {2022: 1400, 2023: 150},
    "submachine gun": {2022: 15, 2023: 25},
    "gas pistol": {2022: 10, 2023: 30},
    "imitation hand gun": {2022: 0, 2023: 280},
    "revolver": {2022: 110, 2023: 90},
    "shotgun": {2022: 100, 2023: 390},
    "hunting rifle": {2022: 40, 2023: 120},
    "blunt instrument": {2022: 300, 2023: 150},
    "other weapon": {2022: 150, 2023: 200},
    "machine gun": {2022: 3, 2023: 2},
    "light weapon": {2022: 2, 2023: 1},
}
EXPLOSIVES_PIECES = {2022: 3000, 2023: 2500}
PARTS_SHARE_2022 = 0.6  # parts pieces fell from 2022 to 2023
# Case-study seizures planted as the largest of their kind (pieces).
CASE_STUDY_PIECES = {
    ("ammunition", 2022): (173_240, 22_160),   # Jordan (TR -> Aqaba), Dominican Republic (-> Haiti)
    ("blank firing gun", 2022): (1_253,),       # Jordan, Blow TR 92
    ("parts", 2022): (17_700,),                 # Yemen, Kalashnikov components declared as 8206
}

# Weapon-type x region prior (shape only; IPF fits it to Figure 2 rows and Figure 4 columns).
_R = REGION_ORDER
TYPE_REGION_PRIOR: dict[str, dict[str, float]] = {
    "semi-automatic pistol": {"NAM": 10, "WE": 2, "ME": 2, "ECE": 3, "CAR": 4, "CIS": 2, "SA": 3, "AP": 1,
                              "WA": 2, "ESA": 2, "CAM": 3, "NA": 1},
    "revolver": {"NAM": 5, "CAR": 3, "SA": 3, "WA": 2, "ECE": 1, "ME": 1, "WE": 1, "CAM": 2, "ESA": 1},
    "assault rifle, carbine, military use": {"NAM": 5, "CAR": 3, "ME": 3, "ECE": 2, "CIS": 2, "SA": 2, "WA": 2,
                                             "ESA": 2, "CAM": 2, "NA": 2, "AP": 1},
    "shotgun": {"NAM": 3, "ECE": 3, "ME": 2, "WE": 2, "WA": 3, "CIS": 1, "SA": 1, "AP": 1, "ESA": 1},
    "hunting rifle": {"ECE": 3, "CIS": 3, "NAM": 2, "WE": 2, "ESA": 1, "SA": 1},
    "submachine gun": {"NAM": 2, "ECE": 2, "CAR": 2, "ME": 2, "SA": 1, "CIS": 1},
    "machine gun": {"ME": 3, "ECE": 2, "CIS": 2, "NA": 2, "WA": 2},
    "light weapon": {"ME": 3, "ECE": 1, "NA": 2, "WA": 2, "CIS": 1},
    "air gun": {"ME": 4, "ECE": 3, "WE": 3, "NA": 2, "NAM": 1, "AP": 2, "CIS": 2},
    "blank firing gun": {"ECE": 4, "ME": 3, "WE": 3, "NA": 2, "CIS": 1},
    "gas pistol": {"ECE": 3, "CIS": 3, "WE": 2, "ME": 2},
    "imitation hand gun": {"WE": 3, "ME": 4, "ECE": 2, "NA": 2},
    "electric weapon": {"ME": 8, "NAM": 2, "WE": 2, "CIS": 2, "AP": 2, "ECE": 1},
    "pepper / CS spray": {"WE": 4, "NAM": 2, "ME": 3, "ECE": 2, "CIS": 2, "AP": 2},
    "slash and stab weapon": {"WE": 10, "ME": 2, "ECE": 2, "NAM": 1, "AP": 2, "CIS": 1},
    "blunt instrument": {"WE": 3, "ME": 2, "AP": 2, "NAM": 1, "ECE": 1},
    "other weapon": {r: 1 for r in _R[:-1]},
}

# Non-weapon groups: (commodity_category, weapon_type or None)
NONWEAPON_GROUPS: tuple[tuple[str, str | None], ...] = (
    ("ammunition", None),
    ("parts and accessories", None),
    ("parts and accessories", "semi-automatic pistol"),
    ("parts and accessories", "assault rifle, carbine, military use"),
    ("parts and accessories", "air gun"),
    ("parts and accessories", "shotgun"),
    ("parts and accessories", "submachine gun"),
    ("explosives and precursors", None),
)
NONWEAPON_REGION_PRIOR = {
    "ammunition": {"NAM": 10, "CAR": 5, "ME": 3, "SA": 3, "CAM": 3, "WE": 1, "ECE": 2, "CIS": 2, "AP": 1, "WA": 2,
                   "ESA": 2, "NA": 2, "WCA": 2},
    "parts and accessories": {"NAM": 10, "WE": 3, "ME": 3, "ECE": 2, "AP": 2, "CAR": 2, "CIS": 1, "SA": 1,
                              "WA": 1, "ESA": 1, "CAM": 1, "NA": 1, "WCA": 1},
    "explosives and precursors": {"WA": 6, "NA": 4, "ME": 3, "CAM": 3, "NAM": 2, "SA": 2, "ECE": 2, "ESA": 3,
                                  "WCA": 4, "CAR": 1, "CIS": 1, "AP": 1, "WE": 1},
}

# Direction shares by reporting country / region (our choice, solved so the Figure 6 route
# quotas are reachable: see PATTERNS.md).
DIRECTION_SHARES: dict[str, dict[str, float]] = {
    "US": {"import": 0.68, "export": 0.23, "internal": 0.09, "transit": 0.0},
    "MX": {"import": 0.88, "export": 0.04, "internal": 0.08, "transit": 0.0},
    "CA": {"import": 0.88, "export": 0.06, "internal": 0.06, "transit": 0.0},
    "CAR": {"import": 0.55, "export": 0.30, "internal": 0.10, "transit": 0.05},
    "ME": {"import": 0.62, "export": 0.08, "internal": 0.08, "transit": 0.22},
    "WE": {"import": 0.55, "export": 0.18, "internal": 0.12, "transit": 0.15},
    "ECE": {"import": 0.45, "export": 0.30, "internal": 0.10, "transit": 0.15},
    "CIS": {"import": 0.50, "export": 0.25, "internal": 0.15, "transit": 0.10},
    "*": {"import": 0.55, "export": 0.20, "internal": 0.15, "transit": 0.10},
}

# Figure 13 locations (cases, both years). Land border/other/inland split is our choice
# (land border must be the most frequent).
LOCATION_QUOTAS = {"airport": 760, "mail centre": 318, "seaport": 274, "land border": 2650, "other": 430}
AIRPORT_DIRECTION = {"export": 105, "import": 608}

# Figure 12 (non-US cases): risk profiling 512 (both years; the report notes a shift to 2023),
# random selection at import 100 in 2023 ("a decrease from the previous year": 130 in 2022 is ours).
RISK_PROFILING_SPLIT = {2022: 200, 2023: 312}
RANDOM_IMPORT = {2022: 130, 2023: 100}
RANDOM_OTHER = 40  # random selection outside imports, both years (transit/internal "random checks")

# Figure 11 (imitation hand guns, 2023): (direction, location, conveyance) per case.
IMITATION_CASES_2023 = (
    [("import", "airport", "air")] * 20 + [("export", "airport", "air")] + [("import", "land border", "vehicle")] * 2
    + [("import", "mail centre", "mail")] + [("import", "other", "other")]
)


# spell weapon types exactly as the contract does (robust to a change of case there)
UNLISTED_TYPE_SEIZURES = {weapon_type_name(k): v for k, v in UNLISTED_TYPE_SEIZURES.items()}
TYPED_PARTS_SHARE = {weapon_type_name(k): v for k, v in TYPED_PARTS_SHARE.items()}
TYPE_PIECES = {weapon_type_name(k): v for k, v in TYPE_PIECES.items()}
TYPE_REGION_PRIOR = {weapon_type_name(k): v for k, v in TYPE_REGION_PRIOR.items()}
CASE_STUDY_PIECES = {(weapon_type_name(k) if k in ("blank firing gun",) else k, y): v
                     for (k, y), v in CASE_STUDY_PIECES.items()}


@dataclass(frozen=True)
class YearTargets:
    year: int
    cases: int
    seizures: int
    reporters: dict[str, dict[str, int]]          # region -> country -> cases
    weapon_by_region: dict[str, int]              # Figure 2 (+ CAM/NA choice)
    weapon_type_all: dict[str, int]               # Figure 4 (+ unlisted types): all seizures of a type
    weapon_type_weapons: dict[str, int]           # of which weapon-category seizures
    typed_parts: dict[str, int]                   # of which parts & accessories seizures
    ammunition: int
    untyped_parts: int
    explosives: int
    ammunition_pieces: int


def category_of(weapon_type: str) -> str:
    if weapon_type in SMALL_ARMS:
        return "small arms"
    if weapon_type in LIGHT_WEAPONS:
        return "light weapons"
    return "other weapons"


@cache
def year_targets() -> dict[int, YearTargets]:
    fig = load_figures()
    by_country = cases_by_country(fig)
    by_type = seizures_by_weapon_type(fig)
    out: dict[int, YearTargets] = {}
    for year in YEARS:
        reporters = {r: dict(c) for r, c in REPORTERS[year].items()}
        for code, counts in by_country.items():
            if year in counts:
                for region_countries in reporters.values():
                    if code in region_countries:
                        region_countries[code] = counts[year]
        cases = int(fig["totals"]["cases"][year])
        got = sum(sum(c.values()) for c in reporters.values())
        if got != cases:
            raise ValueError(f"{year}: reporter table holds {got} cases, the report {cases}")
        weapon_by_region = {r: int(v[year]) for r, v in fig["figure_2_weapon_seizures_by_region"].items()}
        for r, v in LOW_REGION_WEAPON_SEIZURES.items():
            weapon_by_region[r] = v[year]
        type_all = {t: v.get(year, 0) for t, v in by_type.items()}
        for t, v in UNLISTED_TYPE_SEIZURES.items():
            type_all.setdefault(t, 0)
            if year in v and type_all[t] == 0:
                type_all[t] = v[year]
        n_weapons = sum(weapon_by_region.values())
        n_typed_parts = sum(type_all.values()) - n_weapons
        typed_parts = dict(zip(TYPED_PARTS_SHARE,
                               largest_remainder_int(list(TYPED_PARTS_SHARE.values()), n_typed_parts), strict=True))
        weapons_of_type = {t: n - typed_parts.get(t, 0) for t, n in type_all.items()}
        seizures = int(fig["totals"]["seizures"][year])
        parts_total = seizures - n_weapons - AMMUNITION_SEIZURES[year] - EXPLOSIVES_SEIZURES[year]
        out[year] = YearTargets(
            year=year, cases=cases, seizures=seizures, reporters=reporters,
            weapon_by_region=weapon_by_region, weapon_type_all=type_all, weapon_type_weapons=weapons_of_type,
            typed_parts=typed_parts, ammunition=AMMUNITION_SEIZURES[year],
            untyped_parts=parts_total - n_typed_parts, explosives=EXPLOSIVES_SEIZURES[year],
            ammunition_pieces=int(fig["figure_5_ammunition"]["quantity"][year]),
        )
    return out


def largest_remainder_int(weights: list[float], total: int) -> list[int]:
    from synthetic._alloc import largest_remainder

    return [int(x) for x in largest_remainder(np.asarray(weights), total)]


def parts_pieces() -> dict[int, int]:
    """Pieces of parts and accessories per year: the report's total minus everything else."""
    fig = load_figures()
    total = int(fig["totals"]["items_interdicted_both_years"])
    ammo = sum(int(v) for v in fig["figure_5_ammunition"]["quantity"].values())
    other = sum(sum(v.values()) for v in TYPE_PIECES.values()) + sum(EXPLOSIVES_PIECES.values())
    parts = total - ammo - other
    p22 = round(parts * PARTS_SHARE_2022)
    return {2022: p22, 2023: parts - p22}


def route_quotas(n_cases: int) -> tuple[dict[str, int], dict[str, int]]:
    """Figure 6 as exact case counts: departure and destination region quotas ('OTHER' = the rest)."""
    fig = load_figures()["figure_6_routes_share_of_cases"]
    dep = {"UNK": round(fig["departure_unknown"] * n_cases)}
    dep.update({r: round(s * n_cases) for r, s in fig["departure"].items()})
    dep["OTHER"] = n_cases - sum(dep.values())
    dest = {"UNK": round(fig["destination_unknown"] * n_cases)}
    dest.update({r: round(s * n_cases) for r, s in fig["destination"].items()})
    dest["OTHER"] = n_cases - sum(dest.values())
    return dep, dest
