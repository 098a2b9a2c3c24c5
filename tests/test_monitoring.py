"""Monitoring figures on a handmade selection-and-outcome set, each computed by hand; IPW unbiasedness."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from monitoring import (
    build_monitoring,
    declaration_features,
    ipw_rate,
    precision_at_rate,
    psi,
    reliability,
    selections_from_batch,
    wilson_interval,
    write_monitoring,
)
from scoring import select_for_inspection

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
LANES = ["red", "red", "red", "red", "yellow", "yellow", "yellow", "green", "green", "green"]


def handmade() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Week of 2024-01-01: ten items scored, A1 A2 by the model, A5 A8 at random (p = 2/8); a rule pick R1
    and an officer pick O1 with no selection record. Week of 2024-01-08: B1 by the model."""
    ids = [f"A{i}" for i in range(1, 11)]
    selection = ["model", "model", "none", "none", "random", "none", "none", "random", "none", "none"]
    prob = [1.0, 1.0] + [0.25] * 8
    sel = pd.DataFrame({"declaration_id": ids + ["B1"],
                        "created_at": [pd.Timestamp("2024-01-02T10:00", tz="UTC")] * 10
                        + [pd.Timestamp("2024-01-09T10:00", tz="UTC")],
                        "risk_score": SCORES + [0.7], "lane": LANES + ["red"],
                        "selection": selection + ["model"], "selection_probability": prob + [1.0]})
    out = pd.DataFrame({
        "declaration_id": ["A1", "A2", "A5", "A8", "R1", "O1", "B1"],
        "inspected_date": pd.to_datetime(["2024-01-03", "2024-01-03", "2024-01-04", "2024-01-04", "2024-01-03",
                                          "2024-01-04", "2024-01-10"]),
        "inspected": True,
        "selection_source": [None, None, None, None, "rule", "officer", "model"],
        "selection_probability": [np.nan, np.nan, np.nan, np.nan, 1.0, np.nan, 1.0],
        "hit": [True, False, True, False, True, False, True],
    })
    return sel, out


def test_wilson_interval_of_one_in_two_is_the_textbook_value() -> None:
    low, high = wilson_interval(1, 2)
    assert low == pytest.approx(0.0945, abs=1e-4) and high == pytest.approx(0.9055, abs=1e-4)
    assert wilson_interval(0, 0) == (None, None)
    low0, high0 = wilson_interval(0, 100)
    assert low0 == pytest.approx(0.0, abs=1e-12) and high0 == pytest.approx(0.0370, abs=1e-4)  # zero hits still bound the rate


def test_weekly_hit_rates_by_source_computed_by_hand() -> None:
    sel, out = handmade()
    res = build_monitoring(sel, out, inspection_rate=0.2)
    assert [w["week"] for w in res["weeks"]] == ["2024-01-01", "2024-01-08"]
    w1 = res["weeks"][0]
    assert (w1["inspections"], w1["hits"]) == (6, 3)
    src = {s: (v["inspections"], v["hits"]) for s, v in w1["by_source"].items()}
    assert src == {"model": (2, 1), "rule": (1, 1), "random": (2, 1), "officer": (1, 0)}
    assert w1["by_source"]["model"]["low"] == pytest.approx(wilson_interval(1, 2)[0])
    overall = res["overall"]["by_source"]
    assert (overall["model"]["inspections"], overall["model"]["hits"]) == (3, 2)
    assert overall["model"]["rate"] == pytest.approx(2 / 3)
    # an outcome with no selection source and no selection on record counts as "unknown": the sources
    # add up to the inspections (the overall count had it, the sources did not)
    stray = pd.DataFrame({"declaration_id": ["Z9"], "inspected_date": pd.to_datetime(["2024-01-04"]),
                          "inspected": True, "selection_source": [None], "selection_probability": [np.nan],
                          "hit": [True]})
    with_stray = build_monitoring(sel, pd.concat([out, stray], ignore_index=True), inspection_rate=0.2)
    w1 = with_stray["weeks"][0]
    assert w1["by_source"]["unknown"]["inspections"] == 1
    assert sum(v["inspections"] for v in w1["by_source"].values()) == w1["inspections"] == 7


def test_ipw_overall_rate_computed_by_hand() -> None:
    # certain items A1 (hit), A2, R1 (hit): 2 hits of 3; random A5 (hit), A8 at p = 1/4 stand for 8 items,
    # weighted rate 1/2 at an effective size of 8² / (16 + 16) = 2 draws; officer O1 has no probability.
    sel, out = handmade()
    ipw = build_monitoring(sel, out, inspection_rate=0.2)["weeks"][0]["ipw_overall"]
    assert ipw["estimate"] == pytest.approx((2 + 8 * 0.5) / 11)
    low, high = wilson_interval(1, 2)
    assert ipw["low"] == pytest.approx((2 + 8 * low) / 11)
    assert ipw["high"] == pytest.approx((2 + 8 * high) / 11)
    assert ipw["random_inspections"] == 2 and ipw["weighted_items"] == pytest.approx(11)
    # with the population known (Horvitz-Thompson): the same sums over N
    ht = ipw_rate(np.array([1, 0, 1, 1, 0]), np.array([1, 1, 1, 0.25, 0.25]), population=20)
    assert ht["estimate"] == pytest.approx((2 + 4) / 20)
    # a tiny probability is a huge weight: the effective size is a ratio of sums, computed without
    # squaring 1e300 (an OverflowError in `riskprof monitor` before)
    tiny = ipw_rate(np.array([1, 0, 1]), np.array([1e-300, 1e-300, 0.5]))
    assert tiny["estimate"] == pytest.approx(0.5) and np.isfinite(tiny["low"]) and np.isfinite(tiny["high"])
    # subnormal: 1/p is inf, and the estimate was NaN beside an interval of [1, 1]
    sub = ipw_rate(np.array([0, 1, 0]), np.array([1e-320, 0.1, 1.0]))
    assert sub["estimate"] == pytest.approx(0.0) and 0.0 <= sub["low"] <= sub["high"] < 1.0
    assert sub["weighted_items"] is None  # 1e320 items: no finite count


def test_precision_at_inspection_rate_and_coverage_by_hand() -> None:
    sel, out = handmade()
    prec = build_monitoring(sel, out, inspection_rate=0.2)["weeks"][0]["precision_at_rate"]
    # top 20 % of ten scores = 0.9 and 0.8 (A1 hit, A2 miss)
    assert prec["threshold"] == pytest.approx(0.8)
    assert (prec["top_items"], prec["labelled"], prec["precision"], prec["coverage"]) == (2, 2, 0.5, 1.0)
    # at 50 %: threshold 0.5; labelled among the top are A1, A2 (p 1) and A5 (p 1/4, hit): (1 + 4) / (1 + 1 + 4)
    p50 = precision_at_rate(np.array(SCORES), np.array([0.9, 0.8, 0.5, 0.2]), np.array([1, 0, 1, 0]),
                            np.array([1, 1, 0.25, 0.25]), 0.5)
    assert p50["precision"] == pytest.approx(5 / 6) and p50["coverage"] == pytest.approx(3 / 5)


def test_reliability_curve_and_ece_by_hand() -> None:
    sel, out = handmade()
    cal = build_monitoring(sel, out, inspection_rate=0.2)["weeks"][0]["calibration"]
    # model and random items only: (0.9, hit, w1) (0.8, miss, w1) (0.5, hit, w4) (0.2, miss, w4)
    assert [(b["bin_low"], b["observed"]) for b in cal["bins"]] == [(0.2, 0.0), (0.5, 1.0), (0.8, 0.0), (0.9, 1.0)]
    assert cal["ece"] == pytest.approx((4 * 0.2 + 4 * 0.5 + 1 * 0.8 + 1 * 0.1) / 10)
    two_in_a_bin = reliability(np.array([0.31, 0.35]), np.array([1, 0]), np.array([1.0, 3.0]))
    assert two_in_a_bin["ece"] == pytest.approx(abs((0.31 + 3 * 0.35) / 4 - 0.25))


def test_lane_volumes_and_warning_when_calibration_crosses_its_band() -> None:
    sel, out = handmade()
    res = build_monitoring(sel, out, inspection_rate=0.2)
    assert res["weeks"][0]["lanes"] == {"red": 4, "yellow": 3, "green": 3, "scored": 10}
    assert res["weeks"][1]["lanes"] == {"red": 1, "yellow": 0, "green": 0, "scored": 1}
    assert any(w.startswith("WARNING calibration") for w in res["warnings"])
    calm = build_monitoring(sel, out, inspection_rate=0.2, ece_band=0.9)
    assert not any("calibration" in w for w in calm["warnings"])


def test_since_keeps_later_weeks_only() -> None:
    sel, out = handmade()
    res = build_monitoring(sel, out, since="2024-01-08", inspection_rate=0.2)
    assert [w["week"] for w in res["weeks"]] == ["2024-01-08"]
    assert res["overall"]["inspections"] == 1 and res["overall"]["lanes"]["scored"] == 1


def test_a_period_with_nothing_in_it_is_warned_not_reported_as_empty_figures() -> None:
    """`monitor --since 2030-01-01` wrote an empty report and exited 0 without a word."""
    sel, out = handmade()
    res = build_monitoring(sel, out, since="2030-01-01", inspection_rate=0.2)
    assert res["weeks"] == [] and res["warnings"] == [
        "WARNING nothing to monitor: no declaration scored and no outcome counted from 2030-01-01 on"]
    empty = build_monitoring(None, out.iloc[:0], inspection_rate=0.2)
    assert empty["warnings"] == ["WARNING nothing to monitor: no declaration scored and no outcome counted"]
    assert not any("nothing" in w for w in build_monitoring(sel, out, inspection_rate=0.2)["warnings"])


def test_since_mid_week_counts_no_outcome_from_before_that_day() -> None:
    """--since 2024-01-04 (a Thursday): the outcomes of items scored on 2024-01-02 (and of R1, inspected on
    the 3rd, no selection record) are before the first day reported; only O1 (inspected on the 4th) and
    B1 remain. The week's figures counted every outcome of the week of 2024-01-01."""
    sel, out = handmade()
    res = build_monitoring(sel, out, since="2024-01-04", inspection_rate=0.2)
    assert res["overall"]["inspections"] == 2, res["overall"]
    assert res["overall"]["by_source"]["officer"]["inspections"] == 1
    assert res["overall"]["by_source"]["model"]["inspections"] == 1  # B1, scored on the 9th
    assert res["overall"]["by_source"]["rule"]["inspections"] == 0
    assert res["overall"]["lanes"]["scored"] == 1


def test_psi_by_hand_and_drift_warning_bands() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    recent = pd.Series(["a"] * 80 + ["b"] * 20)
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi(ref, recent) == pytest.approx(expected)
    nums = pd.Series(np.arange(100, dtype=float))
    assert psi(nums, nums) == pytest.approx(0.0)
    shifted = psi(nums, pd.Series(np.full(50, 99.0)))  # all in the top decile
    assert shifted == pytest.approx(0.9 * math.log(10) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1))
    sel, out = handmade()
    res = build_monitoring(sel, out, reference_features=pd.DataFrame({"route": ref, "same": ref}),
                           recent_features=pd.DataFrame({"route": recent, "same": ref}), inspection_rate=0.2)
    assert [(r["feature"], r["band"]) for r in res["drift"]] == [("route", "significant"), ("same", "stable")]
    assert any(w.startswith("WARNING drift: route PSI") for w in res["warnings"])
    assert not any("same" in w for w in res["warnings"])


def test_no_random_stratum_is_warned_not_estimated() -> None:
    sel, out = handmade()
    res = build_monitoring(sel[sel["selection"] != "random"], out[out["selection_source"].notna()],
                           inspection_rate=0.2)
    assert res["overall"]["ipw_overall"]["estimate"] is None
    assert any("no random-stratum" in w for w in res["warnings"])


def test_ipw_estimate_is_unbiased_and_covers_the_truth_across_seeds() -> None:
    """Known truth: 20,000 items, the model takes the 800 riskiest by a noisy score, 200 are drawn at random
    from the rest (the production selection); the estimate is compared with the realised rate of all items."""
    errors, covered = [], 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = 20_000
        logit = rng.normal(-4.0, 1.2, n)
        y = rng.random(n) < 1 / (1 + np.exp(-logit))
        score = logit + rng.normal(0, 1.0, n)
        sel = select_for_inspection(score, np.arange(n).astype(str), 1000, random_share=0.2, seed=seed)
        chosen = sel.selected != ""
        est = ipw_rate(y[chosen], sel.probability[chosen])
        truth = y.mean()
        errors.append(est["estimate"] - truth)
        covered += est["low"] <= truth <= est["high"]
        naive = y[chosen].mean()
        assert naive > 2 * truth  # the selection bias the estimate removes
    errors_arr = np.array(errors)
    assert covered >= 34  # a 95 % interval: about 38 of 40
    assert abs(errors_arr.mean()) < 3 * errors_arr.std(ddof=1) / np.sqrt(len(errors_arr))
    assert abs(errors_arr.mean()) < 0.1 * y.mean()


def test_report_files_are_self_contained_and_json_round_trips(tmp_path) -> None:
    sel, out = handmade()
    ref = pd.DataFrame({"route": ["a"] * 50 + ["b"] * 50})
    res = build_monitoring(sel, out, reference_features=ref, recent_features=ref.iloc[:60], inspection_rate=0.2)
    paths = write_monitoring(res, tmp_path / "mon")
    assert json.loads(paths["json"].read_text())["weeks"][0]["hits"] == 3
    html = paths["html"].read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html
    assert "WARNING calibration" in html


def test_batch_outputs_become_selections_dated_by_their_meta(tmp_path) -> None:
    sel, _ = handmade()
    batch = sel.drop(columns=["created_at"]).assign(rank=1)
    batch.to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "scores.meta.json").write_text(json.dumps({"finished": "2024-01-02T03:00:00+00:00"}))
    frame = selections_from_batch([tmp_path / "scores.parquet"])
    assert len(frame) == 11 and (frame["selected_ts"] == pd.Timestamp("2024-01-02T03:00")).all()
    (tmp_path / "bad.parquet").write_bytes(b"")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="not a batch scoring output"):
        selections_from_batch([tmp_path / "bad.parquet"])


def test_a_folder_of_outputs_counts_each_declaration_once_and_skips_other_parquet(tmp_path) -> None:
    """Two outputs of one manifest in a folder counted every declaration twice (lanes, precision's top
    items); the manifest kept beside its output (make demo's out/) made the whole command fail."""
    from typer.testing import CliRunner

    from riskprof.cli import app

    sel, out = handmade()
    batch = sel.drop(columns=["created_at"])
    folder = tmp_path / "out"
    folder.mkdir()
    batch.to_parquet(folder / "scores.parquet")
    batch.to_parquet(folder / "copy.parquet")
    pd.DataFrame({"declaration_id": ["A1"], "hs_code": ["820600"]}).to_parquet(folder / "manifest.parquet")
    out.to_parquet(tmp_path / "outcomes.parquet")
    res = CliRunner().invoke(app, ["monitor", "--batch", str(folder), "--outcomes", str(tmp_path / "outcomes.parquet"),
                                   "--no-store", "--out", str(tmp_path / "mon")])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "skipped 1 Parquet file(s) that are no batch scoring output: manifest.parquet" in flat
    assert "11 selection record(s) of declarations scored more than once" in flat
    once = build_monitoring(batch.assign(selected_ts=pd.Timestamp("2024-01-02")), out)
    result = json.loads((tmp_path / "mon" / "monitoring.json").read_text())
    assert result["overall"]["lanes"] == once["overall"]["lanes"] and result["overall"]["lanes"]["scored"] == 11
    assert result["rescored_records"] == 11
    # a file named on its own that is no output is still an error
    bad = CliRunner().invoke(app, ["monitor", "--batch", str(folder / "manifest.parquet"), "--outcomes",
                                   str(tmp_path / "outcomes.parquet"), "--no-store", "--out", str(tmp_path / "m2")])
    assert bad.exit_code == 2 and "not a batch scoring output" in bad.output


def test_declaration_features_shift_when_a_new_route_appears() -> None:
    decl = pd.DataFrame({"direction": ["import"] * 100, "departure_country": ["CN"] * 100,
                         "transit_countries": ["AE|OM"] * 50 + [""] * 50, "hs_code": ["820600"] * 100,
                         "customs_value": np.linspace(100, 1000, 100), "gross_weight_kg": np.full(100, 10.0)})
    feats = declaration_features(decl)
    assert set(feats["first_transit"]) == {"AE", "<none>"} and set(feats["hs_heading"]) == {"8206"}
    later = declaration_features(decl.assign(departure_country="LY"))
    assert psi(feats["departure_country"], later["departure_country"]) > 0.25


def _filled_store(url: str) -> None:
    """The handmade set recorded the way the API records it: one rank call in the audit log, then outcomes."""
    from serving.roles import Principal, Role
    from serving.store import AuditEvent, Store

    sel, out = handmade()
    store = Store.from_url(url)
    try:
        items = sel.drop(columns=["created_at"]).to_dict("records")
        event = AuditEvent.of(Principal("officer-1", Role.officer), "rank", "riskprof", "1", items)
        store.append_audit_events([event])
        records = out.assign(inspected_date=out["inspected_date"].dt.date.astype(str))
        store.record_outcomes([{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                               for r in records.to_dict("records")], recorded_by="officer-1")
    finally:
        store.dispose()


def test_monitor_command_reads_the_serving_store_and_writes_both_files(tmp_path) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    _filled_store(url)
    res = CliRunner().invoke(app, ["monitor", "--database-url", url, "--out", str(tmp_path / "mon"),
                                   "--inspection-rate", "0.2"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "mon" / "monitoring.json").read_text())
    # every declaration scored "now" (one call), so all outcomes count in this week; 7 outcomes, 4 hits
    assert (data["overall"]["inspections"], data["overall"]["hits"]) == (7, 4)
    assert data["overall"]["by_source"]["random"]["inspections"] == 2
    assert data["overall"]["lanes"]["scored"] == 11
    assert "WARNING calibration" in res.output


def test_monitor_command_refuses_a_store_url_that_names_no_file_and_creates_nothing(tmp_path) -> None:
    """A mistyped SQLite URL created the file and its folders and reported an empty store (exit 0)."""
    from typer.testing import CliRunner

    from riskprof.cli import app

    missing = tmp_path / "typo" / "serving.db"
    res = CliRunner().invoke(app, ["monitor", "--database-url", f"sqlite:///{missing}", "--out", str(tmp_path / "mon")])
    assert res.exit_code == 2, res.output
    assert f"no serving store at {missing}" in " ".join(res.output.split())
    assert not (tmp_path / "typo").exists() and not (tmp_path / "mon").exists()


def test_monitor_command_refuses_a_bad_date_without_a_traceback(tmp_path) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app

    res = CliRunner().invoke(app, ["monitor", "--since", "last tuesday", "--no-store", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--since" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["monitor", "--no-store", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no outcomes" in res.output


@pytest.mark.parametrize("bad", ["11/12/2023", "2023", "now", "12 Nov 2023"])
def test_monitor_command_takes_only_iso_days(tmp_path, bad: str) -> None:
    """pandas read '11/12/2023' as 12 November (month first) and 'now' as today; the other commands and the
    API take YYYY-MM-DD only, so an ambiguous day was silently misread."""
    from typer.testing import CliRunner

    from riskprof.cli import app

    for option in ("--since", "--reference-until"):
        res = CliRunner().invoke(app, ["monitor", option, bad, "--no-store", "--out", str(tmp_path)])
        assert res.exit_code == 2, res.output
        assert option in res.output and "YYYY-MM-DD" in res.output and "Traceback" not in res.output
