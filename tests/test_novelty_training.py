"""Seen and novel rows in training: the test period's metrics of `train` (and its MLflow run, metrics.json
and printout) for all rows, rows whose consignment profile occurred before the test period and the others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from training.data import TimeSplit
from training.fit import evaluation_metrics, seen_before_test
from training.tracking import logged_test_metrics

TEST_START = pd.Timestamp("2024-03-01")
SPLIT = TimeSplit(train_end=pd.Timestamp("2024-02-01"), valid_start=pd.Timestamp("2024-02-08"),
                  valid_end=pd.Timestamp("2024-02-22"), test_start=TEST_START, gap_days=7)
COLUMNS = ["declaration_date", "hs_code", "origin_country", "departure_country", "customs_value", "y", "score"]
LABELLED = pd.DataFrame([
    # before the test period (train, validation and the gap before the test: all of it is history)
    ("2024-01-05", "820600", "CN", "CN", 8200.0, 0, np.nan),  # value level floor(ln 8200) = 9
    ("2024-02-10", "930200", "AL", "ME", 500.0, 1, np.nan),  # level 6
    ("2024-02-26", "940300", "CN", None, 1000.0, 0, np.nan),  # level 6, in the gap, departure unknown
    # the test period
    ("2024-03-02", "8206001000", "CN", "CN", 9000.0, 1, 0.9),  # same HS6, places, level 9: seen
    ("2024-03-03", "820600", "CN", "CN", 30000.0, 0, 0.8),  # level 10: novel
    ("2024-03-04", "930200", "AL", "ME", 600.0, 0, 0.7),  # ln 600 = 6.4, level 6: seen
    ("2024-03-05", "940300", "CN", None, 999.0, 0, 0.2),  # level 6, departure unknown in both: seen (gap row)
    ("2024-03-06", "850440", "VN", "VN", 100.0, 1, 0.3),  # never before: novel
    ("2024-03-07", "820600", "CN", "CN", 9000.0, 0, 0.1),  # seen
    ("2024-03-08", "611000", "TR", "TR", 50.0, 0, 0.6),  # novel
    ("2024-03-09", "611000", "TR", "TR", 50.0, 1, 0.05),  # repeats a *test* row only: still novel
], columns=COLUMNS).assign(declaration_date=lambda f: pd.to_datetime(f["declaration_date"]))
EXPECTED_SEEN = [True, False, True, True, False, True, False, False]


def _test_period_metrics() -> dict:
    test = (LABELLED["declaration_date"] >= TEST_START).to_numpy()
    seen, novelty = seen_before_test(LABELLED, SPLIT, test)
    assert seen.tolist() == EXPECTED_SEEN
    assert novelty["history_rows"] == 3 and novelty["history_period"] == ["2024-01-05", "2024-02-26"]
    rows = LABELLED[test]
    metrics = evaluation_metrics(rows["y"].to_numpy(dtype=bool), rows["score"].to_numpy(), None, 10,
                                 {"must_help": [], "dropped": []}, seen)
    metrics["novelty"] = novelty
    return metrics


def test_test_period_metrics_of_all_seen_and_novel_rows_on_a_handmade_history():
    m = _test_period_metrics()
    # 8 test rows: each rate's top k is one row (k = max(1, floor(n * rate)))
    # all: top .9 is a hit; AUC: positives .9 .3 .05 against negatives .8 .7 .6 .2 .1 → (5 + 2 + 0) / 15
    assert m["n"] == 8 and m["positives"] == 3
    assert m["precision_at"]["5"] == 1.0 and m["auc"] == pytest.approx(7 / 15)
    # seen: scores .9 (hit) .7 .2 .1 → the top row is a hit, AUC 1
    assert m["seen"]["n"] == 4 and m["seen"]["positives"] == 1
    assert m["seen"]["precision_at"]["1"] == 1.0 and m["seen"]["auc"] == pytest.approx(1.0)
    # novel: scores .8 .3 (hit) .6 .05 (hit) → the top row misses, both positives below both negatives
    assert m["novel"]["n"] == 4 and m["novel"]["positives"] == 2
    assert m["novel"]["precision_at"]["5"] == 0.0 and m["novel"]["recall_at"]["10"] == 0.0
    assert m["novel"]["auc"] == pytest.approx(0.0)
    assert m["shares"] == {"seen": 0.5, "novel": 0.5}
    assert m["positive_shares"] == {"seen": pytest.approx(1 / 3), "novel": pytest.approx(2 / 3)}
    assert m["best_iteration"] == 10 and len(m["calibration"]["predicted"]) > 0


def test_logged_metrics_name_each_part():
    logged = logged_test_metrics(_test_period_metrics())
    assert logged["test_precision_at_5"] == 1.0 and logged["test_auc"] == pytest.approx(7 / 15)
    assert logged["test_seen_precision_at_1"] == 1.0 and logged["test_seen_auc"] == pytest.approx(1.0)
    assert logged["test_novel_precision_at_5"] == 0.0 and logged["test_novel_auc"] == pytest.approx(0.0)
    assert logged["test_seen_n"] == 4 and logged["test_novel_positives"] == 2
    assert logged["test_seen_share"] == 0.5 and logged["test_novel_positive_share"] == pytest.approx(2 / 3)
    assert logged["test_novelty_history_rows"] == 3
    # the parts are logged under their own names only, never as a nested dict flattened under "test_"
    assert not [k for k in logged if k.startswith(("test_shares", "test_positive_shares", "test_novelty_profile"))]


def test_a_part_without_rows_is_left_out_of_the_logged_metrics():
    m = _test_period_metrics()
    m["seen"] = None
    logged = logged_test_metrics(m)
    assert not [k for k in logged if k.startswith("test_seen_") and not k.endswith("share")]
    assert logged["test_novel_n"] == 4


@pytest.mark.slow
@pytest.mark.integration
def test_train_logs_and_prints_all_seen_and_novel_test_metrics(mlflow_store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    from scoring.registry import configure_mlflow
    from synthetic import generate
    from training.data import load_training_set
    from training.novelty import seen_mask

    monkeypatch.setenv("RISKPROF_NUM_THREADS", "1")
    paths = generate(tmp_path / "data", seed=5, n_declarations=8_000)
    r = CliRunner().invoke(app, ["train", "--declarations", str(paths["declarations"]), "--seizures",
                                 str(paths["seizures"]), "--outcomes", str(paths["outcomes"]), "--name",
                                 "riskprof-novel-train", "--rounds", "30", "--no-select", "--num-threads", "1"])
    assert r.exit_code == 0, r.output
    match = re.search(r"run id: (\w+)", r.output)
    assert match, r.output
    client = configure_mlflow().MlflowClient()
    run = client.get_run(match.group(1))
    logged, params = run.data.metrics, run.data.params

    # the split recomputed from the files and the run's test period
    lab = load_training_set([paths["declarations"]], seizures=paths["seizures"], outcomes=paths["outcomes"]).labelled
    start = pd.Timestamp(params["test_start"])
    dates = lab["declaration_date"]
    seen = seen_mask(lab[dates < start], lab[dates >= start])
    assert 0 < seen.sum() < len(seen)  # synthetic traffic repeats some consignments, not all
    assert logged["test_n"] == len(seen)
    assert logged["test_seen_n"] == seen.sum() and logged["test_novel_n"] == (~seen).sum()
    assert logged["test_seen_share"] == pytest.approx(seen.mean())
    assert logged["test_seen_share"] + logged["test_novel_share"] == pytest.approx(1.0)
    assert logged["test_seen_positives"] + logged["test_novel_positives"] == logged["test_positives"]
    for part in ("", "seen_", "novel_"):
        for k in ("1", "2", "5", "10"):
            assert f"test_{part}precision_at_{k}" in logged, (part, k)

    written = json.loads(Path(client.download_artifacts(run.info.run_id, "evaluation/metrics.json",
                                                        str(tmp_path))).read_text())["test"]
    assert written["seen"]["precision_at"]["5"] == pytest.approx(logged["test_seen_precision_at_5"])
    assert written["novel"]["n"] == logged["test_novel_n"] and written["shares"]["novel"] > 0
    assert written["precision_at"]["5"] == pytest.approx(logged["test_precision_at_5"])

    lines = r.output.splitlines()
    assert any(line.startswith("seen: consignment profile") and f"{len(lab[dates < start]):,} labelled rows" in line
               for line in lines), r.output
    assert any(line.startswith("  all:") and f"rows {len(seen):,}" in line for line in lines), r.output
    assert any(line.startswith(" seen:") and f"{seen.mean():.1%} of rows" in line for line in lines), r.output
    assert any(line.startswith("novel:") and f"rows {(~seen).sum():,}" in line for line in lines), r.output
