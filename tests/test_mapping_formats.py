"""Column mappings of files written the European way: decimal commas and thousands separators
(``formats: {column: {decimal, thousands}}``), dates as DD.MM.YYYY (``formats: {column: {date}}``),
HS codes a spreadsheet stored as numbers. Through ``mapping.apply`` + the contract, and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from features.contracts import DECLARATION, normalize_table
from features.mapping import MappingError, mapping_from_dict
from riskprof.cli import app

runner = CliRunner()

COLUMNS = {"declaration_id": "ID", "declaration_date": "Date", "hs_code": "HS", "customs_value": "Value"}


def _mapping(**formats: Any) -> Any:
    return mapping_from_dict({"columns": COLUMNS, "formats": formats}, source="m.yaml")


def _raw(values: list[str], dates: list[str] | None = None, hs: list[str] | None = None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"ID": [f"D{i}" for i in range(n)], "Date": dates or ["2023-06-01"] * n,
                         "HS": hs or ["820600"] * n, "Value": values}, dtype="str")


def _checked(mapping: Any, raw: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    return normalize_table(mapping.apply(raw), DECLARATION, source="decl.csv")


# ---- numbers: decimal comma and thousands separators ----------------------------------------------


@pytest.mark.parametrize(("fmt", "written", "meant"), [
    ({"decimal": ",", "thousands": "."}, ["1.234,56", "1234,56", "1.234", "0,5", "1.234.567,8", "12", " 7,25 ",
                                          "-1.000"], [1234.56, 1234.56, 1234, 0.5, 1234567.8, 12, 7.25, -1000]),
    ({"decimal": ","}, ["1234,56", "0,05", "12"], [1234.56, 0.05, 12]),
    ({"decimal": ",", "thousands": " "}, ["1 234,56", "1\u00a0234,56", "1\u202f234", "12 345 678"],
     [1234.56, 1234.56, 1234, 12345678]),
    ({"thousands": ","}, ["1,234.56", "1,234", "1.234", "1234"], [1234.56, 1234, 1.234, 1234]),
    ({"decimal": ".", "thousands": "'"}, ["1'234.56", "12'345"], [1234.56, 12345]),
])
def test_a_declared_number_format_reads_every_value_exactly(fmt: dict, written: list[str], meant: list) -> None:
    out, report = _checked(_mapping(customs_value=fmt), _raw(written))
    assert report.ok or {p.column for p in report.problems} == {"customs_value"}
    values = out["customs_value"].tolist()
    assert values[:len(meant)] == pytest.approx(meant, abs=0, rel=0)  # exactly: the decimal text, parsed once
    # (negative values are read, then refused by the contract as any negative value is)
    assert [p.row for p in report.problems] == [i + 1 for i, v in enumerate(meant) if v < 0]


@pytest.mark.parametrize(("fmt", "wrong"), [
    ({"decimal": ",", "thousands": "."}, ["12.5", "1,2,3", "1.23,4", "1.2345", "1,234.56", "€ 12", "1e3", ","]),
    ({"decimal": ","}, ["1.234", "1.234,56", "12.5"]),
    ({"thousands": ","}, ["1,23", "1.234,56", "12,5"]),
])
def test_a_value_not_in_the_declared_format_is_a_row_problem_naming_row_column_and_value(
        fmt: dict, wrong: list[str]) -> None:
    out, report = _checked(_mapping(customs_value=fmt), _raw(["100", *wrong, ""]))
    assert out["customs_value"].iloc[0] == 100 and np.isnan(out["customs_value"].iloc[-1])  # blank: missing
    assert [(p.row, p.column) for p in report.problems] == [(i + 2, "customs_value") for i in range(len(wrong))]
    for p, w in zip(report.problems, wrong, strict=True):
        assert str(p.value).startswith(w.strip()) and "declared format" in str(p.value)
        assert out["customs_value"].isna().iloc[p.row - 1]


def test_a_number_column_stays_as_it_is_with_a_format() -> None:
    """A Parquet float column holds numbers already: the format is for text."""
    raw = _raw(["1"]).assign(Value=[1234.5])
    out, report = _checked(_mapping(customs_value={"decimal": ",", "thousands": "."}), raw)
    assert report.ok and out["customs_value"].tolist() == [1234.5]


@pytest.mark.parametrize(("formats", "named"), [
    ({"customs_value": {"decimal": ";"}}, "formats.customs_value.decimal"),
    ({"customs_value": {"decimal": ",", "thousands": ","}}, "formats.customs_value"),
    ({"customs_value": {"thousands": "."}}, "formats.customs_value"),  # 1.234 would be 1234 and 1234.5 refused
    ({"customs_value": {"thousands": "_"}}, "formats.customs_value.thousands"),
    ({"customs_value": {"decimal": 1}}, "formats.customs_value.decimal"),
    ({"hs_code": {"decimal": ","}}, "formats.hs_code"),  # not a number column
    ({"customs_value": {"zero_pad": 6, "decimal": ","}}, "formats.customs_value"),
])
def test_a_malformed_number_format_is_a_mapping_error(formats: dict, named: str) -> None:
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        _mapping(**formats)


def test_without_a_format_a_dot_in_a_column_of_decimal_commas_is_refused_not_read_as_a_decimal() -> None:
    """'1.234' meaning one thousand two hundred thirty-four was read as 1.234 without a word, while its
    neighbours '1.234,56' and '12,5' were refused: scoring took the one and rejected the others."""
    out, report = _checked(_mapping(), _raw(["1.234,56", "1.234", "12,5", "7", "0.5"]))
    assert [p.row for p in report.problems] == [1, 2, 3, 5]
    assert out["customs_value"].iloc[3] == 7
    assert "decimal comma" in str(report.problems[1].value) and "formats" in str(report.problems[1].value)
    # without a decimal comma the dot is a decimal point, as today ('1,234.56' is refused, as today)
    out, report = _checked(_mapping(), _raw(["1.234", "0.5", "1,234.56", "1,234"]))
    assert out["customs_value"].tolist()[:2] == [1.234, 0.5] and [p.row for p in report.problems] == [3, 4]


# ---- through the command line and batch scoring -----------------------------------------------------


def _european_csv(path: Path, values: list[str]) -> Path:
    n = len(values)
    lines = ["Declaration ID;Date;HS;Value"] + [f"E{i};2023-06-0{1 + i % 9};820600;{v}" for i, v in enumerate(values)]
    assert n == len(lines) - 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mapping_file(tmp_path: Path, formats: dict) -> Path:
    m = tmp_path / "mapping.yaml"
    m.write_text(json.dumps({"columns": {**COLUMNS, "declaration_id": "Declaration ID"}, "formats": formats}))
    return m


def test_validate_reads_decimal_commas_with_the_format_and_names_the_value_that_does_not_fit(tmp_path: Path) -> None:
    data = _european_csv(tmp_path / "decl.csv", ["1.234,56", "1.234", "0,5"])
    m = _mapping_file(tmp_path, {"customs_value": {"decimal": ",", "thousands": "."}})
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 0, result.output
    _european_csv(data, ["1.234,56", "12.5", "0,5"])
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 1, result.output
    assert "row 2, column 'customs_value': got '12.5 (not the declared format 1.234,56)'" in result.output
    assert "Traceback" not in result.output
    # without the format: '1.234' next to decimal commas is no longer taken as 1.234
    plain = _mapping_file(tmp_path, {})
    _european_csv(data, ["1.234,56", "1.234"])
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(plain)])
    assert result.exit_code == 1 and "row 2, column 'customs_value': got '1.234 (" in result.output, result.output


def test_score_reads_the_format_and_rejects_the_row_that_does_not_fit(tiny_model: Any, tmp_path: Path) -> None:
    from batch import BatchOptions, score_manifest
    from tests.conftest import TinyRegistry
    from tests.factories import make_declarations

    frame = make_declarations(np.random.default_rng(7), 12, start="2023-06-01", days=10)
    written = [f"{v:,.2f}".replace(",", " ").replace(".", ",") for v in frame["customs_value"]]
    written[4] = "1234.5"
    frame = frame.assign(customs_value=written)
    manifest = tmp_path / "tonight.csv"
    frame.to_csv(manifest, index=False, sep=";")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(json.dumps({"columns": {c: c for c in frame.columns if c in DECLARATION.columns},
                                   "formats": {"customs_value": {"decimal": ",", "thousands": " "}}}))
    out = tmp_path / "scores.parquet"
    summary = score_manifest(manifest, out, "models:/tiny/1", BatchOptions(capacity="10%", chunk_rows=5,
                                                                           pipelined=False),
                             mapping=mapping, load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert (summary.counts.rows_scored, summary.counts.rows_rejected) == (11, 1)
    rejects = pd.read_csv(summary.paths.rejects, dtype=str)
    assert rejects[["row", "column"]].values.tolist() == [["5", "customs_value"]]
    assert rejects["value"].iloc[0] == "1234.5 (not the declared format 1 234,56)"


# ---- dates: DD.MM.YYYY and other declared formats ---------------------------------------------------


@pytest.mark.parametrize(("fmt", "written", "meant"), [
    ("%d.%m.%Y", ["15.03.2023", "5.3.2023", "31.12.2023", " 01.02.2023 "],
     ["2023-03-15", "2023-03-05", "2023-12-31", "2023-02-01"]),
    ("%d/%m/%Y", ["03/04/2023", "13/04/2023", "12/01/2023"], ["2023-04-03", "2023-04-13", "2023-01-12"]),
    ("%d.%m.%Y %H:%M", ["15.03.2023 10:30", "01.02.2023 00:00"], ["2023-03-15 10:30", "2023-02-01"]),
    ("%d-%b-%Y", ["15-Mar-2023", "01-feb-2023"], ["2023-03-15", "2023-02-01"]),
])
def test_a_declared_date_format_reads_every_date_day_first(fmt: str, written: list[str], meant: list[str]) -> None:
    raw = _raw(["1"] * len(written), dates=written)
    out, report = _checked(_mapping(declaration_date={"date": fmt}), raw)
    assert report.ok, report.summary()
    assert out["declaration_date"].tolist() == [pd.Timestamp(d) for d in meant]


def test_a_date_not_in_the_declared_format_is_a_row_problem_never_read_month_first() -> None:
    """'04/13/2023' (month first) in a DD/MM/YYYY file, an ISO date, a two-digit year, 31 February, a time the
    format does not write: each a problem of its row quoting the value, none read another way."""
    wrong = ["04/13/2023", "2023-04-13", "13/04/23", "31/02/2023", "13/04/2023 10:00", "13.04.2023", "soon"]
    raw = _raw(["1"] * (len(wrong) + 2), dates=["13/04/2023", *wrong, ""])
    out, report = _checked(_mapping(declaration_date={"date": "%d/%m/%Y"}), raw)
    assert out["declaration_date"].iloc[0] == pd.Timestamp("2023-04-13")
    dates = [p for p in report.problems if p.column == "declaration_date"]
    assert [p.row for p in dates] == list(range(2, len(wrong) + 3))  # the blank: a required value missing
    for p, w in zip(dates[:-1], wrong, strict=True):
        assert p.value == f"{w} (not the declared format %d/%m/%Y)"
    assert dates[-1].expected == "a value (column is required)"
    assert out["declaration_date"].iloc[1:].isna().all()


def test_a_date_column_stays_as_it_is_with_a_format() -> None:
    raw = _raw(["1"]).assign(Date=[pd.Timestamp("2023-06-01")])
    out, report = _checked(_mapping(declaration_date={"date": "%d.%m.%Y"}), raw)
    assert report.ok and out["declaration_date"].tolist() == [pd.Timestamp("2023-06-01")]


@pytest.mark.parametrize(("formats", "named"), [
    ({"customs_value": {"date": "%d.%m.%Y"}}, "formats.customs_value"),  # not a date column
    ({"declaration_date": {"date": 20230601}}, "formats.declaration_date.date"),
    ({"declaration_date": {"date": "%m.%Y"}}, "formats.declaration_date.date"),  # no day
    ({"declaration_date": {"date": "%d.%m"}}, "formats.declaration_date.date"),  # no year
    ({"declaration_date": {"date": "%d.%Q.%Y"}}, "formats.declaration_date.date"),
    ({"declaration_date": {"date": "DD.MM.YYYY"}}, "formats.declaration_date.date"),
    ({"declaration_date": {"date": "%d.%m.%Y", "zero_pad": 8}}, "formats.declaration_date"),
    ({"declaration_date": {"date": "%d.%m.%Y", "decimal": ","}}, "formats.declaration_date"),
])
def test_a_malformed_date_format_is_a_mapping_error(formats: dict, named: str) -> None:
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        _mapping(**formats)


def test_validate_reads_day_first_dates_with_the_format_and_names_the_date_that_does_not_fit(tmp_path: Path) -> None:
    data = tmp_path / "decl.csv"
    data.write_text("Declaration ID;Date;HS;Value\nE1;15.03.2023;820600;1.234,56\nE2;01.04.2023;820600;7\n")
    m = _mapping_file(tmp_path, {"declaration_date": {"date": "%d.%m.%Y"},
                                 "customs_value": {"decimal": ",", "thousands": "."}})
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 0, result.output
    assert "2 rows satisfy the declaration contract" in result.output
    data.write_text("Declaration ID;Date;HS;Value\nE1;15.03.2023;820600;1.234,56\nE2;04/01/2023;820600;7\n")
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 1, result.output
    assert "row 2, column 'declaration_date': got '04/01/2023 (not the declared format %d.%m.%Y)'" in result.output
    # the loaders train and evaluate use read the same dates and numbers
    from features.io import load_table
    from features.mapping import load_mapping

    data.write_text("Declaration ID;Date;HS;Value\nE1;15.03.2023;820600;1.234,56\nE2;01.04.2023;820600;7\n")
    frame = load_table([data], DECLARATION, load_mapping(m)).frame
    assert frame["declaration_date"].tolist() == [pd.Timestamp("2023-03-15"), pd.Timestamp("2023-04-01")]
    assert frame["customs_value"].tolist() == [1234.56, 7.0]


# ---- HS codes that lost their leading zero ----------------------------------------------------------


def _codes_csv(path: Path, codes: list[str]) -> Path:
    lines = ["Declaration ID;Date;HS;Value;Fraud"] + [
        f"E{i};2023-06-{1 + i % 20:02d};{c};100;{i % 3 == 0:d}" for i, c in enumerate(codes)]
    path.write_text("\n".join(lines) + "\n")
    return path


#: ten-digit national codes; '0101210000' (chapter 01) exported by a spreadsheet that stored it as a number
TEN = ["8206000000", "9403200000", "8471300000", "101210000", "6109100010", "302110000", "8703231990"]


def test_a_mapping_warns_when_codes_one_digit_shorter_mix_with_the_others() -> None:
    m = _mapping()
    raw = _raw(["1"] * len(TEN), hs=TEN)
    (warning,) = m.warnings(m.apply(raw), source="decl.csv")
    assert warning.startswith("decl.csv: hs_code (source column 'HS'): 2 of 7 codes have 9 digits where 5 have 10")
    assert "row 4: '101210000'" in warning and "formats: {hs_code: {zero_pad: 10}}" in warning
    # padded as the warning says: no warning, and the codes are their chapters' again
    padded = _mapping(hs_code={"zero_pad": 10})
    assert padded.warnings(padded.apply(raw)) == []
    assert padded.apply(raw)["hs_code"].iloc[3] == "0101210000"


@pytest.mark.parametrize("codes", [
    ["820600", "94032000", "8471300000", "610910"],  # HS6, CN8 and TARIC10 together: lengths two apart
    ["8206000000", "9403200000"],
    ["101210", "820600"],  # six digits (a five-digit code is refused by the contract)
    ["", "8206000000"],
])
def test_codes_of_lengths_a_nomenclature_uses_together_raise_no_warning(codes: list[str]) -> None:
    m = _mapping()
    assert m.warnings(m.apply(_raw(["1"] * len(codes), hs=codes))) == []


def test_validate_train_and_evaluate_warn_of_codes_that_lost_their_zero(tmp_path: Path) -> None:
    from training.data import load_training_set

    data = _codes_csv(tmp_path / "decl.csv", TEN * 3)
    doc = {"columns": {**COLUMNS, "declaration_id": "Declaration ID"},
           "labels": {"fraud": {"column": "Fraud", "equals": 1}}}
    m = tmp_path / "mapping.yaml"
    m.write_text(json.dumps(doc))
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 0, result.output  # a warning, not a problem: the codes are valid codes
    text = " ".join(result.output.split())
    assert "warning: " in text and "hs_code (source column 'HS'): 6 of 21 codes have 9 digits where 15 have 10" in text
    assert "formats: {hs_code: {zero_pad: 10}}" in text
    ts = load_training_set([data], mapping=m, label="fraud")  # train and evaluate print its notes
    assert any("zero_pad: 10" in n for n in ts.notes)
    m.write_text(json.dumps({**doc, "formats": {"hs_code": {"zero_pad": 10}}}))
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(m)])
    assert result.exit_code == 0 and "warning" not in result.output, result.output


# ---- one path: the workbench upload; exactness for any number ---------------------------------------


def test_the_workbench_upload_reads_the_formats_and_names_what_does_not_fit(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.web.manifests as manifests

    (tmp_path / "eu").mkdir()
    _mapping_file(tmp_path / "eu", {"declaration_date": {"date": "%d.%m.%Y"},
                                    "customs_value": {"decimal": ",", "thousands": "."}})
    monkeypatch.setattr(manifests, "EXAMPLES", tmp_path)  # the upload form offers the mappings found there
    header = b"Declaration ID;Date;HS;Value\n"
    (record,) = manifests.read_manifest(header + b"E1;15.03.2023;820600;1.234,56\n", "m.csv", "eu", 10)
    assert (str(record["declaration_date"]), record["customs_value"]) == ("2023-03-15", 1234.56)
    with pytest.raises(manifests.ManifestProblem) as exc:
        manifests.read_manifest(header + b"E1;15.03.2023;820600;1.234,56\nE2;2023-03-16;820600;12.5\n", "m.csv",
                                "eu", 10)
    assert exc.value.lines == [
        "row 2, column declaration_date: expected a date (YYYY-MM-DD) (value '2023-03-16 (not the declared format "
        "%d.%m.%Y)')", "row 2, column customs_value: expected a number (value '12.5 (not the declared format "
        "1.234,56)')"]


@settings(max_examples=200, deadline=None)
@given(whole=st.integers(0, 10**12), decimals=st.sampled_from(["", "0", "5", "05", "25", "999"]),
       fmt=st.sampled_from([(",", "."), (",", " "), (".", ","), (".", "'"), (",", None), (".", None)]))
def test_any_number_written_in_a_declared_format_reads_as_its_decimal_text(whole: int, decimals: str,
                                                                            fmt: tuple[str, str | None]) -> None:
    from features.mapping import NumberFormat

    decimal, thousands = fmt
    grouped = f"{whole:,}".replace(",", thousands or "")
    written = grouped + (decimal + decimals if decimals else "")
    (read,) = NumberFormat(decimal, thousands).read(pd.Series([written], dtype="str")).tolist()
    assert read == f"{whole}" + (f".{decimals}" if decimals else "")
