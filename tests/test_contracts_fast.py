"""The Arrow/NumPy validator gives what the pandas one it replaced gave: same frame, same problems.

``features.contracts._reference_normalize_table`` is the previous implementation, kept as the oracle.
Every comparison runs both on the same input: generated declarations, outcomes and seizures with
faults injected in every column kind, as Parquet, CSV (all text) and object columns would hand them
over, and arbitrary text per field kind (hypothesis).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contracts import (
    CONTRACTS,
    DECLARATION,
    OUTCOME,
    SEIZURE,
    Contract,
    FieldSpec,
    _reference_normalize_table,
    _surely_unique,
    normalize_table,
)

MAX_DATE = pd.Timestamp("2025-06-30")

# values a messy file really holds, per field kind (whitespace of every sort, case, separators, junk)
JUNK: dict[str, list[object]] = {
    "id": ["", "   ", None, " D1 ", "D1\u00a0", "\u3000D2", "x" * 201, "é" * 150 + "e" * 60, "\tD3\n", "D\x004"],
    "str": ["", "  ", None, " YE-ADE ", "\u2003x", "é" * 201, "ok\u00a0", "y" * 1001, "\x00", " a\x00b "],
    "date": ["", " ", None, "2023-13-01", "yesterday", "1989-12-31", "2031-01-01", " 2023-06-01 ",
             "2023/06/01", "01.06.2023", "2023-06-01 10:00"],
    "country": ["", " ", None, "cn", " CN ", "XX", "C N", "\u00a0de", "ÇN", "us\t", "USA", "x" * 30],
    "countries": ["", " ", None, "cn|ae", "CN, AE", "CN;AE", "CN AE", "|CN|", "CN||AE", "XX|CN", "cn|x",
                  "|".join(["CN"] * 80), " ae ", "ÄE", "C\u00a0N"],
    "hs": ["", " ", None, "8206.00", "820600.0", "8206 00", "82060", "82060012345", "abcdef", "８２０６００",
           " 820600 ", "820600\u00a0", "0820600", "8206.00.10"],
    "category": ["", " ", None, "IMPORT", " export ", "smuggling", "Vessel", "x" * 120, "AIR\u00a0",
                 "Pepper / cs spray", "pepper / CS spray ", "revolver"],
    "float": ["", " ", None, "-1", "abc", "inf", "-inf", "1e400", "NaN", " 12 ", "1,5", "2.5", "0x10"],
    "int": ["", None, "-1", "abc", "inf", "7"],
    "bool": ["", " ", None, "yes", "NO", "maybe", "1", "0.0", "T", " true ", "2"],
}
JUNK["id"] += ["D0000001"]  # a duplicate of the first generated key


def _inject(df: pd.DataFrame, contract: Contract, rng: np.random.Generator, rate: float) -> pd.DataFrame:
    """``df`` as text (as a CSV reader gives it) with a share ``rate`` of each column replaced by junk."""
    out = pd.DataFrame({c: df[c].astype(object).where(df[c].notna(), None) for c in df.columns})
    for c in out.columns:
        if c not in contract.columns:
            continue
        col = out[c].map(lambda v: v if v is None or isinstance(v, str) else _text(v)).to_numpy(dtype=object)
        hit = np.flatnonzero(rng.random(len(col)) < rate)
        junk = JUNK[contract.spec(c).kind]
        col[hit] = [junk[i] for i in rng.integers(0, len(junk), len(hit))]
        out[c] = col
    return out


def _text(v: object) -> str:
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    return str(v)


def _assert_same(df: pd.DataFrame, contract: Contract, **kw: object) -> None:
    ref_out, ref = _reference_normalize_table(df.copy(), contract, max_date=MAX_DATE, **kw)  # type: ignore[arg-type]
    out, report = normalize_table(df.copy(), contract, max_date=MAX_DATE, **kw)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(out, ref_out)
    assert list(out.columns) == list(ref_out.columns)
    assert report.problems == ref.problems
    assert [str(p) for p in report.problems] == [str(p) for p in ref.problems]
    assert [list(v.items()) for v in report.unknown_values.values()] == \
        [list(v.items()) for v in ref.unknown_values.values()]
    assert list(report.unknown_values) == list(ref.unknown_values)
    assert (report.rows, report.missing_optional, report.extra_columns) == \
        (ref.rows, ref.missing_optional, ref.extra_columns)


@pytest.fixture(scope="module")
def tables(synthetic_data: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {"declaration": pd.read_parquet(synthetic_data["declarations"]).head(6000),
            "outcome": pd.read_parquet(synthetic_data["outcomes"]).head(3000),
            "seizure": pd.read_parquet(synthetic_data["seizures"]).head(3000)}


@pytest.mark.parametrize("name", ["declaration", "outcome", "seizure"])
def test_clean_generated_tables_match_the_reference(tables: dict[str, pd.DataFrame], name: str) -> None:
    df = tables[name]
    _assert_same(df, CONTRACTS[name])
    _assert_same(df, CONTRACTS[name], source="f.parquet", row_offset=1000)


@pytest.mark.parametrize("name", ["declaration", "outcome", "seizure"])
@pytest.mark.parametrize("form", ["csv", "str", "object"])
def test_generated_tables_with_faults_match_the_reference(tables: dict[str, pd.DataFrame], name: str,
                                                          form: str) -> None:
    contract = CONTRACTS[name]
    messy = _inject(tables[name], contract, np.random.default_rng(len(name) + len(form)), rate=0.03)
    if form == "str":  # pandas' own text dtype (Arrow-backed), as read_csv(dtype=str) makes it
        messy = messy.astype("str")
    elif form == "csv":
        messy = messy.fillna("").astype("str").replace("", np.nan)  # read_csv(na_values=[""]): "" is missing
    _, ref = _reference_normalize_table(messy, contract, max_date=MAX_DATE)
    assert len(ref.problems) > 100  # the faults are there: the comparison below means something
    _assert_same(messy, contract, source="f.csv", row_offset=50_000)


def test_typed_columns_with_faults_match_the_reference(tables: dict[str, pd.DataFrame]) -> None:
    """Parquet-typed input (dates, numbers, booleans), text columns messy, a few bad numbers and dates."""
    rng = np.random.default_rng(7)
    df = tables["declaration"].copy()
    text = [f.name for f in DECLARATION.fields if f.kind not in ("date", "float")]
    messy = _inject(df[text], DECLARATION, rng, rate=0.05).astype("str")
    for c in text:
        df[c] = messy[c]
    df.loc[df.index[::97], "quantity"] = -1.0
    df.loc[df.index[::89], "customs_value"] = np.inf
    df.loc[df.index[::83], "gross_weight_kg"] = np.nan
    df.loc[df.index[::79], "declaration_date"] = pd.Timestamp("1980-01-01")
    df.loc[df.index[::73], "declaration_date"] = pd.NaT
    df["declaration_date"] = df["declaration_date"].dt.tz_localize("UTC")
    df["extra_flag"] = rng.random(len(df)) < 0.5
    _assert_same(df, DECLARATION, source="m.parquet")
    outcomes = tables["outcome"].copy()
    outcomes.loc[outcomes.index[::11], "inspected"] = False
    outcomes.loc[outcomes.index[::13], "hit"] = True
    outcomes.loc[outcomes.index[::17], ["selection_source", "selection_probability"]] = ["random", 0.0]
    _assert_same(outcomes, OUTCOME)


def test_lists_missing_columns_and_small_frames_match_the_reference() -> None:
    api_like = pd.DataFrame({
        "declaration_id": ["A", "B", "A", None], "declaration_date": ["2023-01-01", None, "2023-02-30", ""],
        "transit_countries": [["AE", "tr"], [], None, ["XX"]], "hs_code": [820600, None, 12, 8206.0],
        "quantity": [1, "2", None, "x"], "weird": [1, 2, 3, 4],
    }, index=[10, 10, 11, 12])  # a repeated index label too
    _assert_same(api_like, DECLARATION)
    _assert_same(api_like.head(0), DECLARATION)
    _assert_same(pd.DataFrame({"declaration_id": ["A"]}), DECLARATION)
    seizures = pd.DataFrame({"case_id": ["C1", "C1"], "seizure_id": ["S1", "S1"], "event_date": ["2023-01-01"] * 2,
                             "reporting_country": ["al", "ZZ"], "region": [None, "Europe"],
                             "weapon_type": ["REVOLVER", "Pepper / cs spray"]})
    _assert_same(seizures, SEIZURE)


def test_non_text_dtypes_in_text_fields_match_the_reference() -> None:
    df = pd.DataFrame({
        "declaration_id": pd.Series([1, 2, 2, 3]), "declaration_date": pd.Series([20230101, 1, 2, 3]),
        "direction": pd.Categorical(["import", "", "EXPORT", None]),
        "origin_country": pd.Series([True, False, True, True]), "hs_code": pd.Series([820600.0, np.nan, 1.5, 1e7]),
        "conveyance": pd.Series([1.0, np.nan, 2.0, 3.0]), "quantity": pd.Series([True, False, True, False]),
    })
    _assert_same(df, DECLARATION)


def test_decimal_text_read_by_arrow_matches_pandas_to_the_bit() -> None:
    """Numbers as text (CSV) within the Arrow cast's charset: every value the same float, bit for bit."""
    rng = np.random.default_rng(11)
    mantissa = rng.integers(0, 10**12, 4000)
    scale = 10.0 ** rng.integers(0, 10, 4000)
    shapes = [f"{m / s:.{int(np.log10(s))}f}" for m, s in zip(mantissa, scale, strict=True)]
    shapes += ["0.1", "0.2", "0.3", ".5", "5.", "-.5", "007", "123456789012345", "999999999999999", "0.000000000001"]
    for extra in ([], ["-0"], ["1-2"], ["1.2.3"], ["1234567890123456"]):
        values = pd.Series(shapes + extra, dtype="str")
        df = pd.DataFrame({"declaration_id": [f"D{i}" for i in range(len(values))], "hs_code": "820600",
                           "declaration_date": "2023-01-01", "quantity": values, "customs_value": values})
        _assert_same(df, DECLARATION)
        out, _ = normalize_table(df, DECLARATION)
        expected = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        assert np.array_equal(out["quantity"].to_numpy().view(np.int64), expected.view(np.int64))


KIND_SPECS = {kind: Contract(name="one", key="k", date_field="d",
                             fields=(FieldSpec("k", "id"), FieldSpec("v", kind, nullable=nullable, vocab=vocab,
                                                                     strict=strict, minimum=0, maximum=10)))
              for kind, nullable, vocab, strict in [("id", False, (), True), ("str", True, (), True),
                                                    ("date", False, (), True), ("country", True, (), True),
                                                    ("countries", True, (), True), ("hs", False, (), True),
                                                    ("category", False, ("Aa", "b c"), True),
                                                    ("category", True, ("Aa", "b c"), False),
                                                    ("float", False, (), True), ("bool", False, (), True)]}
SPACES = " \t\n\u00a0\u2003\u3000\u200b\u0085\ufeff"


@pytest.mark.slow
@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(KIND_SPECS)), strict=st.booleans(),
       values=st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("AaBbCcEeNnZz09|,;.é") +
                                                                             list(SPACES) + ["８", "\x00"]), max_size=12),
                                 st.sampled_from(["2023-06-01", " cn ", "AE|TR", "820600", "b c", "True", "1e3"])),
                       min_size=1, max_size=25))
def test_arbitrary_text_per_field_kind_matches_the_reference(kind: str, strict: bool, values: list) -> None:
    contract = KIND_SPECS[kind]
    df = pd.DataFrame({"k": [f"k{i % 7}" for i in range(len(values))], "v": values})
    _assert_same(df, contract)
    _assert_same(df.astype("str"), contract)


def test_duplicate_keys_are_found_whatever_their_order_and_lengths() -> None:
    rng = np.random.default_rng(3)
    keys = np.array([f"D{i:07d}" for i in range(5000)] + [f"LONGER-KEY-{i:09d}" for i in range(3000)], dtype=object)
    rng.shuffle(keys)
    df = pd.DataFrame({"declaration_id": keys, "hs_code": "820600", "declaration_date": "2023-01-01"})
    _assert_same(df, DECLARATION)  # unique, unordered: the sorted check
    for dup_at in (10, 6000):
        with_dup = df.copy()
        with_dup.loc[dup_at + 1, "declaration_id"] = with_dup.loc[dup_at, "declaration_id"]
        _, report = normalize_table(with_dup, DECLARATION)
        assert [p.row for p in report.problems] == [dup_at + 2]
        _assert_same(with_dup, DECLARATION)


@pytest.mark.parametrize("keys, unique", [
    (["a", "b", "c"], True), (["c", "b", "a"], True), (["a", "b", "a"], False), ([None, None, "a"], True),
    (["ab", "a", "b"], True), (["x" * 20 + "1", "x" * 20 + "0", "x" * 20 + "1"], False),
    (["x" * 20 + "1", "x" * 20 + "0", "y" * 20], True), (["", "a"], True)])
def test_surely_unique_never_calls_repeated_keys_unique(keys: list, unique: bool) -> None:
    import pyarrow as pa

    assert _surely_unique(pa.array(keys, pa.large_string())) is unique
