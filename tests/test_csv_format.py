"""``riskprof validate`` (and ``features.io``) read latin-1 and semicolon/tab-separated CSV files: a file
in another encoding is named by its first bad byte with the option to pass, a delimiter is detected, and
a wrong explicit one is named, never "corrupt or truncated" or a missing-columns report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contracts import DECLARATION
from features.io import LoadError, csv_format, load_table, parse_delimiter, sniff_delimiter
from riskprof.cli import app
from tests.factories import make_declarations

runner = CliRunner()


@pytest.fixture(scope="module")
def accented() -> pd.DataFrame:
    frame = make_declarations(np.random.default_rng(7), 60)
    frame["goods_description"] = "pièces détachées, acier"  # non-ASCII, and a comma inside a value
    return frame


def _write(frame: pd.DataFrame, path: Path, **kw: str) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%d", **kw)
    return path


def _validate(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["validate", *args])
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception  # no crash
    return res.exit_code, " ".join(res.output.split())  # rich wraps long lines


def test_validate_names_the_byte_of_a_latin1_file_and_passes_with_encoding(accented, tmp_path) -> None:
    path = _write(accented, tmp_path / "latin1.csv", encoding="latin-1")
    code, out = _validate(str(path))
    assert code != 0
    assert "is not utf-8 text: byte 0xe8 at line 2" in out and "--encoding latin-1" in out
    assert "corrupt" not in out and "UnicodeDecodeError" not in out
    code, out = _validate(str(path), "--encoding", "latin-1")
    assert code == 0, out
    assert "60 rows satisfy the declaration contract" in out and "read as latin-1" in out
    # the text comes back as written, not mojibake
    frame = load_table(path, DECLARATION, encoding="latin-1").frame
    assert set(frame["goods_description"]) == {"pièces détachées, acier"}


def test_an_unknown_encoding_is_named(accented, tmp_path) -> None:
    path = _write(accented, tmp_path / "d.csv")
    code, out = _validate(str(path), "--encoding", "klingon")
    assert code == 2 and "unknown encoding 'klingon'" in out


@pytest.mark.parametrize(("sep", "option"), [(";", None), ("\t", None), ("|", None), (";", ";"), ("\t", "tab")])
def test_a_semicolon_or_tab_separated_file_validates_clean(accented, tmp_path, sep, option) -> None:
    comma = _write(accented, tmp_path / "comma.csv")
    other = _write(accented, tmp_path / "other.csv", sep=sep)
    code, out = _validate(str(other), *(["--delimiter", option] if option else []))
    assert code == 0, out
    assert "60 rows satisfy the declaration contract" in out and f"columns separated by {sep!r}" in out
    assert "extra columns" not in out and "missing" not in out
    pd.testing.assert_frame_equal(load_table(other, DECLARATION).frame, load_table(comma, DECLARATION).frame)


def test_a_wrong_explicit_delimiter_names_the_one_in_the_header(accented, tmp_path) -> None:
    path = _write(accented, tmp_path / "semi.csv", sep=";")
    code, out = _validate(str(path), "--delimiter", ",")
    assert code != 0
    assert "separated by ','" in out and "contains ';'" in out and "--delimiter ';'" in out
    assert "extra columns" not in out


def test_a_bad_delimiter_option_is_named(accented, tmp_path) -> None:
    path = _write(accented, tmp_path / "d.csv")
    code, out = _validate(str(path), "--delimiter", ";;")
    assert code == 2 and "--delimiter must be one character or 'tab'" in out


def test_a_plain_utf8_comma_file_is_unchanged(accented, tmp_path) -> None:
    path = _write(accented, tmp_path / "d.csv")
    code, out = _validate(str(path))
    assert code == 0 and "read as" not in out
    assert csv_format(path) == ("utf-8", ",")


def test_format_helpers() -> None:
    assert sniff_delimiter("a;b;c") == ";" and sniff_delimiter("a\tb") == "\t" and sniff_delimiter("a") == ","
    assert sniff_delimiter("a,b;c") == ","  # ties go to the comma
    assert parse_delimiter("tab") == "\t" and parse_delimiter("\\t") == "\t" and parse_delimiter(None) is None
    with pytest.raises(LoadError):
        parse_delimiter("ab")


def test_a_bad_byte_is_located_by_line_and_column(tmp_path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"declaration_id,goods_description\nD1,ok\nD2,caf\xe9\n")
    with pytest.raises(LoadError, match=r"byte 0xe9 at line 3, column 7"):
        csv_format(path)
    assert csv_format(path, encoding="cp1252") == ("cp1252", ",")
