"""The synthetic default: calibration to the ITR 2023 figures, determinism, contracts, planted patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import synthetic
from features.contracts import DECLARATION, OUTCOME, SEIZURE, WEAPON_TYPES, normalize_table
from features.reference import region_of
from synthetic._declarations import RANDOM_RATE, build_declarations, route_level
from synthetic.figures import cases_by_country, seizures_by_weapon_type, weapon_type_name
from tests.conftest import SHARED

# the fixtures generate full synthetic data sets (tens of seconds): not for the fast tier
pytestmark = pytest.mark.slow

TOL = 0.05
WEAPON_CATEGORIES = ["small arms", "light weapons", "other weapons"]


def close(got: float, want: float, tol: float = TOL) -> bool:
    return abs(got - want) <= tol * abs(want)


@pytest.fixture(scope="module")
def fig() -> dict:
    shared = SHARED / "reference" / "itr2023-weapons-figures.yaml"
    if shared.exists():
        return yaml.safe_load(shared.read_text(encoding="utf-8"))
    return synthetic.load_figures()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synthetic-small")
    paths = synthetic.generate(out, seed=0, n_declarations=50_000)
    frames = {k: pd.read_parquet(p) for k, p in paths.items()}
    frames["_dir"] = out  # type: ignore[assignment]
    return frames


@pytest.fixture(scope="module")
def seizures(small) -> pd.DataFrame:
    s = small["seizures"].copy()
    s["year"] = pd.to_datetime(s["event_date"]).dt.year
    return s


@pytest.fixture(scope="module")
def cases(seizures) -> pd.DataFrame:
    return seizures.drop_duplicates("case_id")


@pytest.fixture(scope="module")
def default_set(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The default size (200,000 declarations), generated once."""
    out = tmp_path_factory.mktemp("synthetic-default")
    paths = synthetic.generate(out, seed=0)
    return {k: pd.read_parquet(p) for k, p in paths.items()}


@pytest.fixture(scope="module")
def inspected(default_set) -> pd.DataFrame:
    d = default_set["declarations"]
    return default_set["outcomes"].merge(d, on="declaration_id", how="left", validate="one_to_one")


# --------------------------------------------------------------------------------------------
# seizure calibration
# --------------------------------------------------------------------------------------------


def test_figures_yaml_matches_the_packaged_copy(fig):
    assert fig == synthetic.load_figures()


def test_cases_and_seizures_per_year_are_exact(fig, seizures, cases):
    for year in (2022, 2023):
        assert (cases["year"] == year).sum() == fig["totals"]["cases"][year]
        assert (seizures["year"] == year).sum() == fig["totals"]["seizures"][year]
    # a case is one event: case-level fields agree within a case, one seizure per commodity
    case_cols = ["event_date", "reporting_country", "direction", "departure_country", "destination_country",
                 "conveyance", "detection_method", "detection_location", "declared_hs_code"]
    assert (seizures.groupby("case_id")[case_cols].nunique(dropna=False) == 1).all().all()
    commodity = seizures["commodity_category"] + "/" + seizures["weapon_type"].fillna("")
    assert not commodity.groupby(seizures["case_id"]).apply(lambda x: x.duplicated().any()).any()


def test_weapon_seizures_by_region_figure_2(fig, seizures):
    weapons = seizures[seizures["commodity_category"].isin(WEAPON_CATEGORIES)]
    got = weapons.groupby(["region", "year"]).size()
    for region, years in fig["figure_2_weapon_seizures_by_region"].items():
        for year, want in years.items():
            assert close(got.get((region, year), 0), want), (region, year, got.get((region, year), 0), want)
    assert (seizures["region"] == seizures["reporting_country"].map(region_of)).all()


def test_cases_by_reporting_country_figure_3(fig, cases):
    got = cases.groupby(["reporting_country", "year"]).size()
    expected = cases_by_country(fig)
    assert set(expected) == {"US", "GB", "SA", "AE", "MX", "TR"}
    for code, years in expected.items():
        for year, want in years.items():
            assert close(got.get((code, year), 0), want), (code, year)


def test_seizures_by_weapon_type_figures_4_and_8(fig, seizures):
    got = seizures.groupby(["weapon_type", "year"]).size()
    expected = seizures_by_weapon_type(fig)
    assert expected[weapon_type_name("pepper / CS spray")] == {2022: 168, 2023: 309}  # Figure 8
    for wtype, years in expected.items():
        assert wtype in WEAPON_TYPES
        for year, want in years.items():
            assert close(got.get((wtype, year), 0), want), (wtype, year)


def test_quantities_figures_5_and_9_and_totals(fig, seizures):
    ammo = seizures[seizures["commodity_category"] == "ammunition"].groupby("year")["quantity"].sum()
    for year, want in fig["figure_5_ammunition"]["quantity"].items():
        assert close(ammo[year], want)
    n_ammo = seizures[seizures["commodity_category"] == "ammunition"].groupby("year").size()
    assert n_ammo[2023] < 0.6 * n_ammo[2022]  # "fell by over 40 per cent"
    assert close(seizures["quantity"].sum(), fig["totals"]["items_interdicted_both_years"])
    assert close(ammo.sum(), fig["totals"]["ammunition_pieces_both_years_approx"])
    weapons = seizures[seizures["commodity_category"].isin(WEAPON_CATEGORIES)]
    pieces = weapons.groupby(["weapon_type", "year"])["quantity"].sum()
    for wtype, pct in fig["figure_9_quantity_change_pct"].items():
        change = (pieces[(wtype, 2023)] / pieces[(wtype, 2022)] - 1) * 100
        assert close(change, pct), (wtype, change, pct)
    assert close(pieces[("imitation hand gun", 2023)], 280)
    assert (seizures["quantity"] >= 1).all()


def test_routes_figure_6(fig, cases):
    f6 = fig["figure_6_routes_share_of_cases"]
    n = len(cases)
    assert close(cases["departure_country"].isna().sum() / n, f6["departure_unknown"])
    assert close(cases["destination_country"].isna().sum() / n, f6["destination_unknown"])
    dep = cases["departure_country"].map(region_of)
    dest = cases["destination_country"].map(region_of)
    for region, share in f6["departure"].items():
        assert close((dep == region).mean(), share), region
    for region, share in f6["destination"].items():
        assert close((dest == region).mean(), share), region
    # directions are consistent with the reporting country
    imp = cases[cases["direction"] == "import"]
    assert (imp["destination_country"] == imp["reporting_country"]).all()
    exp = cases[cases["direction"] == "export"]
    assert (exp["departure_country"] == exp["reporting_country"]).all()
    tr = cases[cases["direction"] == "transit"]
    assert all(r in t.split("|") for r, t in zip(tr["reporting_country"], tr["transit_countries"], strict=True))


def test_detection_locations_figure_13(fig, cases):
    f13 = fig["figure_13_detection_locations"]
    loc = cases["detection_location"].value_counts()
    for place in ("airport", "mail centre", "seaport"):
        assert close(loc[place], f13[place]["total"]), place
    airport = cases[cases["detection_location"] == "airport"]["direction"].value_counts()
    assert close(airport["export"], f13["airport"]["export"])
    assert close(airport["import"], f13["airport"]["import"])
    assert loc.idxmax() == f13["most_cases"] == "land border"
    # conveyance agrees with the place
    assert (cases.loc[cases["detection_location"] == "seaport", "conveyance"] == "vessel").all()


def test_detection_methods_figure_12(fig, cases):
    f12 = fig["figure_12_detection_methods"]
    us = cases[cases["reporting_country"] == "US"]
    assert (us["detection_method"] == "risk profiling").all()
    non_us = cases[cases["reporting_country"] != "US"]
    assert close((non_us["detection_method"] == "risk profiling").sum(), f12["risk profiling"])
    rp = non_us[non_us["detection_method"] == "risk profiling"]
    assert (rp["direction"] == "import").mean() > 0.5  # "mostly import"
    random_2023 = non_us[(non_us["year"] == 2023) & (non_us["direction"] == "import")
                         & (non_us["detection_method"] == "random selection")]
    assert close(len(random_2023), f12["random selection import 2023"])
    at_import = non_us[non_us["direction"] == "import"]["detection_method"].value_counts()
    assert at_import.idxmax() == f12["most_common_at_import"]


def test_imitation_guns_figure_11(fig, seizures):
    f11 = fig["figure_11_imitation_guns_conveyance_2023"]
    imit = seizures[seizures["weapon_type"] == "imitation hand gun"]
    assert set(imit["year"]) == {2023}
    by_conv = imit.drop_duplicates("case_id")["conveyance"].value_counts()
    assert close(by_conv.get("air", 0), f11["air"])
    assert close(by_conv.get("vehicle", 0), f11["road"])
    assert by_conv.get("mail", 0) == f11["mail"] and by_conv.get("other", 0) == f11["other"]
    assert ((imit["conveyance"] == "air") & (imit["direction"] == "import")).sum() == 20


def test_seizure_details_declared_goods_and_dates(seizures, cases):
    cargo = cases[cases["conveyance"].isin(["vessel", "express courier", "mail"])]
    assert cargo["declared_hs_code"].notna().mean() > 0.7
    assert cases["declared_hs_code"].notna().mean() > 0.25
    assert cases["declared_hs_code"].dropna().str.fullmatch(r"\d{4}").all()
    covers = {"8206", "9403", "7204", "9405", "8452", "8708", "9503"}
    assert covers <= set(cases["declared_hs_code"].dropna())
    assert (cases["declared_description"].notna() == cases["declared_hs_code"].notna()).all()
    assert cases["concealment"].notna().mean() > 0.4
    lag = (pd.to_datetime(cases["reported_date"]) - pd.to_datetime(cases["event_date"])).dt.days
    assert lag.between(0, 30).all() and lag.mean() < 5
    # the report's case-study seizures are planted with their sizes
    big = set(seizures["quantity"].astype(int))
    assert {173_240, 22_160, 17_700, 1_253} <= big


# --------------------------------------------------------------------------------------------
# contracts, determinism, links
# --------------------------------------------------------------------------------------------


def _problems(df: pd.DataFrame, contract) -> list:
    _, report = normalize_table(df, contract)
    return report.problems


def test_all_tables_satisfy_their_contracts(small):
    for name, contract in (("seizures", SEIZURE), ("declarations", DECLARATION), ("outcomes", OUTCOME)):
        problems = _problems(small[name], contract)
        assert not problems, f"{name}: {problems[:5]}"
    assert list(small["seizures"].columns) == SEIZURE.columns
    assert list(small["declarations"].columns) == DECLARATION.columns
    assert list(small["outcomes"].columns) == OUTCOME.columns
    assert "latent_risk" not in small["declarations"].columns


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path):
    a = synthetic.generate(tmp_path / "a", seed=3, n_declarations=20_000)
    b = synthetic.generate(tmp_path / "b", seed=3, n_declarations=20_000)
    c = synthetic.generate(tmp_path / "c", seed=4, n_declarations=20_000)
    assert set(a) == {"seizures", "declarations", "outcomes"}
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
        assert a[key].read_bytes() != c[key].read_bytes(), key


def test_public_functions_agree_with_generate(small):
    s = synthetic.generate_seizures(0)
    pd.testing.assert_frame_equal(s, small["seizures"], check_dtype=False)
    d, o = synthetic.generate_declarations(s, n=50_000, seed=0)
    pd.testing.assert_frame_equal(d, small["declarations"], check_dtype=False)
    pd.testing.assert_frame_equal(o, small["outcomes"], check_dtype=False)


def test_declarations_are_filled_realistically(small):
    d = small["declarations"]
    assert len(d) == 50_000 and d["declaration_id"].is_unique
    dates = pd.to_datetime(d["declaration_date"])
    assert dates.min() >= pd.Timestamp("2022-01-01") and dates.max() <= pd.Timestamp("2023-12-31")
    assert d["hs_code"].str.fullmatch(r"\d{6,10}").all()
    assert d["direction"].value_counts(normalize=True)["import"] > 0.7
    assert (d["currency"] == "USD").all()
    for col in ("office_id", "office_type", "importer_id", "declarant_id", "origin_country", "departure_country",
                "destination_country", "conveyance", "goods_description", "quantity", "gross_weight_kg",
                "customs_value"):
        assert d[col].notna().all(), col
    sizes = d["importer_id"].value_counts()
    assert sizes.iloc[0] > 20 * sizes.median()  # heavy-tailed trader sizes
    assert (d["office_id"].str[:2] == np.where(d["direction"] == "import", d["destination_country"],
                                               d["office_id"].str[:2])).all()


def test_outcomes_reference_declarations_and_cases(small):
    d, o, s = small["declarations"], small["outcomes"], small["seizures"]
    assert o["declaration_id"].is_unique and o["declaration_id"].isin(d["declaration_id"]).all()
    assert o["inspected"].all()
    m = o.merge(d, on="declaration_id")
    lag = (pd.to_datetime(m["inspected_date"]) - pd.to_datetime(m["declaration_date"])).dt.days
    assert lag.between(0, 3).all()
    linked = m[m["case_id"].notna()]
    assert linked["hit"].all()
    assert linked["case_id"].is_unique
    cases = s.drop_duplicates("case_id").set_index("case_id")
    assert linked["case_id"].isin(cases.index).all()
    c = cases.loc[linked["case_id"]].reset_index()
    ev = pd.to_datetime(c["event_date"]).to_numpy()
    assert (pd.to_datetime(linked["declaration_date"]).to_numpy() <= ev).all()
    assert (ev <= pd.to_datetime(linked["inspected_date"]).to_numpy()).all()
    assert (linked["conveyance"].to_numpy() == c["conveyance"].to_numpy()).all()
    assert (linked["direction"].to_numpy() == c["direction"].to_numpy()).all()
    assert (linked["hs_code"].str[:4].to_numpy() == c["declared_hs_code"].to_numpy()).all()
    assert (linked["office_id"].str[:2].to_numpy() == c["reporting_country"].to_numpy()).all()
    for col in ("departure_country", "destination_country"):
        known = c[col].notna().to_numpy()
        assert (linked[col].to_numpy()[known] == c[col].to_numpy()[known]).all()
    assert len(linked) > 0.6 * m["hit"].sum()  # most hits are a reported seizure case


# --------------------------------------------------------------------------------------------
# outcomes and planted patterns (default size)
# --------------------------------------------------------------------------------------------


def test_default_size_rates(default_set, inspected):
    d, o = default_set["declarations"], default_set["outcomes"]
    assert len(d) == 200_000
    assert 0.08 <= len(o) / len(d) <= 0.12
    assert 0.03 <= o["hit"].mean() <= 0.06
    assert set(o["selection_source"]) == {"rule", "random", "officer"}
    assert (o.loc[o["selection_source"] == "rule", "selection_probability"] == 1.0).all()
    assert (o.loc[o["selection_source"] == "random", "selection_probability"] == RANDOM_RATE).all()
    assert (o["selection_source"] == "rule").mean() > 0.5
    rate = o.groupby("selection_source")["hit"].mean()
    assert rate["random"] < rate["rule"]
    assert (o.loc[o["hit"], "revenue"] > 0).mean() > 0.2 and (o["revenue"] >= 0).all()


def test_planted_patterns_are_documented():
    families = {"route", "conveyance_office", "goods_cover", "trader_history", "value_anomaly"}
    assert {p["family"] for p in synthetic.PLANTED_PATTERNS} == families
    for p in synthetic.PLANTED_PATTERNS:
        assert p["name"] and p["description"] and p["strength"] > 1
        assert set(p["columns"]) <= set(DECLARATION.columns)
    text = (Path(synthetic.__file__).parent / "PATTERNS.md").read_text(encoding="utf-8")
    for p in synthetic.PLANTED_PATTERNS:
        assert p["name"] in text


def _lift(inspected: pd.DataFrame, mask: pd.Series) -> float:
    return inspected.loc[mask, "hit"].mean() / inspected.loc[~mask, "hit"].mean()


def test_cover_headings_hit_more(inspected):
    cover = inspected["hs_code"].str[:4].isin(["8206", "9403", "7204", "9405", "8452"])
    assert _lift(inspected, cover) > 2  # x6 in the latent risk, diluted by rule selection


def test_trafficking_lanes_hit_more(inspected):
    lvl = route_level(inspected["departure_country"].to_numpy(dtype=object),
                      inspected["transit_countries"].to_numpy(dtype=object),
                      inspected["destination_country"].to_numpy(dtype=object))
    assert _lift(inspected, pd.Series(lvl == 2, index=inspected.index)) > 2


def test_express_and_mail_hit_more(inspected):
    assert _lift(inspected, inspected["conveyance"].isin(["express courier", "mail"])) > 1.5


def test_under_declared_value_hits_more(default_set, inspected):
    d = default_set["declarations"]
    per_kg = d["customs_value"] / d["gross_weight_kg"]
    median = per_kg.groupby(d["hs_code"].str[:4]).median()
    ratio = (inspected["customs_value"] / inspected["gross_weight_kg"]) / inspected["hs_code"].str[:4].map(median)
    assert _lift(inspected, ratio < 0.35) > 2


def test_past_hits_predict_future_hits(inspected):
    dates = pd.to_datetime(inspected["declaration_date"])
    first = inspected[dates < pd.Timestamp("2023-01-01")]
    later = inspected[dates >= pd.Timestamp("2023-01-01")]
    past = first.groupby("importer_id")["hit"].mean()
    repeat = later["importer_id"].isin(past[past >= 0.1].index)  # a 2022 hit rate of 10 % or more
    assert repeat.sum() > 200
    assert _lift(later, repeat) > 2


def test_latent_risk_is_hidden_and_not_a_single_column_function():
    s = synthetic.generate_seizures(0)
    d, _, risk = build_declarations(s, n=30_000, seed=0)
    assert len(risk) == len(d) and risk.between(0, 1).all()
    for col in ("hs_code", "importer_id", "conveyance", "office_id"):
        spread = risk.groupby(d[col]).std().dropna()
        assert (spread > 0).mean() > 0.9, col


def test_cli_generate(tmp_path: Path):
    from typer.testing import CliRunner

    from riskprof.cli import app

    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--seed", "1", "--declarations", "2000"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"seizures.parquet", "declarations.parquet", "outcomes.parquet"}
