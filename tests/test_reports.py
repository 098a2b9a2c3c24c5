"""Trend reports: hand-computed tables, file/frame/Parquet inputs, outputs, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import reports
from features.contracts import ContractError
from features.io import LoadError
from reports import TABLE_SCHEMAS
from reports._html import Section, build_sections
from reports._source import validate_files

DATA = Path(__file__).parent / "data" / "reports"
SMALL = DATA / "seizures_small.csv"
BAD = DATA / "seizures_bad.csv"


def frame(name: str, rows: list[tuple]) -> pd.DataFrame:
    schema = TABLE_SCHEMAS[name]
    return pd.DataFrame(rows, columns=list(schema)).astype(schema)


# Hand-computed from seizures_small.csv (6 cases, 10 seizures):
#   C1 2022 US  UNK→NAM  pistol(2) + ammunition(100)      C2 2022 GB  CN→GB  revolver(1) + knife(5)
#   C3 2023 us  MX→US    pistol(3)                        C4 2023 GB  ?→?    knife(10) + imitation(4)
#   C5 2023 SA  AE→SA    ammunition(500) + pistol(1)      C6 2023 US  ?→US   pistol parts(7)
# Typed parts count in by_weapon_type (Figure 4) but not in weapon_type_by_region (weapons only).
NAN = float("nan")
EXPECTED = {
    "totals": frame("totals", [(2022, 2, 4, 108.0), (2023, 4, 6, 525.0)]),
    "by_region": frame("by_region", [
        ("ME", 2023, 1, 2, 501.0), ("NAM", 2022, 1, 2, 102.0), ("NAM", 2023, 2, 2, 10.0),
        ("WE", 2022, 1, 2, 6.0), ("WE", 2023, 1, 2, 14.0)]),
    # Figure 2: weapon seizures only (C1's ammunition, C5's ammunition and C6's pistol parts are not weapons)
    "weapon_seizures_by_region": frame("weapon_seizures_by_region", [
        ("ME", 2023, 1), ("NAM", 2022, 1), ("NAM", 2023, 1), ("WE", 2022, 2), ("WE", 2023, 2)]),
    "by_country": frame("by_country", [
        ("GB", 2022, 1, 2, 6.0), ("GB", 2023, 1, 2, 14.0), ("SA", 2023, 1, 2, 501.0),
        ("US", 2022, 1, 2, 102.0), ("US", 2023, 2, 2, 10.0)]),
    "by_weapon_type": frame("by_weapon_type", [
        ("imitation hand gun", 2023, 1, 4.0), ("revolver", 2022, 1, 1.0),
        ("semi-automatic pistol", 2022, 1, 2.0), ("semi-automatic pistol", 2023, 3, 11.0),
        ("slash and stab weapon", 2022, 1, 5.0), ("slash and stab weapon", 2023, 1, 10.0)]),
    "yoy_weapon_type": frame("yoy_weapon_type", [
        ("imitation hand gun", 0, 1, NAN, 0.0, 4.0, NAN),  # nothing in the first year: change empty
        ("revolver", 1, 0, -100.0, 1.0, 0.0, -100.0),
        ("semi-automatic pistol", 1, 3, 200.0, 2.0, 11.0, 450.0),
        ("slash and stab weapon", 1, 1, 0.0, 5.0, 10.0, 100.0)]),
    # Figure 9: pieces of weapon seizures only (C6's 7 pistol parts are not pistols)
    "yoy_weapon_quantity": frame("yoy_weapon_quantity", [
        ("imitation hand gun", 0.0, 4.0, NAN), ("revolver", 1.0, 0.0, -100.0),
        ("semi-automatic pistol", 2.0, 4.0, 100.0), ("slash and stab weapon", 5.0, 10.0, 100.0)]),
    "weapon_type_by_region": frame("weapon_type_by_region", [
        ("imitation hand gun", "WE", 2023, 1), ("revolver", "WE", 2022, 1),
        ("semi-automatic pistol", "ME", 2023, 1), ("semi-automatic pistol", "NAM", 2022, 1),
        ("semi-automatic pistol", "NAM", 2023, 1), ("slash and stab weapon", "WE", 2022, 1),
        ("slash and stab weapon", "WE", 2023, 1)]),
    "routes": frame("routes", [
        ("AP", "WE", 1, 0.1667), ("ME", "ME", 1, 0.1667), ("NAM", "NAM", 1, 0.1667),
        ("UNK", "NAM", 2, 0.3333), ("UNK", "UNK", 1, 0.1667)]),
    "route_endpoints": frame("route_endpoints", [
        ("departure", "AP", 1, 0.1667), ("departure", "ME", 1, 0.1667), ("departure", "NAM", 1, 0.1667),
        ("departure", "UNK", 3, 0.5), ("destination", "ME", 1, 0.1667), ("destination", "NAM", 3, 0.5),
        ("destination", "UNK", 1, 0.1667), ("destination", "WE", 1, 0.1667)]),
    "detection_methods": frame("detection_methods", [
        ("intelligence", "export", 2023, 1), ("risk profiling", "import", 2022, 1),
        ("risk profiling", "import", 2023, 2), ("routine control", "import", 2023, 1),
        ("x-ray / scanner", "import", 2022, 1)]),
    "detection_locations": frame("detection_locations", [
        ("airport", "export", 2023, 1), ("airport", "import", 2022, 1), ("airport", "import", 2023, 1),
        ("land border", "import", 2023, 1), ("mail centre", "import", 2022, 1), ("seaport", "import", 2023, 1)]),
    "conveyance_by_category": frame("conveyance_by_category", [
        ("air", "ammunition", 2022, 1), ("air", "other weapons", 2023, 2), ("air", "small arms", 2022, 1),
        ("express courier", "parts and accessories", 2023, 1), ("mail", "other weapons", 2022, 1),
        ("mail", "small arms", 2022, 1), ("vehicle", "small arms", 2023, 1), ("vessel", "ammunition", 2023, 1),
        ("vessel", "small arms", 2023, 1)]),
    "ammunition": frame("ammunition", [(2022, 1, 100.0), (2023, 1, 500.0)]),
    # Figure 11: C4's imitation gun left from an unknown country, by air, on export
    "imitation_guns_by_conveyance": frame("imitation_guns_by_conveyance", [("UNK", "air", "export", 2023, 1, 1, 4.0)]),
}


def assert_tables(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert list(actual) == list(reports.TABLE_NAMES)
    for name, want in expected.items():
        pd.testing.assert_frame_equal(actual[name], want, obj=name)


def test_small_file_tables_match_hand_computed() -> None:
    assert_tables(reports.trend_tables(SMALL), EXPECTED)


def test_frame_and_parquet_inputs_give_the_same_tables(tmp_path: Path) -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    assert_tables(reports.trend_tables(raw), EXPECTED)
    parquet = tmp_path / "s.parquet"
    raw.to_parquet(parquet)
    assert_tables(reports.trend_tables(parquet), EXPECTED)
    assert_tables(reports.trend_tables([parquet]), EXPECTED)


def test_seizure_csvs_are_read_as_validate_and_train_read_csvs(tmp_path: Path) -> None:
    """The report read CSVs with pandas' defaults: a ';' file was one column, a row ending in its delimiter
    shifted every column by one, and a value past the header was dropped without a word."""
    text = SMALL.read_text(encoding="utf-8")
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(text.replace(",", ";"), encoding="utf-8")
    assert_tables(reports.trend_tables(semicolons), EXPECTED)
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("\n".join(line + "," for line in text.strip().splitlines()) + "\n", encoding="utf-8")
    assert_tables(reports.trend_tables(trailing), EXPECTED)
    lines = text.strip().splitlines()
    extra = tmp_path / "extra.csv"
    extra.write_text("\n".join([lines[0], lines[1] + ",surplus", *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(LoadError, match="extra.csv"):
        reports.trend_tables(extra)


def test_trusted_canonical_parquet_is_queried_directly(tmp_path: Path) -> None:
    canonical = tmp_path / "canonical.parquet"
    validate_files([SMALL], canonical)
    assert_tables(reports.trend_tables(canonical, validate=False), EXPECTED)


def test_case_spanning_two_types_counts_once_in_totals_and_in_each_group() -> None:
    t = reports.trend_tables(SMALL, years=[2023])
    # C4 holds a knife and an imitation gun: one case in totals, two seizures
    assert t["totals"].to_dict("records") == [{"year": 2023, "cases": 4, "seizures": 6, "quantity": 525.0}]
    we = t["by_region"].query("region == 'WE'")
    assert (we["cases"].item(), we["seizures"].item()) == (1, 2)
    # per-group case counts may add up to more than the total: each type's group holds C4 once
    wt = t["weapon_type_by_region"].query("region == 'WE'").set_index("weapon_type")["seizures"]
    assert wt.to_dict() == {"imitation hand gun": 1, "slash and stab weapon": 1}


def test_years_filter_and_single_year_yoy() -> None:
    t = reports.trend_tables(SMALL, years=[2023])
    assert t["totals"]["year"].tolist() == [2023]
    # one year is not compared with itself (every weapon type read "0 % change")
    assert t["yoy_weapon_type"].empty and list(t["yoy_weapon_type"].columns) == list(TABLE_SCHEMAS["yoy_weapon_type"])
    assert reports.coverage_notes(t, [2023]) == ["one year only (2023): no change from a first to a last year is shown"]
    # a requested year with no seizures is not the compared last year (2022 against an empty 2025: -100 %)
    both = reports.trend_tables(SMALL, years=[2022, 2023, 2025])
    pistol = both["yoy_weapon_type"].set_index("weapon_type").loc["semi-automatic pistol"]
    counts = both["by_weapon_type"].set_index(["weapon_type", "year"])["seizures"]
    assert (pistol["seizures_first"], pistol["seizures_last"]) == (counts["semi-automatic pistol", 2022],
                                                                  counts["semi-automatic pistol", 2023])
    assert reports.coverage_notes(both, [2022, 2023, 2025]) == ["no seizures in 2025: the report covers 2022–2023"]
    empty = reports.trend_tables(SMALL, years=[2019])
    assert reports.coverage_notes(empty, [2019]) == ["no seizures in the years 2019: the report is empty"]
    assert all(df.empty for df in empty.values())
    assert all(list(df.columns) == list(TABLE_SCHEMAS[n]) for n, df in empty.items())
    assert "No seizures" in reports.render_html(empty)


def test_bad_years_and_formats_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(reports.ReportError, match="outside"):
        reports.trend_tables(SMALL, years=[22])
    with pytest.raises(reports.ReportError, match="choose from"):
        reports.write_report(SMALL, tmp_path, formats=("pdf",))


def test_contract_errors_name_row_and_column_across_chunks(tmp_path: Path) -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    raw.loc[7, "weapon_type"] = "bazooka"  # data row 8, in the third chunk of 3 rows
    path = tmp_path / "bad.parquet"
    raw.to_parquet(path)
    with pytest.raises(ContractError) as err:
        validate_files([path], tmp_path / "out.parquet", chunk_rows=3)
    (problem,) = err.value.report.problems
    assert (problem.row, problem.column, problem.value) == (8, "weapon_type", "bazooka")


def test_duplicate_seizure_ids_across_chunks_are_rejected(tmp_path: Path) -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    raw.loc[9, "seizure_id"] = "S1"
    path = tmp_path / "dup.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(ContractError, match="unique"):
        validate_files([path], tmp_path / "out.parquet", chunk_rows=4)


@pytest.mark.slow  # renders the full HTML report
def test_write_report_writes_every_table_in_every_format(tmp_path: Path) -> None:
    written = reports.write_report(SMALL, tmp_path / "out")
    assert set(written) == {"index.html"} | {f"tables/{n}.{ext}" for n in reports.TABLE_NAMES for ext in ("csv", "json")}
    for name, schema in TABLE_SCHEMAS.items():
        csv = pd.read_csv(tmp_path / "out" / "tables" / f"{name}.csv")
        assert list(csv.columns) == list(schema)
        records = json.loads((tmp_path / "out" / "tables" / f"{name}.json").read_text())
        assert len(records) == len(EXPECTED[name]) and list(records[0]) == list(schema)
    lines = (tmp_path / "out" / "tables" / "yoy_weapon_type.csv").read_text().splitlines()
    assert lines[1] == "imitation hand gun,0,1,,0.0,4.0,"  # change is empty when the first value is 0
    records = json.loads((tmp_path / "out" / "tables" / "yoy_weapon_type.json").read_text())
    assert records[0]["seizures_change_pct"] is None
    only_csv = reports.write_report(SMALL, tmp_path / "csv", formats=("csv",))
    assert all(k.endswith(".csv") for k in only_csv)
    assert reports.stale_outputs(tmp_path / "csv", only_csv) == []
    # CSV only, into the folder of the full report: its HTML and JSON are left, and listed as not this run's
    again = reports.write_report(SMALL, tmp_path / "out", formats=("csv",))
    stale = reports.stale_outputs(tmp_path / "out", again)
    assert stale == ["index.html", *(f"tables/{n}.json" for n in reports.TABLE_NAMES)]


@pytest.mark.slow  # renders the full HTML report
def test_html_is_self_contained() -> None:
    page = reports.render_html(reports.trend_tables(SMALL))
    assert "<script src" not in page and "<link" not in page
    assert "window.PlotlyGeoAssets = {topojson: {world_110m:" in page
    assert '"topojsonURL": "./"' in page
    for anchor in ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "fig12", "fig13", "fig14"):
        assert f'id="{anchor}-chart"' in page
    assert page.count('<table class="sortable">') >= 12


def sections(tables: dict[str, pd.DataFrame]) -> dict[str, Section]:
    return {s.anchor: s for s in build_sections(tables)}


@pytest.mark.slow  # builds the report's figures
def test_figure_2_shows_weapon_seizures_by_region_not_every_seizure() -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    untyped = raw.iloc[[0]].assign(seizure_id="S11", weapon_type=None)  # a pistol of no recorded type: a weapon
    t = reports.trend_tables(pd.concat([raw, untyped], ignore_index=True))
    weapons = t["weapon_seizures_by_region"].set_index(["region", "year"])["seizures"]
    assert weapons.to_dict() == {("ME", 2023): 1, ("NAM", 2022): 2, ("NAM", 2023): 1, ("WE", 2022): 2, ("WE", 2023): 2}
    # every seizure of NAM in 2022 (pistol, ammunition, untyped pistol) stays in by_region, not in Figure 2
    assert t["by_region"].set_index(["region", "year"]).at[("NAM", 2022), "seizures"] == 3
    fig2 = sections(t)["fig2"]
    assert fig2.figure is not None
    bars = {(bar.name, x): y for bar in fig2.figure.data for x, y in zip(bar.x, bar.y, strict=True)}
    assert bars[("2022", "NAM")] == 2 and bars[("2023", "ME")] == 1
    assert "Weapon seizures" in fig2.figure.layout.title.text
    assert fig2.text.startswith("Weapon seizures by region, 2022 to 2023")


@pytest.mark.slow  # builds the report's figures
def test_figure_9_compares_pieces_of_weapons_not_of_their_parts() -> None:
    t = reports.trend_tables(SMALL)
    # pistols: 2 → 4 pieces of pistols (+100 %); with C6's 7 pistol parts 2 → 11 (+450 %, Figures 4 and 8's count)
    assert t["yoy_weapon_type"].set_index("weapon_type").at["semi-automatic pistol", "quantity_change_pct"] == 450.0
    fig9 = sections(t)["fig9"]
    assert fig9.figure is not None
    shown = dict(zip(fig9.figure.data[0].y, fig9.figure.data[0].x, strict=True))
    assert shown["semi-automatic pistol"] == 100.0
    assert "parts excluded" in fig9.figure.layout.title.text
    assert "semi-automatic pistol +100 % (2 → 4)" in fig9.text


def test_html_tables_show_the_numbers_the_csv_writes() -> None:
    from reports._html import table_html

    df = pd.DataFrame({"year": [2023] * 5, "quantity": [17952.5, 1015.4, 0.0981, 1234567.25, 3000.0]})
    shown = re.findall(r'<td data-v="([^"]*)">([^<]*)</td>', table_html("t", df))[1::2]
    # as the CSV writes them (17952.5, not 1.795e+04; 1015.4, not 1,015), grouped in thousands
    assert [text for _, text in shown] == ["17,952.5", "1,015.4", "0.0981", "1,234,567.25", "3,000"]
    assert [float(key) for key, _ in shown] == df["quantity"].tolist()


@pytest.mark.slow  # builds the report's figures four times
def test_a_figure_the_data_cannot_fill_says_why_instead_of_vanishing() -> None:
    one_year = reports.report_texts(reports.trend_tables(SMALL, years=[2022]))
    assert [a for a in one_year if a != "totals"] == [f"fig{i}" for i in range(1, 15)]
    assert one_year["fig8"] == one_year["fig9"] == (
        "Not drawn: a change needs two years with seizures; the report covers 2022 only.")
    assert one_year["fig10"] == one_year["fig11"] == "Not drawn: no imitation hand gun seizures in 2022."
    page = reports.render_html(reports.trend_tables(SMALL, years=[2022]))
    assert all(f'<section id="fig{i}"' in page for i in range(1, 15)) and 'href="#fig9"' in page
    t2023 = reports.trend_tables(SMALL, years=[2023])
    no_ammunition = t2023 | {"ammunition": t2023["ammunition"].iloc[:0]}
    assert reports.report_texts(no_ammunition)["fig5"] == "Not drawn: no ammunition seizures in 2023."
    # a year of the report without imitation guns is a 0 in Figure 10, not a year left off its chart
    both = reports.trend_tables(SMALL)
    fig10 = reports.report_figures(both)["fig10"]
    assert list(fig10.data[0].x) == ["2022", "2023"] and list(fig10.data[0].y) == [0, 1]
    assert reports.report_texts(both)["fig10"] == (
        "Imitation hand guns: 2022: 0 seizures, 0 pieces; 2023: 1 seizures, 4 pieces.")


def test_html_tables_scroll_and_sort_from_the_keyboard_and_charts_have_captions() -> None:
    from reports._html import table_html

    table = table_html("totals", EXPECTED["totals"])
    assert '<div class="tbl" tabindex="0" role="region" aria-label="Table totals">' in table
    assert '<th scope="col"><button type="button">cases</button></th>' in table
    page = reports.render_html(reports.trend_tables(SMALL, years=[2022]))
    assert page.count("<main>") == 1 and '<nav aria-label="Figures">' in page
    assert '<figure class="chart" aria-describedby="fig2-text">' in page and '<p class="text" id="fig2-text">' in page
    assert "<figcaption>Chart: Weapon seizures by region" in page


def test_generated_texts_report_changes_and_unknown_routes() -> None:
    texts = reports.report_texts(reports.trend_tables(SMALL))
    assert "cases rose 100 % from 2 to 4" in texts["totals"]
    assert "unknown for 50.00% of cases" in texts["fig6"]
    assert "none in 2022, seized in 2023: imitation hand gun" in texts["fig8"]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):
    from riskprof.cli import app

    return runner.invoke(app, ["report", *args])


@pytest.mark.slow  # renders the full HTML report
def test_cli_writes_html_and_tables(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "seizures.csv"
    src.write_bytes(SMALL.read_bytes())
    out = tmp_path / "report"
    result = invoke(runner, "--seizures", str(src), "--out", str(out), "--years", "2022,2023")
    assert result.exit_code == 0, result.output
    assert (out / "index.html").stat().st_size > 100_000
    for name in reports.TABLE_NAMES:
        assert (out / "tables" / f"{name}.csv").exists() and (out / "tables" / f"{name}.json").exists()
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "totals.csv"),
                                  EXPECTED["totals"].astype({"quantity": "float64"}), check_dtype=False)


def test_cli_bad_file_names_row_and_column(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(BAD.read_bytes())
    result = invoke(runner, "--seizures", str(src), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0
    assert "row 2" in result.output and "'quantity'" in result.output and "'lots'" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--years", "20x2"), "--years"),
    (("--years", "1800"), "outside"),
    (("--format", "html,pdf"), "choose from"),
])
def test_cli_bad_options(runner: CliRunner, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(runner, "--seizures", str(SMALL), "--out", str(tmp_path / "r"), *args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_cli_missing_file_and_mapping(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "--seizures", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0 and "no such file" in result.output
    result = invoke(runner, "--seizures", str(SMALL), "--out", str(tmp_path / "r"),
                    "--mapping", str(tmp_path / "nope.yaml"))
    assert result.exit_code != 0 and "mapping file not found" in result.output


def test_cli_with_mapping(runner: CliRunner, tmp_path: Path) -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    renamed = raw.rename(columns={"case_id": "Case", "quantity": "Pieces"})
    renamed.to_csv(tmp_path / "own.csv", index=False)
    columns = {c: c for c in raw.columns} | {"case_id": "Case", "quantity": "Pieces"}
    (tmp_path / "m.yaml").write_text(json.dumps({"contract": "seizure", "columns": columns}))
    out = tmp_path / "r"
    result = invoke(runner, "--seizures", str(tmp_path / "own.csv"), "--mapping", str(tmp_path / "m.yaml"),
                    "--out", str(out), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert not (out / "index.html").exists()
    got = pd.read_csv(out / "tables" / "by_country.csv")
    assert got["cases"].tolist() == EXPECTED["by_country"]["cases"].tolist()


def test_numbers_only_parquet_types_are_accepted(tmp_path: Path) -> None:
    raw = pd.read_csv(SMALL, dtype=str, keep_default_na=False, na_values=[""])
    raw["quantity"] = raw["quantity"].astype(np.float64)
    raw["event_date"] = pd.to_datetime(raw["event_date"])
    raw.to_parquet(tmp_path / "typed.parquet")
    assert_tables(reports.trend_tables(tmp_path / "typed.parquet"), EXPECTED)


def test_figures_with_a_panel_per_year_draw_the_last_years_of_many() -> None:
    # 37 years of seizures (1990-2026) made plotly refuse Figure 7's 37 panels: a traceback, a 500 on the page
    from reports._figures import PANEL_YEARS, stacked_by_year, weapon_region_heatmap

    years = list(range(1990, 2027))
    grid = pd.DataFrame([{"weapon_type": w, "region": r, "year": y, "seizures": 1}
                         for y in years for w in ("pistol", "rifle") for r in ("Europe", "Asia")])
    fig = weapon_region_heatmap(grid)
    assert [a.text for a in fig.layout.annotations] == [str(y) for y in years[-PANEL_YEARS:]]
    assert "the last 6 of 37 years; the table holds all" in fig.layout.title.text
    bars = stacked_by_year(grid, "region", "weapon_type", "seizures", "Seizures")
    assert len({t.xaxis for t in bars.data}) == PANEL_YEARS and "the last 6 of 37 years" in bars.layout.title.text
    few = weapon_region_heatmap(grid[grid["year"] >= 2024])
    assert [a.text for a in few.layout.annotations] == ["2024", "2025", "2026"]
    assert "last" not in few.layout.title.text
