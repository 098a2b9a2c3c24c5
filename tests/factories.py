"""Seeded factories of small random histories (declarations, outcomes, seizures) for feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import DECLARATION, OUTCOME, SEIZURE, normalize_table

COUNTRIES = np.array(["CN", "AE", "YE", "TR", "JO", "US", "MX", "DE", "AL", "GB"])
HS = np.array(["820600", "940360", "720449", "940510", "847130", "851712", "930200", "610910"])
CONV = np.array(["vessel", "air", "express courier", "mail", "vehicle"])
OFFICES = np.array(["seaport", "airport", "mail centre", "land border"])
WORDS = np.array(["hardware", "lamp", "tools", "furniture", "scrap", "toys", "shirts", "phones"])


def make_declarations(rng: np.random.Generator, n: int, start: str = "2022-01-01", days: int = 120,
                      prefix: str = "D") -> pd.DataFrame:
    dates = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    dep = rng.choice(COUNTRIES, n).astype(object)
    dep[rng.random(n) < 0.1] = None
    transit = np.where(rng.random(n) < 0.3, rng.choice(COUNTRIES, n), "")
    transit = np.where((transit != "") & (rng.random(n) < 0.3), np.char.add(np.char.add(transit, "|"),
                                                                             rng.choice(COUNTRIES, n)), transit)
    df = pd.DataFrame({
        "declaration_id": [f"{prefix}{i:06d}" for i in range(n)],
        "declaration_date": dates,
        "direction": rng.choice(["import", "export"], n),
        "office_id": rng.choice(["O1", "O2", "O3", "O4"], n),
        "office_type": rng.choice(OFFICES, n),
        "importer_id": rng.choice([f"I{i}" for i in range(25)], n),
        "declarant_id": rng.choice([f"B{i}" for i in range(8)], n),
        "origin_country": rng.choice(COUNTRIES, n),
        "departure_country": dep,
        "transit_countries": transit,
        "destination_country": rng.choice(COUNTRIES, n),
        "conveyance": rng.choice(CONV, n),
        "hs_code": rng.choice(HS, n),
        "goods_description": [" ".join(rng.choice(WORDS, 2)) for _ in range(n)],
        "quantity": rng.integers(1, 100, n).astype(float),
        "gross_weight_kg": np.round(rng.lognormal(3, 1, n), 2),
        "customs_value": np.round(rng.lognormal(7, 1.2, n), 2),
        "currency": "USD",
    })
    out, report = normalize_table(df, DECLARATION)
    assert report.ok, report.summary()
    return out


def make_outcomes(rng: np.random.Generator, decl: pd.DataFrame, rate: float = 0.4) -> pd.DataFrame:
    pick = decl[rng.random(len(decl)) < rate]
    n = len(pick)
    df = pd.DataFrame({
        "declaration_id": pick["declaration_id"].to_numpy(),
        "inspected_date": pick["declaration_date"].to_numpy() + pd.to_timedelta(rng.integers(0, 5, n), unit="D"),
        "inspected": True,
        "selection_source": rng.choice(["rule", "random"], n),
        "selection_probability": 1.0,
        "hit": rng.random(n) < 0.25,
    })
    out, report = normalize_table(df, OUTCOME)
    assert report.ok, report.summary()
    return out


def make_seizures(rng: np.random.Generator, n_cases: int, start: str = "2022-01-01", days: int = 120,
                  prefix: str = "C") -> pd.DataFrame:
    rows = []
    for c in range(n_cases):
        day = pd.Timestamp(start) + pd.Timedelta(days=int(rng.integers(0, days)))
        dep = rng.choice(COUNTRIES) if rng.random() > 0.3 else None
        hs = rng.choice(HS) if rng.random() > 0.3 else None
        for s in range(int(rng.integers(1, 3))):
            rows.append({
                "case_id": f"{prefix}{c:05d}", "seizure_id": f"{prefix}{c:05d}-{s}", "event_date": day,
                "reported_date": day + pd.Timedelta(days=int(rng.integers(0, 4))),
                "reporting_country": rng.choice(COUNTRIES), "direction": "import",
                "departure_country": dep, "destination_country": rng.choice(COUNTRIES),
                "transit_countries": rng.choice(COUNTRIES) if rng.random() < 0.3 else "",
                "conveyance": rng.choice(CONV), "detection_method": "risk profiling",
                "detection_location": rng.choice(OFFICES), "commodity_category": "small arms",
                "weapon_type": "revolver", "quantity": 1.0, "declared_hs_code": hs,
                "declared_description": " ".join(rng.choice(WORDS, 2)) if hs else None,
            })
    out, report = normalize_table(pd.DataFrame(rows), SEIZURE)
    assert report.ok, report.summary()
    return out
