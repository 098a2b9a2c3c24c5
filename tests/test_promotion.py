"""The promotion gate compares like with like: both figures from models that did not train on the
compared rows (real tiny LightGBM models, a real MLflow store in a temporary folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.integration]
runner = CliRunner()
D1, D2 = "2023-06-30", "2023-09-30"  # champion trained up to D1, challenger up to D2


def _client():
    from scoring.registry import configure_mlflow

    return configure_mlflow().MlflowClient()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, mlflow_store) -> dict[str, Path]:
    """Small synthetic files, and the declarations up to D1 and up to D2 (filtered by date)."""
    from synthetic import generate

    folder = tmp_path_factory.mktemp("promotion")
    paths = dict(generate(folder, seed=1, n_declarations=40_000))
    decl = pd.read_parquet(paths["declarations"])
    for key, day in (("upto_d1", D1), ("upto_d2", D2)):
        paths[key] = folder / f"{key}.parquet"
        decl[decl["declaration_date"] <= day].to_parquet(paths[key], index=False)
    return paths


def _train(data: dict[str, Path], name: str, declarations: str = "declarations", seed: int = 0,
           shuffled: bool = False, **kwargs):
    """A tiny model; ``shuffled``: trained on permuted labels, so it knows nothing."""
    from training import train_and_log
    from training.data import load_training_set

    ts = load_training_set([data[declarations]], seizures=data["seizures"], outcomes=data["outcomes"])
    if shuffled:
        ts.labelled["y"] = np.random.default_rng(seed).permutation(ts.labelled["y"].to_numpy())
    result = train_and_log(ts, name, seed=seed, num_threads=1, num_boost_round=60, select=False, calendar="on",
                           **kwargs)
    assert_no_open_figures()
    return result


def _full(data: dict[str, Path]):
    from training.data import load_training_set

    return load_training_set([data["declarations"]], seizures=data["seizures"], outcomes=data["outcomes"])


def test_two_models_trained_on_the_same_files_compare_two_held_out_figures(data: dict[str, Path]):
    """A data scientist after make demo: v1 refitted on every labelled row, v2 on the same files with another seed
    and no selection. v1 must not be scored on its own test period (it learned it)."""
    from training.lifecycle import promote

    name = "riskprof-same-files"
    v1 = _train(data, name, seed=0)
    assert v1.model.metadata["test_period_in_final_fit"]
    first = promote(name)
    assert first.promoted and first.basis == "no_champion" and "no champion before" in first.message
    v2 = _train(data, name, seed=5)
    decision = promote(name)
    assert decision.basis == "held_out_twins"
    assert decision.figures == {"challenger": "held-out twin", "champion": "held-out twin"}
    # each figure is the held-out twin's, on the one test period both share
    assert decision.champion_precision == v1.metrics["precision_at"]["5"]
    assert decision.challenger_precision == v2.metrics["precision_at"]["5"]
    assert decision.period == v1.model.metadata["test_period"] == v2.model.metadata["test_period"]
    assert decision.rows == v1.metrics["n"] and decision.positives == v1.metrics["positives"]
    # the refitted champion's figure on that period (rows it learned) is not what the gate used
    assert decision.champion_cutoff is not None and decision.champion_cutoff >= decision.period[0]
    tags = _client().get_model_version(name, v2.version).tags
    assert tags["promotion_basis"] == "held_out_twins" and json.loads(tags["promotion_period"]) == decision.period
    assert tags["promotion_rows"] == str(decision.rows) and tags["promotion_positives"] == str(decision.positives)
    assert tags["promotion_champion_cutoff"] == decision.champion_cutoff
    assert tags["promotion_challenger_cutoff"] == decision.challenger_cutoff
    assert tags["promotion_run_id"] == decision.run_id
    arts = {a.path for a in _client().list_artifacts(decision.run_id, "promotion")}
    assert arts == {"promotion/decision.json"}


def test_no_fair_period_refuses_and_force_records_the_override(data: dict[str, Path]):
    """Both refitted on every row, tested on different periods: no rows neither trained on."""
    name = "riskprof-no-fair-period"
    _train(data, name, seed=0)
    assert runner.invoke(app, ["promote", "--name", name]).exit_code == 0
    other = _train(data, name, seed=1, test_start="2023-06-01")
    refused = runner.invoke(app, ["promote", "--name", name])
    assert refused.exit_code == 1
    text = " ".join(refused.output.split())
    assert "no fair comparison period exists yet" in text and "--force" in text and "promoted=forced" in text
    assert "training cut-off: challenger" in text
    client = _client()
    assert client.get_model_version(name, other.version).tags["promotion_decision"] == "refused"
    assert str(client.get_model_version_by_alias(name, "champion").version) != other.version
    forced = runner.invoke(app, ["promote", "--name", name, "--force"])
    assert forced.exit_code == 0, forced.output
    mv = client.get_model_version_by_alias(name, "champion")
    assert str(mv.version) == other.version
    assert mv.tags["promoted"] == "forced" and mv.tags["promotion_decision"] == "forced"
    assert "no fair comparison period" in mv.tags["promotion_override"]
    run = client.get_run(mv.tags["promotion_run_id"])
    assert run.data.tags["promotion_decision"] == "forced" and run.data.params["basis"] == "no_fair_period"


def test_a_worse_challenger_is_refused_on_rows_neither_trained_on(data: dict[str, Path]):
    from training.lifecycle import promote

    name = "riskprof-worse"
    champion = _train(data, name, declarations="upto_d1", seed=0)
    assert promote(name).promoted
    worse = _train(data, name, declarations="upto_d2", seed=2, shuffled=True)
    decision = promote(name, ts=_full(data))
    assert not decision.promoted and "refused" in decision.message
    assert decision.basis == "after_both_cutoffs" and decision.figures == {"challenger": "live", "champion": "live"}
    assert decision.champion_cutoff == champion.model.metadata["training_period"][1] <= D1
    assert decision.challenger_cutoff == worse.model.metadata["training_period"][1] <= D2
    assert decision.period is not None and decision.period[0] > D2  # after both cut-offs
    assert decision.challenger_precision is not None and decision.champion_precision is not None
    assert decision.challenger_precision < decision.champion_precision
    assert decision.positives is not None and decision.positives >= 10
    # a dry run (retrain --dry-run) reaches the same decision and records nothing
    from scoring.registry import load_risk_model
    from training.promotion import preview_promotion

    preview = preview_promotion(name, load_risk_model(f"models:/{name}@challenger"),
                                load_risk_model(f"models:/{name}@champion"), ts=_full(data))
    assert (preview.promoted, preview.basis, preview.period, preview.challenger_precision) == (
        False, decision.basis, decision.period, decision.challenger_precision) and preview.run_id is None
    # the same comparison from the command line, with the later files given
    result = runner.invoke(app, ["promote", "--name", name, "--declarations", str(data["declarations"]),
                                 "--seizures", str(data["seizures"]), "--outcomes", str(data["outcomes"])])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"compared on: after_both_cutoffs {decision.period[0]} .. {decision.period[1]}" in out
    assert f"{decision.rows:,} labelled rows, {decision.positives:,} positives" in out

    # the weekly retrain case: a challenger refitted on every row known now, the champion older than its
    # test period: the challenger's held-out twin against the champion scored live on that period
    latest = _train(data, name, seed=3)
    test_start = latest.model.metadata["test_period"][0]
    decision = promote(name)
    assert decision.basis == "challenger_test_period", decision.notes
    assert decision.figures == {"challenger": "held-out twin", "champion": "live"}
    assert decision.champion_cutoff is not None and decision.champion_cutoff < test_start == decision.period[0]
    assert decision.challenger_precision == latest.metrics["precision_at"]["5"]
    assert decision.rows == latest.metrics["n"]


def test_a_better_challenger_is_promoted_on_rows_neither_trained_on(data: dict[str, Path]):
    from training.lifecycle import promote

    name = "riskprof-better"
    _train(data, name, declarations="upto_d1", seed=0, shuffled=True)
    assert promote(name).promoted
    better = _train(data, name, declarations="upto_d2", seed=0)
    decision = promote(name, ts=_full(data))
    assert decision.promoted and not decision.forced and decision.basis == "after_both_cutoffs"
    assert decision.period is not None and decision.period[0] > D2
    assert decision.challenger_precision is not None and decision.champion_precision is not None
    assert decision.challenger_precision > decision.champion_precision
    client = _client()
    mv = client.get_model_version_by_alias(name, "champion")
    assert str(mv.version) == better.version and mv.tags["promoted"] == "checked"


def assert_no_open_figures() -> None:
    """``train_and_log`` closes each figure once logged: a long process (a retrain job, the simulator, a
    notebook) keeps none of them, and the caller's own figures are not its to close."""
    import matplotlib.pyplot as plt  # already imported by the training

    assert not plt.get_fignums(), "training left pyplot figures open"


def test_a_champion_that_does_not_load_stops_the_gate_instead_of_waving_the_challenger_through(
        data: dict[str, Path]):
    """Any error loading the champion counted as "no champion before": a champion whose artifact was lost
    or corrupt let any challenger through without a comparison (promote and retrain alike)."""
    from scoring import registry
    from training.promotion import load_champion

    name = "riskprof-broken-champion"
    _train(data, name, seed=0)
    assert load_champion("no-such-model") is None  # no such model: no champion
    assert load_champion(name) is None  # a model without the alias: no champion
    assert runner.invoke(app, ["promote", "--name", name]).exit_code == 0
    _train(data, name, seed=3)
    found = registry._sqlite_version(f"models:/{name}@champion")
    artifact = registry._local_joblib(found.storage_location)
    artifact.write_bytes(artifact.read_bytes()[:1000])  # a truncated copy, as a failed disk leaves it
    r = runner.invoke(app, ["promote", "--name", name])
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())
    assert "cannot be loaded" in flat and "The promotion gate cannot compare a challenger with it" in flat
    assert "Traceback" not in r.output
    assert str(_client().get_model_version_by_alias(name, "champion").version) == found.version  # unchanged


def test_a_champion_whose_version_was_deleted_is_not_taken_for_no_champion(data: dict[str, Path]):
    """MLflow drops the alias with a deleted version: the next promote said "no champion before" and
    promoted any challenger without a comparison."""
    name = "riskprof-lost-champion"
    first = _train(data, name, seed=0)
    assert runner.invoke(app, ["promote", "--name", name]).exit_code == 0  # the first champion ever
    _client().delete_model_version(name, first.version)
    second = _train(data, name, seed=1)
    r = runner.invoke(app, ["promote", "--name", name])
    flat = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert f"{name} has no champion now, but v{first.version} was made champion" in flat
    assert f"riskprof promote --name {name} --force" in flat
    with pytest.raises(Exception, match="not found"):
        _client().get_model_version_by_alias(name, "champion")
    r = runner.invoke(app, ["promote", "--name", name, "--force"])
    assert r.exit_code == 0 and "without a comparison" in " ".join(r.output.split()), r.output
    version = _client().get_model_version_by_alias(name, "champion")
    assert str(version.version) == str(second.version) and version.tags["promoted"] == "forced"
