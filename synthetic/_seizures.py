"""Seizures for 2022 and 2023, calibrated to the WCO Illicit Trade Report 2023 (weapons section).

Exact figures are met by construction (deterministic quota tables, see ``_calibration``); the seed
only decides which case gets which attribute, so every seed meets every figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import SEIZURE, WEAPON_TYPES
from synthetic._alloc import assign_quotas, cap_rows, integer_table, largest_remainder, split_total
from synthetic._calibration import (
    AIRPORT_DIRECTION,
    CASE_STUDY_PIECES,
    DIRECTION_SHARES,
    EXPLOSIVES_PIECES,
    IMITATION_CASES_2023,
    LOCATION_QUOTAS,
    NONWEAPON_GROUPS,
    NONWEAPON_REGION_PRIOR,
    RANDOM_IMPORT,
    RANDOM_OTHER,
    REGION_ORDER,
    RISK_PROFILING_SPLIT,
    TYPE_PIECES,
    TYPE_REGION_PRIOR,
    category_of,
    parts_pieces,
    route_quotas,
    year_targets,
)
from synthetic._goods import (
    CONCEALMENT,
    DECLARED_FOR,
    DECLARED_TILT,
    DESCRIPTIONS,
    HUBS,
    PARTNER_REGION_WEIGHTS,
    draw_partners,
    partner_table,
    region_table,
)
from synthetic.figures import YEARS

WEAPON_GROUPS: tuple[tuple[str, str | None], ...] = tuple((category_of(t), t) for t in WEAPON_TYPES)
GROUPS = WEAPON_GROUPS + NONWEAPON_GROUPS
GROUP_CATEGORY = np.array([g[0] for g in GROUPS], dtype=object)
GROUP_TYPE = np.array([g[1] for g in GROUPS], dtype=object)
IS_WEAPON_GROUP = np.array([i < len(WEAPON_GROUPS) for i in range(len(GROUPS))])

DIRECTIONS = ("import", "export", "internal", "transit")
LOCATIONS = ("airport", "airport", "airport", "mail centre", "seaport", "other", "land border", "inland")
LOC_LABELS = ("airport-export", "airport-import", "airport-other", "mail centre", "seaport", "other",
              "land border", "inland")
CONVEYANCE_BY_LOCATION: dict[str, dict[str, float]] = {
    "airport": {"air": 0.72, "express courier": 0.28},
    "mail centre": {"mail": 0.8, "express courier": 0.2},
    "seaport": {"vessel": 1.0},
    "land border": {"vehicle": 0.86, "pedestrian": 0.08, "rail": 0.04, "other": 0.02},
    "inland": {"vehicle": 0.45, "express courier": 0.25, "mail": 0.1, "vessel": 0.05, "rail": 0.05, "other": 0.1},
    "other": {"other": 0.35, "express courier": 0.3, "vessel": 0.2, "vehicle": 0.15},
}
DECLARED_PROB = {"vessel": 0.9, "express courier": 0.95, "mail": 0.85, "air": 0.35, "vehicle": 0.35, "rail": 0.5,
                 "other": 0.15, "pedestrian": 0.0}
OTHER_METHODS = ("routine control", "x-ray / scanner", "intelligence", "detector dog", "other")
OTHER_METHOD_P = {"import": (0.62, 0.14, 0.12, 0.05, 0.07), "export": (0.55, 0.2, 0.12, 0.05, 0.08),
                  "internal": (0.45, 0.05, 0.4, 0.04, 0.06), "transit": (0.6, 0.2, 0.1, 0.05, 0.05)}
ADJACENT = {frozenset(p) for p in [("NAM", "CAM"), ("ECE", "WE"), ("ECE", "CIS"), ("ECE", "ME"), ("ME", "NA"),
                                   ("WA", "WCA"), ("WA", "NA"), ("ESA", "WCA"), ("CIS", "AP"), ("CAM", "SA"),
                                   ("ME", "CIS"), ("ME", "ESA")]}


# --------------------------------------------------------------------------------------------
# composition: which seizures (commodities) each case holds
# --------------------------------------------------------------------------------------------


def _fill_cases(rng: np.random.Generator, n_cases: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread commodity counts over cases: each case holds at least one seizure, no commodity twice.

    Commodities are placed largest first; each picks distinct cases by a heavy-tailed case
    propensity (some cases hold a pistol, its ammunition and parts), taking just enough still-empty
    cases that every case ends with at least one seizure.
    """
    if counts.sum() < n_cases or counts.max() > n_cases:
        raise ValueError("no feasible case composition")
    propensity = np.log(rng.gamma(0.6, size=n_cases))
    size = np.zeros(n_cases, dtype=np.int64)
    order = [int(g) for g in np.argsort(-counts, kind="stable") if counts[g] > 0]
    left = int(counts.sum())
    case_idx, group_idx = [], []
    for g in order:
        c = int(counts[g])
        left -= c
        empty = np.flatnonzero(size == 0)
        must = max(0, len(empty) - left)
        forced = empty[rng.permutation(len(empty))[:must]]
        score = propensity + rng.gumbel(size=n_cases)
        score[forced] = np.inf
        pick = np.argsort(-score, kind="stable")[:c]
        size[pick] += 1
        case_idx.append(pick)
        group_idx.append(np.full(c, g))
    return np.concatenate(case_idx), np.concatenate(group_idx)


def _compose(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cases (year, reporting country, region) and their seizures (case, commodity group)."""
    targets = year_targets()
    case_parts, seizure_parts = [], []
    n_done = 0
    for year in YEARS:
        t = targets[year]
        regions = [r for r in REGION_ORDER if r in t.reporters]
        n_cases = np.array([sum(t.reporters[r].values()) for r in regions])
        n_weap = np.array([t.weapon_by_region.get(r, 0) for r in regions])
        wtypes = [w for w in WEAPON_TYPES if t.weapon_type_weapons.get(w, 0) > 0]
        prior = np.array([[TYPE_REGION_PRIOR[w].get(r, 0.05) for w in wtypes] for r in regions])
        wtab = integer_table(prior, n_weap, np.array([t.weapon_type_weapons[w] for w in wtypes]))
        wtab = cap_rows(wtab, n_cases)
        n_non = t.seizures - int(n_weap.sum())
        base = np.maximum(n_cases - n_weap, 0)
        n_non_r = base + largest_remainder(n_cases, n_non - int(base.sum()))
        ncols = np.array([t.ammunition, t.untyped_parts] + [t.typed_parts.get(str(g[1]), 0)
                                                           for g in NONWEAPON_GROUPS[2:-1]] + [t.explosives])
        nprior = np.array([[NONWEAPON_REGION_PRIOR[g[0]].get(r, 0.1) * (0.3 if g[1] else 1.0)
                            for g in NONWEAPON_GROUPS] for r in regions])
        ntab = cap_rows(integer_table(nprior, n_non_r, ncols), n_cases)
        for i, r in enumerate(regions):
            counts = np.zeros(len(GROUPS), dtype=np.int64)
            for j, w in enumerate(wtypes):
                counts[WEAPON_TYPES.index(w)] = wtab[i, j]
            counts[len(WEAPON_GROUPS):] = ntab[i]
            reps = np.repeat(list(t.reporters[r]), list(t.reporters[r].values()))
            reps = reps[rng.permutation(len(reps))]
            c_idx, g_idx = _fill_cases(rng, len(reps), counts)
            case_parts.append(pd.DataFrame({"year": year, "reporting_country": reps, "region": r}))
            seizure_parts.append(pd.DataFrame({"case": c_idx + n_done, "group": g_idx}))
            n_done += len(reps)
    return pd.concat(case_parts, ignore_index=True), pd.concat(seizure_parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# case attributes
# --------------------------------------------------------------------------------------------


def _directions(rng: np.random.Generator, cases: pd.DataFrame, fixed: np.ndarray) -> np.ndarray:
    out = np.where(fixed != "", fixed, "").astype(object)
    key = np.where(cases["reporting_country"].isin(["US", "MX", "CA"]), cases["reporting_country"],
                   np.where(cases["region"].isin(list(DIRECTION_SHARES)), cases["region"], "*"))
    for k in np.unique(key):
        idx = np.flatnonzero((key == k) & (fixed == ""))
        shares = DIRECTION_SHARES[k]
        counts = largest_remainder([shares[d] for d in DIRECTIONS], len(idx))
        labels = np.repeat(DIRECTIONS, counts)
        out[idx[rng.permutation(len(idx))]] = labels
    return out


def _route_regions(rng: np.random.Generator, cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Departure and destination regions meeting Figure 6's quotas exactly ('UNK' = unknown)."""
    n = len(cases)
    dep_q, dest_q = route_quotas(n)
    rep = cases["region"].to_numpy()
    direction = cases["direction"].to_numpy()
    own_dep = np.isin(direction, ["export", "internal"])
    own_dest = np.isin(direction, ["import", "internal"])
    us_import = (cases["reporting_country"].to_numpy() == "US") & (direction == "import")

    # departure
    labels: tuple[str, ...] = ("NAM", "ECE", "AP", "OTHER", "UNK")
    free = ~own_dep
    w = np.ones((int(free.sum()), len(labels)))
    r = rep[free]
    w[:, 0] = np.select([r == "NAM", np.isin(r, ["CAR", "CAM"]), r == "SA"], [1.5, 3.0, 1.0], 0.25)
    w[:, 1] = np.select([r == "WE", r == "ME", r == "ECE", r == "CIS"], [2.0, 1.5, 1.0, 1.5], 0.3)
    w[:, 1] = np.where(r == "NAM", 0.05, w[:, 1])
    w[:, 2] = np.select([r == "ME", r == "NAM", np.isin(r, ["WE", "AP", "ESA"])], [2.0, 0.6, 1.0], 0.5)
    w[:, 3] = np.where(r == "NAM", 0.4, 1.2)
    w[:, 4] = np.where(us_import[free], 2.5, 1.0)
    q = _quotas_left(dep_q, rep[own_dep], labels)
    dep = np.where(own_dep, rep, "").astype(object)
    dep[free] = np.array(labels, dtype=object)[assign_quotas(rng, w, q)]
    # destination
    labels = ("CAR", "NAM", "OTHER", "UNK")
    free = ~own_dest
    w = np.ones((int(free.sum()), len(labels)))
    r = rep[free]
    w[:, 0] = np.select([r == "NAM", r == "CAR"], [8.0, 4.0], 0.3)
    w[:, 1] = np.select([r == "NAM", np.isin(r, ["CAM", "CAR"])], [0.6, 2.0], 0.5)
    w[:, 2] = np.where(r == "NAM", 0.4, 2.0)
    q = _quotas_left(dest_q, rep[own_dest], labels)
    dest = np.where(own_dest, rep, "").astype(object)
    dest[free] = np.array(labels, dtype=object)[assign_quotas(rng, w, q)]
    _resolve_other_regions(rng, dep, ("NAM", "ECE", "AP"), rep)
    _resolve_other_regions(rng, dest, ("NAM", "CAR"), rep)
    return dep, dest


def _quotas_left(q: dict[str, int], fixed_regions: np.ndarray, labels: tuple[str, ...]) -> list[int]:
    """Each label's quota minus the cases whose region is already fixed by their direction."""
    out = []
    for lab in labels:
        if lab == "OTHER":
            used = np.isin(fixed_regions, [x for x in labels if x not in ("OTHER", "UNK")])
            fixed = int((~used).sum())
        elif lab == "UNK":
            fixed = 0
        else:
            fixed = int((fixed_regions == lab).sum())
        left = q[lab] - fixed
        if left < 0:
            raise ValueError(f"route quota {lab}: {fixed} fixed cases exceed {q[lab]}")
        out.append(left)
    return out


def _resolve_other_regions(rng: np.random.Generator, arr: np.ndarray, named: tuple[str, ...],
                           rep: np.ndarray) -> None:
    """'OTHER' becomes a concrete region outside the named ones, near the reporter when possible."""
    idx = np.flatnonzero(arr == "OTHER")
    pool = [x for x in PARTNER_REGION_WEIGHTS if x not in named]
    base = np.array([PARTNER_REGION_WEIGHTS[x] for x in pool])
    for i in idx:
        wr = base * np.array([4.0 if x == rep[i] else (2.0 if frozenset((x, rep[i])) in ADJACENT else 1.0)
                              for x in pool])
        arr[i] = pool[rng.choice(len(pool), p=wr / wr.sum())]


def _locations(rng: np.random.Generator, cases: pd.DataFrame, fixed: np.ndarray) -> np.ndarray:
    n_fixed = {lab: 0 for lab in LOC_LABELS}
    fixed_dir = cases["direction"].to_numpy()
    for loc, d in zip(fixed[fixed != ""], fixed_dir[fixed != ""], strict=True):
        lab = f"airport-{d if d in ('export', 'import') else 'other'}" if loc == "airport" else loc
        n_fixed[lab] += 1
    free = fixed == ""
    c = cases[free]
    n = len(c)
    airport_other = LOCATION_QUOTAS["airport"] - sum(AIRPORT_DIRECTION.values())
    quota = {"airport-export": AIRPORT_DIRECTION["export"], "airport-import": AIRPORT_DIRECTION["import"],
             "airport-other": airport_other, **{k: v for k, v in LOCATION_QUOTAS.items() if k != "airport"}}
    counts = [quota.get(lab, 0) - n_fixed[lab] for lab in LOC_LABELS[:-1]]
    counts.append(n - sum(counts))
    rep = c["region"].to_numpy()
    d = c["direction"].to_numpy()
    dep_r, dest_r = c["dep_region"].to_numpy(), c["dest_region"].to_numpy()
    us = c["reporting_country"].to_numpy() == "US"
    island = c["reporting_country"].isin(["JM", "TT", "BS", "BB", "LC", "KN", "AU", "NZ", "JP", "PH", "BH", "MU",
                                          "HK"]).to_numpy()
    parts_ammo = c["has_parts"].to_numpy() | c["has_ammo"].to_numpy()
    big = c["has_explosive"].to_numpy() | c["has_rifle"].to_numpy()

    def near(a: np.ndarray) -> np.ndarray:
        return (a == rep) | (a == "UNK") | np.array([frozenset((x, y)) in ADJACENT for x, y in zip(a, rep, strict=True)])

    land_ok = (d == "internal") | ((d == "import") & near(dep_r)) | ((d == "export") & near(dest_r)) | (
        (d == "transit") & near(dep_r) & near(dest_r))
    land_ok &= ~island
    region_air = np.select([rep == "ME", rep == "WE", rep == "NAM"], [3.0, 2.0, 0.8], 1.0)
    w = np.zeros((n, len(LOC_LABELS)))
    w[:, 0] = np.where(d == "export", region_air, 0)
    w[:, 1] = np.where(d == "import", region_air * np.where(parts_ammo, 1.5, 1.0), 0)
    w[:, 2] = np.where(np.isin(d, ["transit", "internal"]), region_air, 0)
    w[:, 3] = np.where(parts_ammo, 3.0, 1.0) * np.where(rep == "WE", 2.0, 1.0) * np.where(d == "internal", 0.2, 1.0)
    w[:, 4] = (np.select([np.isin(rep, ["ME", "CAR"]), np.isin(rep, ["WE", "AP"])], [3.0, 2.0], 1.0)
               * np.where(us, 0.5, 1.0) * np.where(big, 2.0, 1.0) * np.where(d == "internal", 0.05, 1.0))
    w[:, 5] = np.where(us & (d == "export"), 3.0, 1.0)
    w[:, 6] = np.where(land_ok, 1.0, 0.0)
    w[:, 7] = 1.0
    labels = assign_quotas(rng, w, counts)
    out = fixed.astype(object).copy()
    out[free] = np.array(LOCATIONS, dtype=object)[labels]
    return out


def _choose(rng: np.random.Generator, probs: dict[str, float], size: int) -> np.ndarray:
    keys = list(probs)
    p = np.array([probs[k] for k in keys])
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]


def _conveyances(rng: np.random.Generator, cases: pd.DataFrame, fixed: np.ndarray) -> np.ndarray:
    out = fixed.astype(object).copy()
    loc = cases["detection_location"].to_numpy()
    for place, probs in CONVEYANCE_BY_LOCATION.items():
        idx = np.flatnonzero((loc == place) & (fixed == ""))
        if place == "airport":  # parts and ammunition travel more by express courier
            pa = (cases["has_parts"] | cases["has_ammo"]).to_numpy()[idx]
            express = rng.random(len(idx)) < np.where(pa, 0.4, 0.15)
            out[idx] = np.where(express, "express courier", "air")
        else:
            out[idx] = _choose(rng, probs, len(idx))
    return out


def _methods(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    n = len(cases)
    out = np.full(n, "", dtype=object)
    us = cases["reporting_country"].to_numpy() == "US"
    out[us] = "risk profiling"  # Figure 12 note: all US seizures were made by risk profiling
    year = cases["year"].to_numpy()
    d = cases["direction"].to_numpy()
    for y in YEARS:
        idx = np.flatnonzero(~us & (year == y))
        labels = ("risk profiling", "random-import", "random-other", "rest")
        w = np.ones((len(idx), len(labels)))
        w[:, 0] = np.where(d[idx] == "import", 2.5, 1.0)
        w[:, 1] = np.where(d[idx] == "import", 1.0, 0.0)
        w[:, 2] = np.where(d[idx] == "import", 0.0, np.where(np.isin(d[idx], ["transit", "internal"]), 2.0, 1.0))
        n_other = RANDOM_OTHER // 2 + (RANDOM_OTHER % 2 if y == YEARS[-1] else 0)
        counts = [RISK_PROFILING_SPLIT[y], RANDOM_IMPORT[y], n_other]
        counts.append(len(idx) - sum(counts))
        lab = assign_quotas(rng, w, counts)
        out[idx[lab == 0]] = "risk profiling"
        out[idx[(lab == 1) | (lab == 2)]] = "random selection"
        rest = idx[lab == 3]
        for direction, p in OTHER_METHOD_P.items():
            sub = rest[d[rest] == direction]
            out[sub] = np.array(OTHER_METHODS, dtype=object)[rng.choice(len(OTHER_METHODS), size=len(sub), p=p)]
    return out


def _countries(rng: np.random.Generator, regions: np.ndarray, avoid: list[np.ndarray]) -> np.ndarray:
    """A country inside each region (None for 'UNK'), different from the ``avoid`` countries."""
    table = partner_table()
    out = np.full(len(regions), None, dtype=object)
    for reg in np.unique(regions[regions != "UNK"]):
        idx = np.flatnonzero(regions == reg)
        codes, p = table[str(reg)]
        draw_partners(out, idx, codes, p, avoid, rng)
    return out


def _routes(rng: np.random.Generator, cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rep = cases["reporting_country"].to_numpy().astype(object)
    d = cases["direction"].to_numpy()
    dep_r, dest_r = cases["dep_region"].to_numpy(), cases["dest_region"].to_numpy()
    none = np.full(len(d), None, dtype=object)
    dep = np.where(np.isin(d, ["export", "internal"]), rep, none)
    dest = np.where(np.isin(d, ["import", "internal"]), rep, none)
    free = dep == None  # noqa: E711 - elementwise on object arrays
    dep[free] = _countries(rng, dep_r[free], [rep[free]])
    free = dest == None  # noqa: E711
    dest[free] = _countries(rng, dest_r[free], [rep[free], dep[free]])
    # the report's lanes: China -> (Jebel Ali) -> Yemen/Middle East; Türkiye -> Jordan; Balkans -> UK;
    # Dominican Republic -> Haiti
    me_imp = (d == "import") & (cases["region"].to_numpy() == "ME")
    dep = np.where(me_imp & (dep_r == "AP") & (rng.random(len(d)) < 0.7), "CN", dep)
    dep = np.where(me_imp & (dep_r == "ECE") & (rep != "TR") & (rng.random(len(d)) < 0.8), "TR", dep)
    dep = np.where((rep == "GB") & (dep_r == "ECE") & (rng.random(len(d)) < 0.5), "AL", dep)
    dest = np.where((rep == "DO") & (d == "export") & (dest_r == "CAR"), "HT", dest)
    transit = np.full(len(d), "", dtype=object)
    cn_me = me_imp & (dep == "CN") & (rep != "AE") & (rng.random(len(d)) < 0.6)
    transit[cn_me] = "AE"
    known = (dep != None) & (dest != None) & (dep_r != dest_r) & (transit == "")  # noqa: E711
    hub = known & (rng.random(len(d)) < 0.15)
    hubs = np.array(HUBS, dtype=object)[rng.integers(0, len(HUBS), size=len(d))]
    hub &= (hubs != dep) & (hubs != dest) & (hubs != rep)
    transit[hub] = hubs[hub]
    is_transit = d == "transit"
    transit[is_transit] = np.where(transit[is_transit] == "", rep[is_transit],
                                   transit[is_transit] + "|" + rep[is_transit])
    return dep, dest, transit


def _declared(rng: np.random.Generator, cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(cases)
    conv = cases["conveyance"].to_numpy()
    p = np.array([DECLARED_PROB[c] for c in conv]) * (cases["direction"].to_numpy() != "internal")
    declared = rng.random(n) < p
    primary = np.select([cases["has_weapon"], cases["has_parts"], cases["has_ammo"]],
                        ["weapon", "parts", "ammunition"], "explosives")
    hs = np.full(n, None, dtype=object)
    desc = np.full(n, None, dtype=object)
    for kind, probs in DECLARED_FOR.items():
        for conveyance in np.unique(conv):
            idx = np.flatnonzero(declared & (primary == kind) & (conv == conveyance))
            tilt = DECLARED_TILT.get(conveyance, {})
            hs[idx] = _choose(rng, {h: w * tilt.get(h, 1.0) for h, w in probs.items()}, len(idx))
    for i in np.flatnonzero(declared):
        options = DESCRIPTIONS[hs[i]]
        desc[i] = options[rng.integers(len(options))]
    conceal = np.full(n, None, dtype=object)
    has_text = rng.random(n) < np.where(declared, 0.85, 0.5)
    for c, texts in CONCEALMENT.items():
        idx = np.flatnonzero(has_text & (conv == c))
        conceal[idx] = np.array(texts, dtype=object)[rng.integers(0, len(texts), size=len(idx))]
    return hs, desc, conceal


# --------------------------------------------------------------------------------------------
# quantities
# --------------------------------------------------------------------------------------------


def _quantities(rng: np.random.Generator, seiz: pd.DataFrame) -> np.ndarray:
    """Pieces per seizure, exact totals per year and kind (Figure 5 ammunition, report total)."""
    q = np.zeros(len(seiz), dtype=np.int64)
    year = seiz["year"].to_numpy()
    cat = seiz["commodity_category"].to_numpy()
    wtype = seiz["weapon_type"].to_numpy()
    rep = seiz["reporting_country"].to_numpy()
    targets = year_targets()
    parts = parts_pieces()

    def put(mask: np.ndarray, total: int, sigma: float, fixed: tuple[int, ...] = (),
            prefer: np.ndarray | None = None) -> None:
        idx = np.flatnonzero(mask)
        idx = idx[rng.permutation(len(idx))]
        if prefer is not None and len(fixed):  # case-study seizures go to their reporting country
            pref = prefer[idx]
            idx = np.concatenate([idx[pref], idx[~pref]])
        q[idx] = split_total(rng, len(idx), total, sigma, fixed)

    for y in YEARS:
        yr = year == y
        put(yr & (cat == "ammunition"), targets[y].ammunition_pieces, 2.2,
            CASE_STUDY_PIECES.get(("ammunition", y), ()), np.isin(rep, ["JO", "DO"]))
        for t, pieces in TYPE_PIECES.items():
            mask = yr & np.isin(cat, ["small arms", "light weapons", "other weapons"]) & (wtype == t)
            if mask.any():
                put(mask, pieces[y], 1.1 if t != "imitation hand gun" else 0.6,
                    CASE_STUDY_PIECES.get((t, y), ()), rep == "JO")
        put(yr & (cat == "parts and accessories"), parts[y], 1.9, CASE_STUDY_PIECES.get(("parts", y), ()),
            (rep == "YE") & (wtype == "assault rifle, carbine, military use"))
        put(yr & (cat == "explosives and precursors"), EXPLOSIVES_PIECES[y], 1.5)
    return q


# --------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------


def _case_flags(cases: pd.DataFrame, seiz: pd.DataFrame) -> pd.DataFrame:
    g = seiz["group"].to_numpy()
    cat = GROUP_CATEGORY[g]
    flags = pd.DataFrame({
        "case": seiz["case"].to_numpy(),
        "has_weapon": IS_WEAPON_GROUP[g],
        "has_ammo": cat == "ammunition",
        "has_parts": cat == "parts and accessories",
        "has_explosive": cat == "explosives and precursors",
        "has_rifle": np.isin(GROUP_TYPE[g], ["assault rifle, carbine, military use", "machine gun", "light weapon"]),
        "has_imitation": GROUP_TYPE[g] == "imitation hand gun",
    }).groupby("case").any()
    return cases.join(flags)


def build_cases(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Case table (one row per case, with helper columns) and seizure table (case index, group)."""
    rng = np.random.default_rng(seed)
    cases, seiz = _compose(rng)
    cases = _case_flags(cases, seiz)
    n = len(cases)
    fixed_dir = np.full(n, "", dtype=object)
    fixed_loc = np.full(n, "", dtype=object)
    fixed_conv = np.full(n, "", dtype=object)
    imit = np.flatnonzero(cases["has_imitation"].to_numpy())
    if len(imit) != len(IMITATION_CASES_2023):
        raise ValueError(f"{len(imit)} imitation-gun cases, Figure 11 has {len(IMITATION_CASES_2023)}")
    imit = imit[rng.permutation(len(imit))]
    for i, (d, loc, conv) in zip(imit, IMITATION_CASES_2023, strict=True):
        fixed_dir[i], fixed_loc[i], fixed_conv[i] = d, loc, conv
    cases["direction"] = _directions(rng, cases, fixed_dir)
    cases["dep_region"], cases["dest_region"] = _route_regions(rng, cases)
    cases["detection_location"] = _locations(rng, cases, fixed_loc)
    cases["conveyance"] = _conveyances(rng, cases, fixed_conv)
    cases["detection_method"] = _methods(rng, cases)
    dep, dest, transit = _routes(rng, cases)
    cases["departure_country"], cases["destination_country"], cases["transit_countries"] = dep, dest, transit
    start = pd.to_datetime(cases["year"].astype(str) + "-01-01")
    days = rng.integers(0, 365, size=n)
    cases["event_date"] = (start + pd.to_timedelta(days, unit="D")).astype("datetime64[ns]")
    cases["reported_date"] = cases["event_date"] + pd.to_timedelta(rng.geometric(0.35, size=n) - 1, unit="D")
    hs, desc, conceal = _declared(rng, cases)
    cases["declared_hs_code"], cases["declared_description"], cases["concealment"] = hs, desc, conceal
    # case ids in date order within each year
    order = np.lexsort((rng.random(n), cases["event_date"].to_numpy(), cases["year"].to_numpy()))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    first = cases["year"].map(cases.groupby("year").size().cumsum() - cases.groupby("year").size())
    number = rank - first.to_numpy() + 1
    cases["case_id"] = [f"C{y}-{k:06d}" for y, k in zip(cases["year"], number, strict=True)]
    return cases, seiz


def generate_seizures(seed: int = 0) -> pd.DataFrame:
    """2022 and 2023 seizures in the SEIZURE contract columns, calibrated to the ITR 2023 figures."""
    cases, seiz = build_cases(seed)
    rng = np.random.default_rng([seed, 1])
    c = cases.iloc[seiz["case"].to_numpy()].reset_index(drop=True)
    g = seiz["group"].to_numpy()
    c["commodity_category"] = GROUP_CATEGORY[g]
    c["weapon_type"] = GROUP_TYPE[g]
    c["quantity"] = _quantities(rng, c).astype("float64")
    c = c.sort_values(["year", "case_id", "commodity_category", "weapon_type"], na_position="last",
                      kind="stable").reset_index(drop=True)
    within = c.groupby("case_id").cumcount() + 1
    c["seizure_id"] = ["S" + cid[1:] + f"-{k}" for cid, k in zip(c["case_id"], within, strict=True)]
    region = region_table()
    c["region"] = c["reporting_country"].map(region)
    return c[SEIZURE.columns].reset_index(drop=True)
