"""Data contracts: file validation and API models come from one definition and agree."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from features.contracts import (
    DECLARATION,
    OUTCOME,
    SEIZURE,
    ContractError,
    normalize_table,
    pydantic_model,
    validate_table,
)
from features.io import LoadError, load_table
from features.mapping import MappingError, load_mapping, mapping_from_dict
from riskprof.cli import app
from tests.conftest import KR_MAPPING

runner = CliRunner()


def good_declarations(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "declaration_id": [f"D{i}" for i in range(n)],
        "declaration_date": [f"2023-01-0{i + 1}" for i in range(n)],
        "direction": ["import"] * n,
        "office_type": ["seaport"] * n,
        "origin_country": ["CN"] * n,
        "departure_country": ["cn"] * n,
        "transit_countries": ["AE", "", "AE|OM"][:n],
        "destination_country": ["YE"] * n,
        "conveyance": ["vessel"] * n,
        "hs_code": ["820600", "0101210000", "940360"][:n],
        "quantity": [1, 2, 3][:n],
        "gross_weight_kg": [10.0, 20.0, 30.0][:n],
        "customs_value": [100.0, 200.0, 300.0][:n],
    })


def test_good_declarations_normalise_to_canonical_types():
    out, report = normalize_table(good_declarations(), DECLARATION, "mem")
    assert report.ok, report.summary()
    assert str(out["declaration_date"].dtype) == "datetime64[ns]"
    assert out["departure_country"].tolist() == ["CN", "CN", "CN"]
    assert out["hs_code"].tolist()[1] == "0101210000"  # leading zero kept
    assert out["transit_countries"].tolist() == ["AE", "", "AE|OM"]
    # optional columns not provided are added empty and reported
    assert "importer_id" in out.columns and out["importer_id"].isna().all()
    assert "importer_id" in report.missing_optional


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("origin_country", "XX", "ISO 3166"),
        ("hs_code", "82A600", "HS code"),
        ("hs_code", "8206", "HS code of 6 to 10"),
        ("quantity", -1, "≥ 0"),
        ("gross_weight_kg", "heavy", "a number"),
        ("declaration_date", "1970-05-01", "between"),
        ("declaration_date", "2300-01-01", "between"),
        ("declaration_date", "31/31/2023", "a date"),
        ("transit_countries", "AE|QQ", "ISO 3166"),
    ],
)
def test_each_bad_value_is_named_with_row_column_value_expected(column, value, expected):
    df = good_declarations()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    _, report = normalize_table(df, DECLARATION, "decl.csv")
    assert len(report.problems) == 1, report.summary()
    p = report.problems[0]
    assert (p.row, p.column, p.value) == (2, column, value)
    assert expected in p.expected
    assert "decl.csv: row 2, column" in str(p)


def test_all_problems_of_a_file_are_reported_not_only_the_first():
    df = good_declarations()
    df.loc[0, "origin_country"] = "ZZ"
    df.loc[1, "hs_code"] = "12"
    df.loc[2, "quantity"] = -5
    df = df.drop(columns=["declaration_date"])
    with pytest.raises(ContractError) as exc:
        validate_table(df, DECLARATION, "x.csv")
    cols = [(p.row, p.column) for p in exc.value.report.problems]
    assert cols == [(None, "declaration_date"), (1, "origin_country"), (2, "hs_code"), (3, "quantity")]


def test_duplicate_keys_are_errors():
    df = good_declarations()
    df.loc[2, "declaration_id"] = "D0"
    _, report = normalize_table(df, DECLARATION)
    assert [(p.row, p.column) for p in report.problems] == [(3, "declaration_id")]


def test_unknown_categories_in_declarations_are_allowed_but_counted():
    df = good_declarations()
    df.loc[0, "conveyance"] = "hovercraft"
    df.loc[1, "conveyance"] = "hovercraft"
    out, report = normalize_table(df, DECLARATION)
    assert report.ok
    assert report.unknown_values == {"conveyance": {"hovercraft": 2}}
    assert out.loc[0, "conveyance"] == "hovercraft"


def test_unknown_categories_in_seizures_are_errors():
    row = {
        "case_id": "C1", "seizure_id": "S1", "event_date": "2023-01-05", "reporting_country": "AL",
        "direction": "export", "departure_country": "AL", "destination_country": "GB", "conveyance": "mail",
        "detection_method": "x-ray / scanner", "detection_location": "land border",
        "commodity_category": "small arms", "weapon_type": "semi-automatic pistol", "quantity": 8,
    }
    out, report = normalize_table(pd.DataFrame([row]), SEIZURE)
    assert report.ok, report.summary()
    assert out.loc[0, "region"] == "ECE"
    assert out.loc[0, "reported_date"] == out.loc[0, "event_date"]
    bad = pd.DataFrame([{**row, "conveyance": "balloon", "weapon_type": "laser"}])
    _, report = normalize_table(bad, SEIZURE)
    assert sorted(p.column for p in report.problems) == ["conveyance", "weapon_type"]


def test_outcome_booleans_and_sources():
    df = pd.DataFrame({"declaration_id": ["a", "b"], "inspected_date": ["2023-01-01", "2023-01-02"],
                       "inspected": ["true", "1"], "selection_source": ["random", "robot"],
                       "selection_probability": [0.02, 1.0], "hit": ["0", "maybe"]})
    out, report = normalize_table(df, OUTCOME)
    assert sorted((p.row, p.column) for p in report.problems) == [(2, "hit"), (2, "selection_source")]
    assert out["inspected"].tolist() == [True, True]


def test_api_model_shares_the_contract():
    model = pydantic_model("declaration")
    ok = model(declaration_id="D1", declaration_date="2023-01-01", hs_code="820600", transit_countries=["ae"],
               origin_country="cn", extra_field=3)
    assert ok.transit_countries == ["AE"] and ok.origin_country == "CN"
    assert ok.model_dump()["extra_field"] == 3  # extra columns carried through
    with pytest.raises(ValidationError) as exc:
        model(declaration_id="D1", declaration_date="2023-01-01", hs_code="82", origin_country="XX",
              gross_weight_kg=-1)
    fields = sorted(e["loc"][0] for e in exc.value.errors())
    assert fields == ["gross_weight_kg", "hs_code", "origin_country"]
    with pytest.raises(ValidationError):
        pydantic_model("seizure")(case_id="C", seizure_id="S", event_date="2023-01-01", reporting_country="AL",
                                  direction="export", conveyance="rocket", detection_method="other",
                                  detection_location="other", commodity_category="small arms", quantity=1,
                                  departure_country=None, destination_country=None)


@pytest.mark.parametrize(("value", "said"), [
    ("", "empty: a date is required (YYYY-MM-DD)"),  # it said "Invalid isoformat string: ''"
    ("June 1st", "'June 1st' is not a date: expected YYYY-MM-DD"),
    ("2023-13-01", "'2023-13-01' is not a date (month must be in 1..12): expected YYYY-MM-DD"),
])
def test_a_bad_date_in_the_api_contract_says_what_a_date_looks_like(value: str, said: str) -> None:
    from serving.errors import InputError
    from serving.parsing import validate_records

    with pytest.raises(InputError) as exc:
        validate_records([{"declaration_id": "D1", "inspected_date": value, "inspected": True, "hit": True}],
                         "outcome", 1)
    assert [p.message for p in exc.value.problems] == [said]


# ---- files ---------------------------------------------------------------------------------------


def test_csv_and_parquet_load_the_same(tmp_path: Path):
    df = good_declarations()
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    a = load_table(tmp_path / "a.csv", DECLARATION).frame
    b = load_table(tmp_path / "a.parquet", DECLARATION).frame
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_missing_and_corrupt_files_fail_clearly(tmp_path: Path):
    with pytest.raises(LoadError, match="no such file"):
        load_table(tmp_path / "nope.csv", DECLARATION)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(LoadError, match="cannot be read"):
        load_table(tmp_path / "bad.parquet", DECLARATION)


def test_validate_cli_reports_every_problem_and_exits_non_zero(tmp_path: Path):
    df = good_declarations()
    df["origin_country"] = df["origin_country"].astype(object)
    df.loc[0, "origin_country"] = "XX"
    df.loc[2, "gross_weight_kg"] = -3
    df.to_csv(tmp_path / "d.csv", index=False)
    result = runner.invoke(app, ["validate", str(tmp_path / "d.csv")])
    assert result.exit_code == 1
    text = result.output
    assert "row 1, column 'origin_country': got 'XX'" in text
    assert "row 3, column 'gross_weight_kg'" in text
    assert "Traceback" not in text
    good_declarations().to_csv(tmp_path / "ok.csv", index=False)
    result = runner.invoke(app, ["validate", str(tmp_path / "ok.csv")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "no such file" in result.output


# ---- mappings --------------------------------------------------------------------------------


def test_mapping_renames_maps_values_pads_codes_and_derives_labels():
    raw = pd.DataFrame({"ID": ["1", "2"], "Day": ["2023-01-01", "2023-01-02"], "HS": ["10121", "820600"],
                        "Mode": ["10", "40"], "Orig": ["ZZ", "CN"], "Flag": ["1", "0"], "Tax": ["5", "8"]})
    m = mapping_from_dict({
        "columns": {"declaration_id": "ID", "declaration_date": "Day", "hs_code": "HS", "conveyance": "Mode",
                    "origin_country": "Orig"},
        "constants": {"direction": "import"},
        "values": {"conveyance": {"10": "vessel", "40": "air"}, "origin_country": {"ZZ": None}},
        "formats": {"hs_code": {"zero_pad": 6}},
        "labels": {"fraud": {"column": "Flag", "equals": 1}},
        "extra_columns": ["Tax"],
    })
    mapped = m.apply(raw)
    out, report = normalize_table(mapped, DECLARATION)
    assert report.ok, report.summary()
    assert out["hs_code"].tolist() == ["010121", "820600"]
    assert out["conveyance"].tolist() == ["vessel", "air"]
    assert out["origin_country"].isna().tolist() == [True, False]
    assert mapped["label_fraud"].tolist() == [True, False]
    assert out["Tax"].tolist() == ["5", "8"]


def test_mapping_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(MappingError, match="not columns of the declaration contract"):
        mapping_from_dict({"columns": {"nonsense": "X"}})
    m = mapping_from_dict({"columns": {"declaration_id": "Missing ID"}})
    with pytest.raises(MappingError, match=r"missing from the data: \['Missing ID'\]"):
        m.apply(pd.DataFrame({"ID": [1]}))
    (tmp_path / "m.yaml").write_text("columns: [unclosed")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(tmp_path / "m.yaml")


def test_kr_mapping_loads_both_shared_files_with_zero_errors(kr_dir: Path):
    m = load_mapping(KR_MAPPING)
    loaded = load_table([kr_dir], DECLARATION, m)  # a folder: both files as one dataset
    assert loaded.ok, loaded.summary()
    assert len(loaded.reports) == 2
    df = loaded.frame
    assert len(df) == 37_385 + 8_134
    assert set(m.labels) == {"fraud", "critical_fraud"}
    assert 0.20 < df["label_fraud"].mean() < 0.23
    assert 0.005 < df["label_critical_fraud"].mean() < 0.02
    assert df["hs_code"].str.len().eq(6).all()  # integer HS6 padded back to six digits
    assert set(df["conveyance"].dropna()) <= {"vessel", "air", "mail", "vehicle", "rail", "other"}
    assert df["declaration_date"].min() == pd.Timestamp("2020-01-01")
    assert df["declaration_date"].max() == pd.Timestamp("2021-03-31")


def test_validate_cli_with_kr_mapping_reports_coverage(kr_dir: Path):
    result = runner.invoke(app, ["validate", "--mapping", str(KR_MAPPING), str(kr_dir / "df_syn_valid_eng.csv")])
    assert result.exit_code == 0, result.output
    assert "hs_code" in result.output and "HS6 Code" in result.output
    assert "not mapped" in result.output and "goods_description" in result.output
    assert "8134 rows" in result.output


def test_mixed_case_vocabulary_is_canonical_and_nulls_stay_null():
    base = {
        "case_id": "C1", "event_date": "2023-01-05", "reporting_country": "AL", "direction": "export",
        "departure_country": "AL", "destination_country": "GB", "conveyance": "mail",
        "detection_method": "x-ray / scanner", "detection_location": "land border", "quantity": 1,
    }
    df = pd.DataFrame([
        {**base, "seizure_id": "S1", "commodity_category": "other weapons", "weapon_type": "PEPPER / cs SPRAY"},
        {**base, "seizure_id": "S2", "commodity_category": "ammunition", "weapon_type": None},
    ])
    out, report = normalize_table(df, SEIZURE)
    assert report.ok, report.summary()
    assert out.loc[0, "weapon_type"] == "pepper / CS spray"
    assert pd.isna(out.loc[1, "weapon_type"])
