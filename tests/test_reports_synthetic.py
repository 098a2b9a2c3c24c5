"""On the default synthetic data the report reproduces the seed report's totals and Figures 2-4, 9 and 11."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

import reports

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RISKPROF_SHARED", REPO.parent / "shared"))
FIGURES = SHARED / "reference" / "itr2023-weapons-figures.yaml"
COUNTRY_CODES = {"United States": "US", "United Kingdom": "GB", "Saudi Arabia": "SA",
                 "United Arab Emirates": "AE", "Mexico": "MX", "Türkiye": "TR"}


def close(actual: float, expected: float) -> bool:
    """Within 5 %; counts under 20 (where 5 % is less than one) may be off by one."""
    return abs(actual - expected) <= max(0.05 * expected, 1.0)


@pytest.fixture(scope="module")
def figures() -> dict:
    if not FIGURES.exists():
        pytest.fail(f"report figures not found at {FIGURES} (set RISKPROF_SHARED)")
    return yaml.safe_load(FIGURES.read_text())


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    from synthetic import generate_seizures

    return reports.trend_tables(generate_seizures(seed=0), years=[2022, 2023])


@pytest.mark.slow
def test_totals_are_exact(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    totals = tables["totals"].set_index("year")
    for year in (2022, 2023):
        assert totals.at[year, "cases"] == figures["totals"]["cases"][year]
        assert totals.at[year, "seizures"] == figures["totals"]["seizures"][year]


@pytest.mark.slow
def test_figure_2_weapon_seizures_by_region(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    # Figure 2 counts weapon seizures only (small arms, light and other weapons), not ammunition or parts
    got = tables["weapon_seizures_by_region"].set_index(["region", "year"])["seizures"]
    misses = [(region, year, int(got.get((region, year), 0)), n)
              for region, by_year in figures["figure_2_weapon_seizures_by_region"].items()
              for year, n in by_year.items() if not close(got.get((region, year), 0), n)]
    assert not misses, misses


@pytest.mark.slow
def test_figure_3_cases_by_country(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    got = tables["by_country"].set_index(["reporting_country", "year"])["cases"]
    misses = []
    for name, by_year in figures["figure_3_cases_by_country"].items():
        if not isinstance(by_year, dict):
            continue
        code = COUNTRY_CODES[name]
        misses += [(code, year, int(got.get((code, year), 0)), n)
                   for year, n in by_year.items() if not close(got.get((code, year), 0), n)]
    assert not misses, misses


@pytest.mark.slow
def test_figure_4_seizures_by_weapon_type(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    df = tables["by_weapon_type"]
    got = df.assign(key=df["weapon_type"].str.lower()).set_index(["key", "year"])["seizures"]
    misses = []
    for label, by_year in figures["figure_4_seizures_by_weapon_type"].items():
        key = label.split("(")[0].strip().lower()
        misses += [(key, year, int(got.get((key, year), 0)), n)
                   for year, n in by_year.items() if not close(got.get((key, year), 0), n)]
    assert not misses, misses


@pytest.mark.slow
def test_figure_11_imitation_guns_by_conveyance(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    fig = figures["figure_11_imitation_guns_conveyance_2023"]
    t = tables["imitation_guns_by_conveyance"]
    t23 = t[t["year"] == 2023]
    by_conv = t23.groupby("conveyance")["cases"].sum()
    assert by_conv["air"] == fig["air"]
    assert t23[(t23["conveyance"] == "air") & (t23["direction"] == "import")]["cases"].sum() == 20
    assert by_conv["vehicle"] == fig["road"]  # the report's "road" is the contract's vehicle
    assert by_conv["mail"] == fig["mail"] and by_conv["other"] == fig["other"]


@pytest.mark.slow
def test_figure_9_quantity_change_of_weapons(tables: dict[str, pd.DataFrame], figures: dict) -> None:
    got = tables["yoy_weapon_quantity"].set_index("weapon_type")["quantity_change_pct"]
    # pieces of weapons of the type, parts excluded (with parts, assault rifles read -51 %)
    want = figures["figure_9_quantity_change_pct"]
    misses = [(name, got.get(name), pct) for name, pct in want.items() if not close(got.get(name, 0.0), pct)]
    assert not misses, misses
