"""Seen and novel rows: the consignment-profile split on a handmade history, and `evaluate` reporting
every metric for all, seen and novel rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from training.metrics import ranking_metrics
from training.novelty import novelty, seen_mask, split_metrics


def _rows(*rows: tuple[str, str | None, str | None, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["hs_code", "origin_country", "departure_country", "customs_value"])


HISTORY = _rows(
    ("820600", "CN", "CN", 8200.0),  # value level floor(ln 8200) = 9
    ("930200", "AL", "ME", 500.0),  # level 6
    ("940300", "CN", None, 1000.0),  # level 6, departure unknown
    ("850440", "VN", "VN", np.nan),  # no value: level -1
)


def test_a_row_is_seen_only_when_goods_origin_departure_and_value_level_all_occur_in_the_history():
    rows = _rows(
        ("8206001000", "CN", "CN", 9000.0),  # same HS6, places, level 9 (ln 9000 = 9.10): seen
        ("820600", "CN", "CN", 30000.0),  # level 10 (ln 30000 = 10.3): novel
        ("930200", "AL", "AL", 500.0),  # another departure country: novel
        ("940300", "CN", None, 999.0),  # level 6 (ln 999 = 6.91), departure unknown in both: seen
        ("850440", "VN", "VN", 0.0),  # no positive value, like the history's missing one: seen
        ("930200", "ME", "ME", 500.0),  # another origin: novel
        ("820600", "CN", "CN", 8100.0),  # ln 8100 = 8.9996, level 8: novel
        ("820600", "CN", "CN", 8104.0),  # ln 8104 = 9.0001, level 9: seen
        ("820610", "CN", "CN", 8200.0),  # another subheading: novel
    )
    expected = [True, False, False, True, True, False, False, True, False]
    assert seen_mask(HISTORY, rows).tolist() == expected
    assert novelty(HISTORY, rows).tolist() == ["seen" if s else "novel" for s in expected]
    assert not seen_mask(HISTORY.iloc[:0], rows).any()
    assert seen_mask(HISTORY, rows.iloc[:0]).shape == (0,)


def test_split_metrics_ranks_each_part_on_its_own_with_its_share():
    # seen: 4 rows, 1 positive; novel: 6 rows, 2 positives
    seen = np.array([True, True, True, True, False, False, False, False, False, False])
    score = np.array([0.95, 0.5, 0.4, 0.05, 0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    y = np.array([0, 1, 0, 0, 1, 0, 1, 0, 0, 0], dtype=bool)
    m = split_metrics(y, score, None, seen, rates=(50,))
    # all: top 5 = .95 (miss) .9 (hit) .8 (miss) .7 (hit) .5 (hit) → 3/5, all 3 positives found
    assert m["precision_at"]["50"] == pytest.approx(0.6) and m["recall_at"]["50"] == 1.0 and m["n"] == 10
    # seen: top 2 = .95 (miss) .5 (hit)
    assert m["seen"]["precision_at"]["50"] == pytest.approx(0.5) and m["seen"]["n"] == 4
    # novel: top 3 = .9 (hit) .8 (miss) .7 (hit)
    assert m["novel"]["precision_at"]["50"] == pytest.approx(2 / 3) and m["novel"]["positives"] == 2
    assert m["shares"] == {"seen": pytest.approx(0.4), "novel": pytest.approx(0.6)}
    assert m["positive_shares"] == {"seen": pytest.approx(1 / 3), "novel": pytest.approx(2 / 3)}
    none_seen = split_metrics(y, score, None, np.zeros(10, dtype=bool), rates=(50,))
    assert none_seen["seen"] is None and none_seen["novel"]["n"] == 10
    with pytest.raises(ValueError, match="lengths differ"):
        split_metrics(y, score, None, seen[:5])


@pytest.fixture(scope="module")
def early_model(tmp_path_factory: pytest.TempPathFactory, mlflow_store) -> dict:
    """A tiny real model trained on the declarations up to 2023-06-30 of a small synthetic set."""
    from synthetic import generate
    from training import train_and_log
    from training.data import load_training_set

    folder = tmp_path_factory.mktemp("novelty")
    paths = generate(folder, seed=3, n_declarations=20_000)
    decl = pd.read_parquet(paths["declarations"])
    early = folder / "early.parquet"
    decl[decl["declaration_date"] <= "2023-06-30"].to_parquet(early, index=False)
    late = folder / "late.parquet"
    decl[decl["declaration_date"] > "2023-06-30"].to_parquet(late, index=False)
    ts = load_training_set([early], seizures=paths["seizures"], outcomes=paths["outcomes"])
    result = train_and_log(ts, "riskprof-novelty", seed=0, num_threads=1, num_boost_round=40, select=False,
                           calendar="on")
    return {"paths": paths, "early": early, "late": late, "uri": f"models:/riskprof-novelty/{result.version}"}


@pytest.mark.slow
@pytest.mark.integration
def test_evaluate_reports_all_seen_and_novel_rows(early_model: dict, tmp_path: Path):
    from scoring.registry import load_risk_model
    from training.data import load_training_set
    from training.lifecycle import evaluate_model

    p = early_model["paths"]
    full = load_training_set([p["declarations"]], seizures=p["seizures"], outcomes=p["outcomes"])
    loaded = load_risk_model(early_model["uri"])
    m = evaluate_model(loaded, full, period=("2023-07-01", "2023-12-31"))
    lab = full.labelled
    train = lab[lab["declaration_date"] <= "2023-06-30"]
    rows = lab[lab["declaration_date"] >= "2023-07-01"]
    seen = seen_mask(train, rows)
    assert 0 < seen.sum() < len(rows)  # both parts present in the synthetic traffic
    assert m["n"] == len(rows) and m["seen"]["n"] == seen.sum() and m["novel"]["n"] == (~seen).sum()
    assert m["shares"]["seen"] + m["shares"]["novel"] == pytest.approx(1.0)
    risk = loaded.model.predict(rows)
    y = rows["y"].to_numpy(dtype=bool)
    for part, mask in (("seen", seen), ("novel", ~seen)):
        assert m[part]["precision_at"] == ranking_metrics(y[mask], risk[mask])["precision_at"]
    assert m["novelty"]["history_rows"] == len(train) and m["novelty"]["history_source"] == "the evaluated files"

    # only later declarations given: the training rows are read from the model's training files
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", "--model", early_model["uri"], "--declarations",
                                      str(early_model["late"]), "--outcomes", str(p["outcomes"]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["novelty"]["history_source"] == "the model's training files"
    assert written["seen"]["n"] == m["seen"]["n"] and written["novel"]["n"] == m["novel"]["n"]
    assert "seen:" in result.output and "novel:" in result.output and f"{m['shares']['novel']:.1%}" in result.output


@pytest.mark.slow
@pytest.mark.integration
def test_evaluate_splits_a_refreshed_snapshot_on_the_rows_its_refresh_read(early_model: dict, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """refresh-features registers a version whose run recorded no files: evaluate could not tell which rows it
    learned from and counted every later row novel (from 'the evaluated files, part of the training period
    only'), though the snapshot looks up the outcomes the refresh read, the serving store's included."""
    from serving.refresh import refresh_from_files
    from tests.test_retrain import _post_outcomes
    from training.data import load_training_set

    p = early_model["paths"]
    decl, outc = pd.read_parquet(p["declarations"]), pd.read_parquet(p["outcomes"])
    upto, after = tmp_path / "upto_sep.parquet", tmp_path / "after_sep.parquet"
    decl[decl["declaration_date"] <= "2023-09-30"].to_parquet(upto, index=False)
    decl[decl["declaration_date"] > "2023-09-30"].to_parquet(after, index=False)
    # the outcomes of the Jul-Sep declarations reach the refresh only through the serving store
    q3 = decl.loc[(decl["declaration_date"] > "2023-06-30") & (decl["declaration_date"] <= "2023-09-30"),
                  "declaration_id"]
    in_store = outc["declaration_id"].isin(q3)
    files = tmp_path / "outcomes_files.parquet"
    outc[~in_store].to_parquet(files, index=False)
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    _post_outcomes(url, outc[in_store])
    monkeypatch.setenv("RISKPROF_DATABASE_URL", url)
    refreshed = refresh_from_files(early_model["uri"], [upto], seizures=p["seizures"], outcome_files=[files])

    lab = load_training_set([p["declarations"]], seizures=p["seizures"], outcomes=p["outcomes"]).labelled
    learned = lab[lab["declaration_date"] <= "2023-09-30"]
    rows = lab[lab["declaration_date"] > "2023-09-30"]
    seen = seen_mask(learned, rows)
    assert seen_mask(lab[lab["declaration_date"] <= "2023-06-30"], rows).sum() < seen.sum() < len(rows)

    uri = early_model["uri"].rsplit("/", 1)[0] + f"/{refreshed.version}"
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", "--model", uri, "--declarations", str(after), "--outcomes",
                                      str(p["outcomes"]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["novelty"]["history_rows"] == len(learned)
    assert written["seen"]["n"] == seen.sum() and written["novel"]["n"] == (~seen).sum()
    assert "feature snapshot was refreshed from" in written["novelty"]["history_source"]

    # without the store, the rows the refresh read from it are missing, and the output says so
    no_store = CliRunner().invoke(app, ["evaluate", "--model", uri, "--declarations", str(after), "--outcomes",
                                        str(p["outcomes"]), "--no-store"])
    assert no_store.exit_code == 0, no_store.output
    text = " ".join(no_store.output.split())
    q3_rows = int(lab["declaration_id"].isin(q3).sum())
    assert f"in the {len(learned) - q3_rows:,} labelled rows" in text and "not read here" in text
