"""``riskprof retrain``: the held-back weeks, the outcomes read from files and the serving store, the
promotion gate deciding on rows neither model trained on (real LightGBM models, a real MLflow store
and a real SQLite serving store in temporary folders), and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from tests.factories import make_declarations, make_outcomes
from tests.test_promotion import assert_no_open_figures

runner = CliRunner()
HOLDOUT_WEEKS = 8  # ~290 labelled rows and 13 positives in the 30,000-declaration synthetic set
ROUNDS = 40


def _text(result: Any) -> str:
    return " ".join(result.output.split())


def _post_outcomes(url: str, frame: pd.DataFrame) -> None:
    """Record outcomes through the serving store's public API, as POST /v1/outcomes does."""
    from serving.store import OUTCOME_FIELDS, Store

    cols = frame[list(OUTCOME_FIELDS)]
    records = [{str(k): v for k, v in r.items()} for r in cols.astype(object).where(cols.notna(), None)
               .to_dict("records")]
    store = Store.from_url(url)
    try:
        assert set(store.record_outcomes(records, recorded_by="test")) == {"created"}
    finally:
        store.dispose()


@pytest.fixture
def small_files(tmp_path: Path) -> dict[str, Path]:
    """120 days of random declarations, outcomes of 40 % of them, as files (fast: no generator)."""
    rng = np.random.default_rng(7)
    decl = make_declarations(rng, 1_500)
    outc = make_outcomes(rng, decl)
    paths = {"declarations": tmp_path / "declarations.parquet", "outcomes": tmp_path / "outcomes.parquet"}
    decl.to_parquet(paths["declarations"], index=False)
    outc.to_parquet(paths["outcomes"], index=False)
    return paths


# ---- fast: the training set and the held-back weeks ------------------------------------------------


def test_holdout_keeps_back_the_last_weeks_and_leaves_the_history_whole(small_files: dict[str, Path]):
    from training.retrain import holdout_split, load_retraining_set

    ts = load_retraining_set([small_files["declarations"]], outcome_files=[small_files["outcomes"]])
    trained, holdout = holdout_split(ts, 3)
    last = ts.labelled["declaration_date"].max().normalize()
    start = last - pd.Timedelta(days=20)  # three 7-day weeks ending on the last labelled day
    assert (holdout.start, holdout.end) == (str(start.date()), str(last.date()))
    assert (trained.labelled["declaration_date"] < start).all()
    held = ts.labelled[ts.labelled["declaration_date"] >= start]
    assert holdout.rows == len(held) > 0 and holdout.positives == int(held["y"].sum())
    assert holdout.training_rows == len(trained.labelled) == len(ts.labelled) - len(held)
    # the challenger's history is today's: every declaration and every outcome, the held-back ones included
    assert trained.declarations is ts.declarations and trained.outcomes is ts.outcomes


def test_holding_back_every_labelled_row_is_refused(small_files: dict[str, Path]):
    from training.data import TrainingError
    from training.retrain import holdout_split, load_retraining_set

    ts = load_retraining_set([small_files["declarations"]], outcome_files=[small_files["outcomes"]])
    with pytest.raises(TrainingError, match="holds back every labelled row"):
        holdout_split(ts, 20)  # 140 days > the 120 days of data
    with pytest.raises(TrainingError, match="at least 1"):
        holdout_split(ts, 0)


def test_outcomes_recorded_in_the_serving_store_join_the_files(small_files: dict[str, Path], tmp_path: Path):
    from serving.retrain import retraining_set_from_files

    outc = pd.read_parquet(small_files["outcomes"])
    late = outc["inspected_date"] >= outc["inspected_date"].quantile(0.7)
    early_file = tmp_path / "early_outcomes.parquet"
    outc[~late].to_parquet(early_file, index=False)
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    # one declaration in both: the store's record (what the officer entered through the API) wins
    flipped = outc[~late].head(1).assign(hit=lambda f: ~f["hit"].astype(bool))
    _post_outcomes(url, pd.concat([outc[late], flipped]))

    ts, n_store = retraining_set_from_files([small_files["declarations"]], outcome_files=[early_file],
                                            database_url=url)
    assert n_store == int(late.sum()) + 1
    assert len(ts.labelled) == int(outc["inspected"].sum())
    assert set(ts.labelled["declaration_id"]) == set(outc.loc[outc["inspected"], "declaration_id"])
    row = ts.labelled.set_index("declaration_id").loc[flipped["declaration_id"].iloc[0]]
    assert bool(row["y"]) == bool(flipped["hit"].iloc[0])
    assert ts.sources["store"] == [url]

    without, none = retraining_set_from_files([small_files["declarations"]], outcome_files=[early_file],
                                              from_store=False, database_url=url)
    assert none is None and len(without.labelled) == int(outc.loc[~late, "inspected"].sum())


def _fake_run(sources: dict[str, list[str]]) -> tuple[Any, Any]:
    """An MLflow client whose run records ``sources``, and a loaded model of that run (label hit)."""
    from types import SimpleNamespace

    run = SimpleNamespace(data=SimpleNamespace(tags={"sources": json.dumps(sources)}))
    client = SimpleNamespace(get_run=lambda run_id: run)
    model = SimpleNamespace(run_id="run", version="7", model=SimpleNamespace(metadata={"label": "hit"}))
    return client, model


def test_the_gate_reads_again_every_outcome_file_a_retrained_challenger_learned_from(
        small_files: dict[str, Path], tmp_path: Path):
    """retrain takes --outcomes more than once; promote (and evaluate) read the challenger's training files
    again from its run's sources, but read only the first outcome file: the other files' labels were
    silently missing from the rows the gate compared the models on."""
    from training.promotion import training_files

    outc = pd.read_parquet(small_files["outcomes"])
    late = outc["inspected_date"] >= outc["inspected_date"].quantile(0.6)
    files = [tmp_path / "outcomes-early.parquet", tmp_path / "outcomes-late.parquet"]
    outc[~late].to_parquet(files[0], index=False)
    outc[late].to_parquet(files[1], index=False)
    client, model = _fake_run({"declarations": [str(small_files["declarations"])],
                               "outcomes": [str(f) for f in files]})
    notes: list[str] = []
    ts = training_files(client, model, notes)
    assert ts is not None, notes
    assert set(ts.labelled["declaration_id"]) == set(outc.loc[outc["inspected"], "declaration_id"])


def test_the_gate_reads_again_the_store_outcomes_a_retrained_challenger_learned_from(
        small_files: dict[str, Path], tmp_path: Path):
    """A retrain reads the outcomes officers recorded through the API (run source ``store``); promote without
    --declarations read only the files again, so right after `retrain --dry-run` said the gate would compare
    the models on the held-back weeks, `promote` found no labelled row after both cut-offs and refused
    ("no fair comparison period exists yet")."""
    from training.promotion import training_files

    outc = pd.read_parquet(small_files["outcomes"])
    late = outc["inspected_date"] >= outc["inspected_date"].quantile(0.6)
    early_file = tmp_path / "outcomes-early.parquet"
    outc[~late].to_parquet(early_file, index=False)
    client, model = _fake_run({"declarations": [str(small_files["declarations"])], "outcomes": [str(early_file)],
                               "store": ["sqlite:///serving.db"]})
    notes: list[str] = []
    ts = training_files(client, model, notes, store_outcomes=lambda: outc[late].reset_index(drop=True))
    assert ts is not None, notes
    assert set(ts.labelled["declaration_id"]) == set(outc.loc[outc["inspected"], "declaration_id"])
    # without the store (promote --no-store) the rows are the files' only, and the record says so
    notes = []
    files_only = training_files(client, model, notes)
    assert files_only is not None and len(files_only.labelled) == int(outc.loc[~late, "inspected"].sum())
    assert any("serving store" in n and "not read" in n for n in notes), notes


def test_the_data_fingerprint_is_the_same_for_the_same_data_however_it_was_read(small_files: dict[str, Path],
                                                                                tmp_path: Path):
    """train (one outcome file) and retrain (files merged, then the store) read the same outcomes into frames
    of other dtypes and order: the fingerprint must not tell them apart, and must tell any changed value."""
    from training.data import load_training_set
    from training.retrain import load_retraining_set
    from training.tracking import FINGERPRINT_PARTS, data_fingerprint

    def parts(ts: Any) -> dict[str, Any]:
        fp = data_fingerprint(ts.declarations, ts.outcomes, ts.seizures, ts.label)
        return {k: fp[k] for k in FINGERPRINT_PARTS}

    trained = load_training_set([small_files["declarations"]], outcomes=small_files["outcomes"])
    outc = pd.read_parquet(small_files["outcomes"])
    halves = [tmp_path / "b.parquet", tmp_path / "a.parquet"]
    outc.iloc[len(outc) // 2:].to_parquet(halves[0], index=False)
    outc.iloc[:len(outc) // 2].iloc[::-1].to_parquet(halves[1], index=False)
    retrained = load_retraining_set([small_files["declarations"]], outcome_files=halves)
    assert parts(trained) == parts(retrained)
    fp = data_fingerprint(trained.declarations, trained.outcomes, None, "hit")
    assert fp["n_outcomes"] == len(outc) and fp["outcomes_end"] == str(outc["inspected_date"].max().date())

    flipped = outc.copy()
    flipped.loc[flipped.index[3], "hit"] = not bool(flipped["hit"].iloc[3]) if flipped["inspected"].iloc[3] else False
    flipped.loc[flipped.index[3], "inspected_date"] += pd.Timedelta(days=1)
    flipped.to_parquet(tmp_path / "flipped.parquet", index=False)
    changed = load_retraining_set([small_files["declarations"]], outcome_files=[tmp_path / "flipped.parquet"])
    assert parts(changed)["outcomes"] != parts(trained)["outcomes"]
    assert parts(changed)["declarations"] == parts(trained)["declarations"]


# ---- fast: bad input through the command ------------------------------------------------------------


def test_bad_input_gives_a_clear_message_and_exit_2(small_files: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'serving.db'}")
    decl, outc = str(small_files["declarations"]), str(small_files["outcomes"])
    cases = [
        (["--declarations", str(tmp_path / "missing.parquet"), "--outcomes", outc], "missing.parquet"),
        (["--declarations", decl, "--outcomes", outc, "--holdout-weeks", "20"], "holds back every labelled row"),
        (["--declarations", decl, "--no-store"], "no labels"),
        (["--declarations", decl, "--outcomes", outc, "--rate", "0"], "--rate must be a percentage"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, ["retrain", *args])
        assert result.exit_code == 2, (args, result.output)
        assert expected in _text(result) and "Traceback" not in result.output, (args, result.output)
    result = runner.invoke(app, ["retrain", "--declarations", decl, "--holdout-weeks", "0"])
    assert result.exit_code == 2 and "--holdout-weeks" in result.output


@pytest.mark.slow
def test_a_mistyped_model_name_is_refused_before_any_training(small_files: dict[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    # --name riskprf (for riskprof) registered a new model and promoted it "(no champion before)"
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'serving.db'}")
    result = runner.invoke(app, ["retrain", "--name", "riskprf", "--declarations", str(small_files["declarations"]),
                                 "--outcomes", str(small_files["outcomes"]), "--no-store", "--num-threads", "1"])
    assert result.exit_code == 2, result.output
    assert "no registered model 'riskprf'" in _text(result) and "--new-model" in _text(result)
    assert "Traceback" not in result.output
    assert MlflowClient(uri).search_registered_models() == []  # nothing trained or registered


def test_an_unreadable_serving_store_is_an_error_before_any_training(small_files: dict[str, Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a SQLite database" * 100)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{broken}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = runner.invoke(app, ["retrain", "--declarations", str(small_files["declarations"]),
                                 "--outcomes", str(small_files["outcomes"])])
    assert result.exit_code == 2, result.output
    text = _text(result)
    assert "cannot read the outcomes recorded through the API" in text and "broken.db" in text
    assert "--no-store" in text and "Traceback" not in result.output
    assert not (tmp_path / "mlflow.db").exists()  # nothing was trained or registered


# ---- slow: real models through the gate -------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from synthetic import generate

    return dict(generate(tmp_path_factory.mktemp("retrain"), seed=1, n_declarations=30_000))


def _client() -> Any:
    from scoring.registry import configure_mlflow

    return configure_mlflow().MlflowClient()


def _full_set(data: dict[str, Path]) -> Any:
    from training.retrain import load_retraining_set

    return load_retraining_set([data["declarations"]], seizures=data["seizures"], outcome_files=[data["outcomes"]])


def _shuffled_before(ts: Any, start: str, seed: int = 0) -> Any:
    """The same set with the labels of the rows dated before ``start`` permuted: a model fitted on them
    learns nothing, while the later rows keep their true labels to be compared on."""
    from dataclasses import replace

    lab = ts.labelled.copy()
    early = (lab["declaration_date"] < pd.Timestamp(start)).to_numpy()
    lab.loc[early, "y"] = np.random.default_rng(seed).permutation(lab.loc[early, "y"].to_numpy())
    return replace(ts, labelled=lab)


def _champion(ts: Any, name: str) -> Any:
    """A model fitted on ``ts`` less the held-back weeks (the cut-off a retrain gives), made champion."""
    from training.lifecycle import promote
    from training.retrain import holdout_split
    from training.tracking import train_and_log

    trained, _ = holdout_split(ts, HOLDOUT_WEEKS)
    result = train_and_log(trained, name, seed=0, num_threads=1, num_boost_round=ROUNDS, select=False)
    assert_no_open_figures()
    assert promote(name, ts=ts).promoted
    return result


def _assert_compared_on_rows_neither_trained_on(decision: Any, holdout: Any) -> None:
    assert decision.basis == "after_both_cutoffs" and decision.figures == {"challenger": "live", "champion": "live"}
    assert decision.challenger_cutoff < holdout.start and decision.champion_cutoff < holdout.start
    assert decision.period == [holdout.start, holdout.end] or decision.period[0] >= holdout.start
    assert decision.rows == holdout.rows and decision.positives == holdout.positives >= 10


@pytest.mark.slow
@pytest.mark.integration
def test_retrain_promotes_a_better_challenger_using_outcomes_from_the_store(
        synthetic: dict[str, Path], mlflow_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Champion: fitted on permuted labels. The retrained challenger learns the real ones, and the
    outcomes of the last months exist only in the serving store."""
    name = "retrain-better"
    full = _full_set(synthetic)
    start = str((full.labelled["declaration_date"].max().normalize()
                 - pd.Timedelta(days=7 * HOLDOUT_WEEKS - 1)).date())
    champion = _champion(_shuffled_before(full, start), name)

    outc = pd.read_parquet(synthetic["outcomes"])
    recent = outc["inspected_date"] >= pd.Timestamp(start) - pd.Timedelta(days=60)
    older = tmp_path / "older_outcomes.parquet"
    outc[~recent].to_parquet(older, index=False)
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    _post_outcomes(url, outc[recent])
    monkeypatch.setenv("RISKPROF_DATABASE_URL", url)

    result = runner.invoke(app, ["retrain", "--name", name, "--declarations", str(synthetic["declarations"]),
                                 "--seizures", str(synthetic["seizures"]), "--outcomes", str(older),
                                 "--holdout-weeks", str(HOLDOUT_WEEKS), "--rounds", str(ROUNDS), "--no-select",
                                 "--num-threads", "1", "--fail-on-refusal",
                                 "--even-if-unchanged"])  # the champion's labels were permuted in memory only
    assert_no_open_figures()
    assert result.exit_code == 0, result.output
    text = _text(result)
    client = _client()
    champ = client.get_model_version_by_alias(name, "champion")
    assert str(champ.version) != champion.version and champ.tags["promoted"] == "checked"
    assert f"{int(recent.sum()):,} from the serving store" in text
    assert f"{len(full.labelled):,} labelled rows" in text  # files + store: every outcome known
    assert "decision: promoted;" in text and f"promoted: v{champ.version} is now champion" in text

    tags = client.get_run(champ.run_id).data.tags
    retrain_run = client.get_run(tags["retrain_run_id"])
    p = retrain_run.data.params
    assert (p["holdout_start"], p["challenger_version"], p["applied"]) == (start, str(champ.version), "True")
    assert retrain_run.data.metrics["store_outcomes"] == int(recent.sum())
    promotion = client.get_run(p["promotion_run_id"])
    assert promotion.data.tags["promotion_decision"] == "promoted"
    assert promotion.data.params["basis"] == "after_both_cutoffs"
    assert json.loads(promotion.data.params["period"])[0] >= start
    assert f"compared on: after_both_cutoffs {json.loads(promotion.data.params['period'])[0]}" in text
    m = promotion.data.metrics
    assert m["challenger_precision_at_5"] > m["champion_precision_at_5"]


@pytest.mark.slow
@pytest.mark.integration
def test_retrain_refuses_a_worse_challenger_and_a_dry_run_promotes_nothing(synthetic: dict[str, Path],
                                                                           mlflow_store: Any):
    """Champion: the real model. The retrained challenger is fitted on permuted labels; the gate compares
    both on the held-back weeks, whose true labels neither model saw."""
    from training.retrain import retrain

    name = "retrain-worse"
    full = _full_set(synthetic)
    champion = _champion(full, name)
    holdout_start = str((full.labelled["declaration_date"].max().normalize()
                         - pd.Timedelta(days=7 * HOLDOUT_WEEKS - 1)).date())
    # the same files as the champion's, the labels permuted in memory: something new only to this test
    worse = retrain(_shuffled_before(full, holdout_start), name, holdout_weeks=HOLDOUT_WEEKS, num_threads=1,
                    num_boost_round=ROUNDS, select=False, even_if_unchanged=True)
    d = worse.decision
    assert worse.applied and not d.promoted and worse.outcome == "refused"
    _assert_compared_on_rows_neither_trained_on(d, worse.holdout)
    assert d.challenger_precision < d.champion_precision
    assert d.challenger_version == worse.training.version and d.champion_version == champion.version
    client = _client()
    assert str(client.get_model_version_by_alias(name, "champion").version) == champion.version
    assert client.get_model_version(name, worse.training.version).tags["promotion_decision"] == "refused"
    assert client.get_run(worse.run_id).data.tags["retrain_decision"] == "refused"

    # a dry run with the real labels: the gate's comparison says it would promote, and nothing moves
    dry = retrain(full, name, holdout_weeks=HOLDOUT_WEEKS, num_threads=1, num_boost_round=ROUNDS, select=False,
                  apply=False, even_if_unchanged=True)
    assert_no_open_figures()
    assert dry.decision.promoted and dry.outcome == "would be promoted (dry run)"
    _assert_compared_on_rows_neither_trained_on(dry.decision, dry.holdout)
    assert str(client.get_model_version_by_alias(name, "champion").version) == champion.version
    assert "promotion_decision" not in client.get_model_version(name, dry.training.version).tags
    assert client.get_run(dry.run_id).data.params["promotion_run_id"] == "None"


@pytest.mark.slow
@pytest.mark.integration
def test_retrain_with_nothing_new_since_the_champion_trains_nothing(synthetic: dict[str, Path], mlflow_store: Any,
                                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The same declarations, outcomes and seizures as the champion learned from: a retrain registered an
    identical version and promoted it on the tie. Now it says so and exits 0 with nothing registered; also
    when the champion is a refreshed snapshot of that version; --even-if-unchanged trains all the same."""
    from serving.refresh import refresh_from_files

    name = "retrain-unchanged"
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'serving.db'}")  # an empty store
    args = ["retrain", "--name", name, "--declarations", str(synthetic["declarations"]), "--seizures",
            str(synthetic["seizures"]), "--outcomes", str(synthetic["outcomes"]), "--holdout-weeks",
            str(HOLDOUT_WEEKS), "--rounds", str(ROUNDS), "--no-select", "--num-threads", "1"]
    first = runner.invoke(app, [*args, "--new-model"])  # the model's first version: no train before
    assert first.exit_code == 0 and "decision: promoted;" in first.output, first.output
    client = _client()

    def versions() -> list[str]:
        return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))

    v1 = str(client.get_model_version_by_alias(name, "champion").version)
    end = str(pd.read_parquet(synthetic["outcomes"])["inspected_date"].max().date())
    again = runner.invoke(app, args)
    assert_no_open_figures()
    assert again.exit_code == 0, again.output
    assert f"nothing new since version {v1} (its outcomes end on {end}): no new version" in _text(again)
    assert "--even-if-unchanged" in _text(again) and "Traceback" not in again.output
    assert versions() == [v1] and str(client.get_model_version_by_alias(name, "champion").version) == v1

    # the nightly refresh moved the champion to a snapshot of v1: still nothing new for the booster to learn
    refreshed = refresh_from_files(f"models:/{name}@champion", [synthetic["declarations"]],
                                   seizures=synthetic["seizures"], outcome_files=[synthetic["outcomes"]],
                                   from_store=False)
    after_refresh = runner.invoke(app, [*args, "--dry-run"])
    assert after_refresh.exit_code == 0, after_refresh.output
    text = _text(after_refresh)
    assert f"nothing new since version {v1} (its outcomes end on {end})" in text
    assert f"champion v{refreshed.version} is its feature snapshot refreshed since" in text
    assert versions() == sorted([v1, refreshed.version])

    # one more outcome is something new
    from training.retrain import load_retraining_set, nothing_new_since_champion

    full = _full_set(synthetic)
    assert nothing_new_since_champion(full, name) is not None
    outc = pd.read_parquet(synthetic["outcomes"])
    extra = pd.DataFrame({"declaration_id": [pd.read_parquet(synthetic["declarations"])
                                             .loc[lambda d: ~d["declaration_id"].isin(outc["declaration_id"]),
                                                  "declaration_id"].iloc[-1]],
                          "inspected_date": [outc["inspected_date"].max()], "inspected": [True], "hit": [False],
                          "selection_source": ["officer"], "selection_probability": [1.0]})
    extra.to_parquet(tmp_path / "one_more.parquet", index=False)
    more = load_retraining_set([synthetic["declarations"]], seizures=synthetic["seizures"],
                               outcome_files=[synthetic["outcomes"], tmp_path / "one_more.parquet"])
    assert nothing_new_since_champion(more, name) is None

    forced = runner.invoke(app, [*args, "--even-if-unchanged", "--dry-run"])
    assert_no_open_figures()
    assert forced.exit_code == 0 and "would be" in forced.output, forced.output
    assert len(versions()) == 3


@pytest.mark.slow
@pytest.mark.integration
def test_retrain_judges_the_version_it_registered_when_another_job_moves_the_challenger_alias(
        synthetic: dict[str, Path], mlflow_store: Any, monkeypatch: pytest.MonkeyPatch):
    """Two retrains at once: the other one registered its version (moving the challenger alias) between this
    one's registration and its gate. The gate loaded models:/<name>@challenger, so it judged (and could promote)
    the other job's version on this job's rows, then this job stopped with 'the challenger alias moved ...
    nothing promoted by this run' and recorded nothing of its own."""
    import training.tracking as tracking
    from training.retrain import retrain

    name = "retrain-concurrent"
    full = _full_set(synthetic)
    champion = _champion(full, name)
    client = _client()
    real = tracking.train_and_log

    def and_another_job_registers(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        client.set_registered_model_alias(name, "challenger", champion.version)  # the other job's version
        return result

    monkeypatch.setattr(tracking, "train_and_log", and_another_job_registers)
    r = retrain(full, name, holdout_weeks=HOLDOUT_WEEKS, num_threads=1, num_boost_round=ROUNDS, select=False,
                even_if_unchanged=True)
    assert_no_open_figures()
    assert r.decision.challenger_version == r.training.version != champion.version
    assert r.decision.champion_version == champion.version and r.decision.basis == "after_both_cutoffs"
    assert client.get_model_version(name, r.training.version).tags["promotion_decision"] == r.outcome
    assert client.get_run(r.run_id).data.params["challenger_version"] == r.training.version
