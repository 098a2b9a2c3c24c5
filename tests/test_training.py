"""Training against a real MLflow store: tracking, registry aliases, evaluate, promote, refresh, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from synthetic import PLANTED_PATTERNS
from tests.conftest import KR_MAPPING, TrainedModel

runner = CliRunner()
pytestmark = pytest.mark.integration


def _client():
    from scoring.registry import configure_mlflow

    return configure_mlflow().MlflowClient()


def test_run_logs_params_metrics_artifacts_and_registers_challenger(trained_model: TrainedModel):
    client = _client()
    run = client.get_run(trained_model.run_id)
    assert run.info.status == "FINISHED"
    params, metrics = run.data.params, run.data.metrics
    for p in ("seed", "num_threads", "label", "train_end", "valid_start", "test_start", "gap_days", "lgb_num_leaves"):
        assert p in params
    for m in ("test_precision_at_1", "test_precision_at_5", "test_recall_at_10", "test_auc",
              "test_average_precision", "test_brier", "baseline_rules_precision_at_5",
              "baseline_logistic_regression_precision_at_5", "selection_random_ipw_hit_rate",
              "test_precision_at_norm_5", "test_revenue_share_at_5"):
        assert m in metrics, m
    assert run.data.tags["dataset_digest_declarations"]
    paths = {a.path for a in client.list_artifacts(trained_model.run_id, "plots")}
    assert paths == {"plots/calibration.png", "plots/precision_at_k.png", "plots/feature_importance.png"}
    ev = {a.path for a in client.list_artifacts(trained_model.run_id, "evaluation")}
    assert {"evaluation/features.json", "evaluation/metrics.json", "evaluation/feature_importance.csv"} <= ev
    mv = client.get_model_version_by_alias(trained_model.name, "challenger")
    assert str(mv.version) == trained_model.version and mv.run_id == trained_model.run_id


def test_logged_model_is_one_pyfunc_with_signature_and_scores_plain_input(trained_model: TrainedModel):
    import mlflow

    from scoring.registry import configure_mlflow

    configure_mlflow()
    pyfunc = mlflow.pyfunc.load_model(trained_model.uri)
    assert pyfunc.metadata.signature is not None
    decl = pd.read_parquet(trained_model.data["declarations"]).head(20)
    plain = decl.assign(declaration_date=decl["declaration_date"].dt.date)  # Python dates (datetime in the signature)
    out = pyfunc.predict(plain.astype(object).where(plain.notna(), None))
    assert list(out.columns) == ["declaration_id", "risk_score"]
    assert out["risk_score"].between(0, 1).all()


def test_model_beats_random_stratum_and_recovers_planted_patterns(trained_model: TrainedModel):
    result = trained_model.result
    m = result.metrics
    random_rate = result.selection_bias["random_hit_rate"]
    naive = result.selection_bias["naive_hit_rate"]
    assert random_rate is not None and naive is not None
    assert random_rate < naive  # rules select riskier items than chance: selection bias is real
    assert m["precision_at"]["5"] > 3 * random_rate
    assert m["precision_at"]["5"] > result.baselines["rules"]["precision_at"]["5"]
    # each planted pattern's family carries real weight in the model
    gain = result.importance.groupby("family")["gain"].sum()
    share = gain / gain.sum()
    for pattern in PLANTED_PATTERNS:
        assert share[pattern["family"]] > 0.03, (pattern["name"], share.to_dict())


def test_reasons_are_plain_language_and_grouped_by_family(trained_model: TrainedModel):
    from scoring import LaneThresholds, score_table
    from scoring.registry import load_risk_model

    loaded = load_risk_model(trained_model.uri)
    decl = pd.read_parquet(trained_model.data["declarations"]).sample(300, random_state=0)
    table = score_table(loaded.model, decl, LaneThresholds(0.2, 0.05))
    top = int(np.argmax(table.risk_score))
    reasons = table.reasons[top]
    assert reasons and 1 <= len(reasons) <= 4
    families = [r.family for r in reasons]
    assert len(set(families)) == len(families)
    assert all(r.contribution > 0 for r in reasons)
    assert all(isinstance(r.text, str) and len(r.text) > 10 for r in reasons)


def test_evaluate_cli_writes_metrics_json(trained_model: TrainedModel, tmp_path: Path):
    out = tmp_path / "m.json"
    d = trained_model.data
    result = runner.invoke(app, ["evaluate", "--model", trained_model.uri, "--declarations", str(d["declarations"]),
                                 "--outcomes", str(d["outcomes"]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads(out.read_text())
    assert set(m["precision_at"]) == {"1", "2", "5", "10"} and set(m["recall_at"]) == {"1", "2", "5", "10"}
    for k in ("auc", "average_precision", "brier"):
        assert isinstance(m[k], float)
    assert m["model"]["version"] == trained_model.version
    bad = runner.invoke(app, ["evaluate", "--model", "models:/no-such-model@champion", "--declarations",
                              str(d["declarations"]), "--outcomes", str(d["outcomes"])])
    assert bad.exit_code == 2 and "cannot load model" in bad.output and "Traceback" not in bad.output


def test_evaluate_says_how_many_outcomes_named_no_declaration(trained_model: TrainedModel, tmp_path: Path):
    """train says "N of M outcomes name no declaration … left out"; evaluate dropped them without a word, so
    an outcomes file whose ids did not match (another file's, another format) gave figures over a few rows."""
    d = trained_model.data
    outc = pd.read_parquet(d["outcomes"])
    orphans = outc.head(50).assign(declaration_id=lambda f: "X" + f["declaration_id"].astype(str))
    mixed = tmp_path / "outcomes.parquet"
    pd.concat([outc.iloc[50:], orphans], ignore_index=True).to_parquet(mixed, index=False)
    result = runner.invoke(app, ["evaluate", "--model", trained_model.uri, "--declarations", str(d["declarations"]),
                                 "--outcomes", str(mixed)])
    assert result.exit_code == 0, result.output
    assert f"50 of {len(outc):,} outcomes name no declaration" in " ".join(result.output.split())


def test_evaluate_refuses_to_write_its_metrics_over_an_input(trained_model: TrainedModel, tmp_path: Path):
    """``--json`` naming an input (a slip of the hand) wrote the metrics over it once the evaluation ran."""
    d = trained_model.data
    outcomes = tmp_path / "outcomes.parquet"
    outcomes.write_bytes(Path(d["outcomes"]).read_bytes())
    before = outcomes.read_bytes()
    result = runner.invoke(app, ["evaluate", "--model", trained_model.uri, "--declarations", str(d["declarations"]),
                                 "--outcomes", str(outcomes), "--json", str(outcomes)])
    assert result.exit_code == 2, result.output
    assert f"--json {outcomes} is the input file {outcomes}" in " ".join(result.output.split())
    assert outcomes.read_bytes() == before


def test_promote_then_refuse_a_worse_challenger_then_force(trained_model: TrainedModel):
    from training import load_training_set, train_and_log
    from training.lifecycle import promote

    name = "riskprof-promote"
    d = trained_model.data
    good = load_training_set([d["declarations"]], seizures=d["seizures"], outcomes=d["outcomes"])
    train_and_log(good, name, seed=0, num_boost_round=80)
    first = promote(name)
    assert first.promoted and "no champion before" in first.message
    # a challenger trained on shuffled labels knows nothing
    bad = load_training_set([d["declarations"]], seizures=d["seizures"], outcomes=d["outcomes"])
    bad.labelled["y"] = np.random.default_rng(0).permutation(bad.labelled["y"].to_numpy())
    worse = train_and_log(bad, name, seed=1, num_boost_round=20)
    refused = promote(name)
    # its test figures were taken on permuted labels, other rows than the champion's: nothing fair to compare
    # (worse challengers refused on rows neither model trained on: tests/test_promotion.py)
    assert not refused.promoted and refused.basis == "no_fair_period"
    assert "refused" in refused.message and any("held different rows" in n for n in refused.notes)
    client = _client()
    assert str(client.get_model_version_by_alias(name, "champion").version) == first.challenger_version
    result = runner.invoke(app, ["promote", "--name", name])
    assert result.exit_code == 1 and "refused" in result.output
    forced = runner.invoke(app, ["promote", "--name", name, "--force"])
    assert forced.exit_code == 0, forced.output
    mv = client.get_model_version_by_alias(name, "champion")
    assert str(mv.version) == worse.version and mv.tags["promoted"] == "forced"


def test_refresh_features_registers_a_new_snapshot(trained_model: TrainedModel):
    from features.contracts import DECLARATION, OUTCOME, SEIZURE
    from features.history import History
    from features.io import load_table
    from scoring.registry import load_risk_model
    from training.lifecycle import refresh_features

    d = trained_model.data
    decl = load_table(d["declarations"], DECLARATION).frame
    outc = load_table(d["outcomes"], OUTCOME).frame
    seiz = load_table(d["seizures"], SEIZURE).frame
    # outcomes arrive for some uninspected declarations: importer I gets three new hits
    old = load_risk_model(trained_model.uri)
    late = decl[~decl["declaration_id"].isin(outc["declaration_id"])].tail(3)
    new = pd.DataFrame({"declaration_id": late["declaration_id"].to_numpy(),
                        "inspected_date": decl["declaration_date"].max() + pd.Timedelta(days=1),
                        "inspected": True, "selection_source": "officer", "selection_probability": 1.0,
                        "hit": True}).astype({"inspected": "boolean", "hit": "boolean"})
    version, _ = refresh_features(trained_model.uri, History(decl, pd.concat([outc, new]), seiz), alias="refreshed")
    refreshed = load_risk_model(f"models:/{trained_model.name}@refreshed")
    assert refreshed.version == version != old.version
    probe = late.assign(declaration_date=decl["declaration_date"].max() + pd.Timedelta(days=5))
    before = old.model.features(probe)
    after = refreshed.model.features(probe)
    assert (after["importer_hits"] >= before["importer_hits"]).all()
    assert after["importer_hits"].sum() > before["importer_hits"].sum()
    pd.testing.assert_series_equal(before["hs_heading"], after["hs_heading"])  # vocabularies kept


# ---- errors: fail fast, clearly, with no run left looking finished -----------------------------------


def _finished_runs() -> int:
    import mlflow

    from scoring.registry import configure_mlflow

    configure_mlflow()
    exp = mlflow.get_experiment_by_name("riskprof")
    if exp is None:
        return 0
    runs = mlflow.search_runs([exp.experiment_id], output_format="list")
    return sum(r.info.status == "FINISHED" for r in runs)


def test_training_errors_are_clear_and_leave_no_finished_run(trained_model: TrainedModel, tmp_path: Path,
                                                               kr_dir: Path):
    d = trained_model.data
    finished = _finished_runs()
    outc = pd.read_parquet(d["outcomes"]).assign(hit=False)
    outc.to_parquet(tmp_path / "nohits.parquet")
    r = runner.invoke(app, ["train", "--declarations", str(d["declarations"]), "--outcomes",
                            str(tmp_path / "nohits.parquet")])
    assert r.exit_code == 2 and "no positives" in r.output
    decl = pd.read_parquet(d["declarations"]).assign(declaration_date=pd.Timestamp("2023-03-01"))
    decl.to_parquet(tmp_path / "oneday.parquet")
    r = runner.invoke(app, ["train", "--declarations", str(tmp_path / "oneday.parquet"), "--outcomes",
                            str(d["outcomes"])])
    assert r.exit_code == 2 and "at least 3 distinct dates" in r.output
    kr = kr_dir / "df_syn_valid_eng.csv"
    r = runner.invoke(app, ["train", "--declarations", str(kr), "--mapping", str(KR_MAPPING), "--label", "nope"])
    assert r.exit_code == 2 and "'nope' is not defined by the mapping" in r.output
    (tmp_path / "m.yaml").write_text(KR_MAPPING.read_text().replace("Item Price", "Item Value"))
    r = runner.invoke(app, ["train", "--declarations", str(kr), "--mapping", str(tmp_path / "m.yaml"),
                            "--label", "fraud"])
    assert r.exit_code == 2 and "missing from the data: ['Item Value']" in r.output
    for res in (r,):
        assert "Traceback" not in res.output
    assert _finished_runs() == finished
    # a failure after the run started marks it FAILED
    from training import load_training_set, train_and_log

    ts = load_training_set([d["declarations"]], seizures=d["seizures"], outcomes=d["outcomes"])
    with pytest.raises(Exception, match="num_leaves"):
        train_and_log(ts, "broken", params={"num_leaves": -3})
    import mlflow

    runs = mlflow.search_runs([mlflow.get_experiment_by_name("riskprof").experiment_id], output_format="list")
    assert runs[0].info.status == "FAILED"
    assert _finished_runs() == finished


def test_calendar_features_kept_only_when_they_help_on_validation(trained_model: TrainedModel):
    m = trained_model.result.metrics
    with_cal, without = m["valid_auc_with_calendar"], m["valid_auc_without_calendar"]
    assert m["calendar_used"] == (with_cal > without)
    names = trained_model.result.model.feature_names
    assert ("day_of_week" in names) == m["calendar_used"]
    assert _client().get_run(trained_model.run_id).data.params["calendar_used"] == str(m["calendar_used"])


def test_feature_group_selection_is_applied_recorded_and_logged(trained_model: TrainedModel, tmp_path: Path):
    result = trained_model.result
    sel = result.metrics["feature_selection"]
    dropped = result.model.metadata["dropped_feature_groups"]
    assert dropped == sel["dropped"]
    families = set(result.model.pipeline.family_of_.values())
    assert not families & set(dropped)  # a dropped family computes nothing at scoring time
    assert set(sel["valid_auc_without"]) >= families - {"calendar"}
    client = _client()
    assert json.loads(client.get_run(trained_model.run_id).data.params["dropped_feature_groups"]) == dropped
    logged = json.loads(Path(client.download_artifacts(trained_model.run_id, "evaluation/feature_selection.json",
                                                       str(tmp_path))).read_text())
    assert logged["dropped"] == dropped and logged["valid_auc_all"] == pytest.approx(sel["valid_auc_all"])


def test_train_cli_outcome_delay_is_recorded_and_kept_by_the_model(trained_model: TrainedModel):
    from scoring.registry import load_risk_model

    d = trained_model.data
    r = runner.invoke(app, ["train", "--declarations", str(d["declarations"]), "--seizures", str(d["seizures"]),
                            "--outcomes", str(d["outcomes"]), "--name", "riskprof-delay", "--rounds", "40",
                            "--outcome-delay", "30", "--no-select"])
    assert r.exit_code == 0, r.output
    assert "feature groups left out (no help on validation):" in r.output
    loaded = load_risk_model("models:/riskprof-delay@challenger")
    # --no-select: only the calendar family was put to the test
    assert set(loaded.model.metadata["dropped_feature_groups"]) <= {"calendar"}
    assert _client().get_run(loaded.run_id).data.params["select"] == "False"
    assert loaded.model.metadata["outcome_delay_days"] == 30
    assert loaded.model.pipeline.outcome_delay_days_ == 30
    assert _client().get_run(loaded.run_id).data.params["outcome_delay_days"] == "30"


def test_evaluate_reads_csv_in_another_encoding_and_delimiter(trained_model: TrainedModel, tmp_path: Path):
    """``train``/``evaluate`` take ``--encoding``/``--delimiter`` as ``validate`` and ``score`` do: a
    latin-1, semicolon-separated export gives the metrics of the same rows read from Parquet."""
    d = trained_model.data
    decl = pd.read_parquet(d["declarations"])
    decl.loc[:4, "goods_description"] = "pièces détachées"  # not ASCII: latin-1 bytes differ from UTF-8
    decl_parquet = tmp_path / "declarations.parquet"
    decl.to_parquet(decl_parquet)
    csv_decl, csv_out = tmp_path / "declarations.csv", tmp_path / "outcomes.csv"
    decl.to_csv(csv_decl, sep=";", index=False, encoding="latin-1")
    pd.read_parquet(d["outcomes"]).to_csv(csv_out, sep=";", index=False, encoding="latin-1")
    metrics = {}
    for key, args in {"parquet": ["--declarations", str(decl_parquet), "--outcomes", str(d["outcomes"])],
                      "csv": ["--declarations", str(csv_decl), "--outcomes", str(csv_out), "--encoding", "latin-1",
                              "--delimiter", ";"]}.items():
        out = tmp_path / f"{key}.json"
        result = runner.invoke(app, ["evaluate", "--model", trained_model.uri, *args, "--json", str(out)])
        assert result.exit_code == 0, result.output
        metrics[key] = json.loads(out.read_text())
    for k in ("auc", "average_precision", "brier", "precision_at", "recall_at"):
        assert metrics["csv"][k] == metrics["parquet"][k], k
    bad = runner.invoke(app, ["evaluate", "--model", trained_model.uri, "--declarations", str(csv_decl),
                              "--outcomes", str(csv_out), "--delimiter", ";"])
    assert bad.exit_code == 2 and "--encoding" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["train", "--declarations", str(csv_decl), "--outcomes", str(csv_out),
                              "--encoding", "latin-1", "--delimiter", "semicolon"])
    assert bad.exit_code == 2 and "--delimiter must be one character" in bad.output


def test_outcomes_naming_no_declaration_are_said_not_dropped_in_silence(tmp_path: Path) -> None:
    """A fifth of the labels lost to mistyped ids trained with exit 0 and no word about it."""
    from tests.factories import make_declarations, make_outcomes
    from training.data import load_training_set

    rng = np.random.default_rng(3)
    decl = make_declarations(rng, 400, start="2023-01-01", days=60)
    outc = make_outcomes(rng, decl)
    outc.loc[outc.index[:7], "declaration_id"] = "ZZ" + outc["declaration_id"][:7]
    decl.to_parquet(tmp_path / "d.parquet", index=False)
    outc.to_parquet(tmp_path / "o.parquet", index=False)
    ts = load_training_set([tmp_path / "d.parquet"], outcomes=tmp_path / "o.parquet")
    (note,) = ts.notes
    assert note.startswith(f"7 of {len(outc):,} outcomes name no declaration") and "ZZ" in note
    outc.assign(declaration_id=outc["declaration_id"].str.removeprefix("ZZ")).to_parquet(tmp_path / "o.parquet")
    assert load_training_set([tmp_path / "d.parquet"], outcomes=tmp_path / "o.parquet").notes == []


def test_outcomes_dated_before_their_declaration_are_said(tmp_path: Path) -> None:
    """An inspection typed as 2001-01-01 for a declaration of 2023 trained without a word (the features
    now count it from the declaration's date: tests/test_features.py)."""
    from tests.factories import make_declarations, make_outcomes
    from training.data import load_training_set

    rng = np.random.default_rng(3)
    decl = make_declarations(rng, 400, start="2023-01-01", days=60)
    outc = make_outcomes(rng, decl)
    outc.loc[outc.index[:2], "inspected_date"] = pd.Timestamp("2001-01-01")
    decl.to_parquet(tmp_path / "d.parquet", index=False)
    outc.to_parquet(tmp_path / "o.parquet", index=False)
    (note,) = load_training_set([tmp_path / "d.parquet"], outcomes=tmp_path / "o.parquet").notes
    first = outc["declaration_id"].iloc[0]
    assert note.startswith(f"2 of {len(outc):,} outcomes are dated before their declaration (e.g. {first} "
                           "inspected 2001-01-01") and note.endswith("they count from the declaration's date")


def test_a_test_start_outside_the_labelled_dates_is_named_as_such() -> None:
    """--test-start 2099-01-01 said 'the time split left an empty period … more distinct dates are needed'."""
    from training.data import TrainingError, temporal_split

    dates = pd.Series(pd.date_range("2023-01-01", "2023-12-31", freq="D"))
    assert temporal_split(dates, test_start="2023-10-01").test_start == pd.Timestamp("2023-10-01")
    for day in ("2099-01-01", "2023-01-01", "2020-05-05"):
        with pytest.raises(TrainingError, match=f"--test-start {day} is outside the labelled rows' dates "
                                                "\\(2023-01-01 .. 2023-12-31\\)"):
            temporal_split(dates, test_start=day)


def test_the_korean_mapping_trains_logs_and_registers(mlflow_store, kr_dir: Path, tmp_path: Path) -> None:
    """The README's Korean command failed after training, at logging: a mapped numeric extra column read
    from CSV as text (pandas 3) went into the input example as strings against the signature's double
    ('Incompatible input types for column Tax Rate'); nothing was registered."""
    import mlflow

    lines = (kr_dir / "df_syn_train_eng.csv").read_text(encoding="utf-8").splitlines()[:6001]
    part = tmp_path / "kr6k.csv"
    part.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["train", "--declarations", str(part), "--mapping", str(KR_MAPPING), "--label", "fraud",
                            "--name", "kr-slice", "--rounds", "5", "--no-select", "--num-threads", "1"])
    assert r.exit_code == 0, r.output
    version = mlflow.MlflowClient().get_model_version_by_alias("kr-slice", "challenger")
    info = mlflow.models.get_model_info(f"models:/kr-slice/{version.version}")
    types = {c["name"]: c["type"] for c in info.signature.inputs.to_dict()}
    assert types["Tax Rate"] == "double"
