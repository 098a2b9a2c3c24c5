"""CLI defects found when the tool was attacked: each ends in a clear message and a non-zero exit, never a
traceback or a silent success."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from tests.conftest import REPO, TrainedModel, settings_env
from tests.factories import make_declarations, make_outcomes

runner = CliRunner()


@pytest.fixture
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """MLflow and the serving store in ``tmp_path`` (never the repository's models/ folder); for tests
    that must fail before either is opened."""
    models = tmp_path / "models"
    with settings_env(monkeypatch, unset=("RISKPROF_DATABASE_URL",), RISKPROF_MODELS_DIR=str(models),
                      MLFLOW_TRACKING_URI=f"sqlite:///{models / 'mlflow.db'}"):
        yield models


@pytest.fixture
def registry(mlflow_store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session's MLflow store (created once: creating one takes seconds), serving store unset."""
    from serving.settings import get_serving_settings

    monkeypatch.delenv("RISKPROF_DATABASE_URL", raising=False)
    get_serving_settings.cache_clear()
    yield mlflow_store[0]
    get_serving_settings.cache_clear()


@pytest.fixture
def history_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    decl = make_declarations(rng, 200)
    paths = {"declarations": tmp_path / "declarations.parquet", "outcomes": tmp_path / "outcomes.parquet"}
    decl.to_parquet(paths["declarations"], index=False)
    make_outcomes(rng, decl).to_parquet(paths["outcomes"], index=False)
    return paths


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output, output


def _flat(output: str) -> str:
    """The output as one line: no wrapping, no boxes drawn around the error."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


# ---- refresh-features: an unreadable serving store is an error, not "no outcomes" --------------------


@pytest.mark.integration  # refreshes a model trained and registered in MLflow
def test_refresh_fails_loudly_when_the_store_cannot_be_read(trained_model: TrainedModel, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from scoring.registry import configure_mlflow, resolve_version

    client = configure_mlflow().MlflowClient()
    source_version = resolve_version(trained_model.uri)[1]
    versions = len(client.search_model_versions(f"name='{trained_model.name}'"))
    corrupt = tmp_path / "serving.db"
    corrupt.write_bytes(b"this is not an SQLite database, it is a truncated copy " * 200)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{corrupt}")
    d = trained_model.data
    args = ["refresh-features", "--model", trained_model.uri, "--declarations", str(d["declarations"]),
            "--seizures", str(d["seizures"]), "--outcomes", str(d["outcomes"]), "--alias", "refreshed-cli"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    flat = _flat(r.output)
    assert "cannot read the outcomes recorded through the API" in flat and str(corrupt) in flat
    assert "file is not a database" in flat and "--no-store" in flat
    assert len(client.search_model_versions(f"name='{trained_model.name}'")) == versions  # nothing registered
    # told to leave the store out, the refresh does not read it
    r = runner.invoke(app, [*args, "--no-store"])
    assert r.exit_code == 0, r.output
    assert "refreshed" in r.output and "serving store" not in r.output
    mv = client.get_model_version_by_alias(trained_model.name, "refreshed-cli")
    after = client.search_model_versions(f"name='{trained_model.name}'")
    assert len(after) == versions + 1 and int(mv.version) == max(int(v.version) for v in after)
    assert mv.tags["refreshed_from"] == source_version


@pytest.mark.integration  # refreshes a model trained and registered in MLflow
def test_a_refresh_that_would_forget_the_history_registers_nothing(trained_model: TrainedModel,
                                                                   tmp_path: Path) -> None:
    """No declarations (a header-only file), or declarations and outcomes ending before the model's own
    snapshot: refused before anything is registered (it registered the version and moved the alias)."""
    from scoring.registry import configure_mlflow

    client = configure_mlflow().MlflowClient()
    versions = len(client.search_model_versions(f"name='{trained_model.name}'"))
    d = trained_model.data
    decl = pd.read_parquet(d["declarations"]) if str(d["declarations"]).endswith(".parquet") \
        else pd.read_csv(d["declarations"], dtype=str)
    header_only, early = tmp_path / "header.csv", tmp_path / "early.csv"
    decl.head(0).to_csv(header_only, index=False)
    dates = pd.to_datetime(decl["declaration_date"])
    decl[dates <= dates.min() + (dates.max() - dates.min()) / 2].to_csv(early, index=False)
    for declarations, message in ((header_only, "no declarations to refresh from"),
                                  (early, "before the model's own feature snapshot")):
        r = runner.invoke(app, ["refresh-features", "--model", trained_model.uri, "--declarations",
                                str(declarations), "--no-store", "--alias", "forgetful"])
        assert r.exit_code == 2, r.output
        _no_traceback(r.output)
        assert message in _flat(r.output) and "Nothing was registered" in _flat(r.output)
    assert len(client.search_model_versions(f"name='{trained_model.name}'")) == versions
    assert not [v for v in client.search_model_versions(f"name='{trained_model.name}'") if "forgetful" in v.aliases]


@pytest.mark.integration  # refreshes a model trained and registered in MLflow
def test_a_refresh_from_a_stale_declarations_file_or_without_seizures_registers_nothing(
        trained_model: TrainedModel, tmp_path: Path) -> None:
    """The nightly refresh given last month's declarations file (or no --seizures) passed the check, since
    the outcomes' inspection dates reach as far as the snapshot's: it registered a snapshot that had forgotten
    a month of declarations (or every seizure) and moved the alias to it."""
    from scoring.registry import configure_mlflow

    client = configure_mlflow().MlflowClient()
    versions = len(client.search_model_versions(f"name='{trained_model.name}'"))
    d = trained_model.data
    decl = pd.read_parquet(d["declarations"])
    stale = tmp_path / "stale.parquet"
    decl[decl["declaration_date"] <= decl["declaration_date"].max() - pd.Timedelta(days=30)].to_parquet(stale)
    last = str(decl["declaration_date"].max().date())
    cases = [(["--declarations", str(stale), "--seizures", str(d["seizures"])], "the declarations given end on"),
             (["--declarations", str(d["declarations"])], "the seizures given are none")]
    for args, message in cases:
        r = runner.invoke(app, ["refresh-features", "--model", trained_model.uri, *args, "--outcomes",
                                str(d["outcomes"]), "--no-store", "--alias", "forgetful"])
        assert r.exit_code == 2, r.output
        _no_traceback(r.output)
        assert message in _flat(r.output) and "Nothing was registered" in _flat(r.output), r.output
    assert f"declarations up to {last}" in _flat(runner.invoke(app, [
        "refresh-features", "--model", trained_model.uri, *cases[0][0], "--outcomes", str(d["outcomes"]),
        "--no-store"]).output)
    assert len(client.search_model_versions(f"name='{trained_model.name}'")) == versions


def test_the_refresh_check_compares_each_kind_of_record_with_the_snapshot() -> None:
    import numpy as np

    from features.history import History
    from tests.factories import make_declarations, make_outcomes, make_seizures
    from training.data import TrainingError
    from training.lifecycle import check_refresh_history
    from training.tracking import data_extent

    rng = np.random.default_rng(0)
    decl = make_declarations(rng, 300, start="2023-01-01", days=90)
    outc, seiz = make_outcomes(rng, decl), make_seizures(rng, 30, start="2022-10-01", days=150)
    learned = data_extent(decl, outc, seiz)
    check_refresh_history(History(decl, outc, seiz), None, learned)  # the same data: fine
    late = outc["inspected_date"].max()
    early = decl[decl["declaration_date"] < decl["declaration_date"].max() - pd.Timedelta(days=20)]
    with pytest.raises(TrainingError, match="the declarations given end on .* 300 declarations up to"):
        check_refresh_history(History(early, outc, seiz), late, learned)
    with pytest.raises(TrainingError, match="the seizures given are none"):
        check_refresh_history(History(decl, outc, None), late, learned)
    with pytest.raises(TrainingError, match="the outcomes given end on"):
        check_refresh_history(History(decl, outc[outc["inspected_date"] < late], seiz), None, learned)
    check_refresh_history(History(early, outc, None), late, None)  # a run recording nothing: the old check only


def test_store_outcomes_fail_on_a_corrupt_store(tmp_path: Path) -> None:
    from serving.refresh import StoreReadError, store_outcomes

    corrupt = tmp_path / "serving.db"
    corrupt.write_bytes(b"not a database " * 200)
    with pytest.raises(StoreReadError, match="file is not a database") as info:
        store_outcomes(f"sqlite:///{corrupt}")
    assert str(corrupt) in str(info.value) and "--no-store" in str(info.value)


def test_store_outcomes_error_names_the_store_without_its_password() -> None:
    from serving.refresh import StoreReadError, store_outcomes

    url = "postgresql+psycopg://riskprof:s3cret@127.0.0.1:1/riskprof?connect_timeout=2"
    with pytest.raises(StoreReadError, match="cannot read the outcomes") as info:
        store_outcomes(url)
    assert "s3cret" not in str(info.value) and "127.0.0.1:1/riskprof" in str(info.value)


def test_history_merges_files_then_the_store(history_files: dict[str, Path], tmp_path: Path) -> None:
    """The store's outcome for a declaration wins over a file's; a fresh store adds nothing."""
    from serving.refresh import history_from_files
    from serving.store import Store

    files = pd.read_parquet(history_files["outcomes"])
    first = files.iloc[0]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    history, n_store = history_from_files([history_files["declarations"]], outcome_files=[history_files["outcomes"]],
                                          database_url=url)
    assert n_store == 0 and len(history.outcomes) == len(files)
    store = Store.from_url(url)
    try:
        store.record_outcomes([{"declaration_id": first["declaration_id"],
                                "inspected_date": str(first["inspected_date"].date()), "inspected": True,
                                "selection_source": "officer", "selection_probability": 1.0,
                                "hit": not bool(first["hit"])}], "test")
    finally:
        store.dispose()
    history, n_store = history_from_files([history_files["declarations"]], outcome_files=[history_files["outcomes"]],
                                          database_url=url)
    assert n_store == 1 and len(history.outcomes) == len(files)
    row = history.outcomes.set_index("declaration_id").loc[first["declaration_id"]]
    assert bool(row["hit"]) is not bool(first["hit"]) and row["selection_source"] == "officer"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database " * 200)
    _, skipped = history_from_files([history_files["declarations"]], from_store=False,
                                    database_url=f"sqlite:///{corrupt}")
    assert skipped is None


# ---- score: a bad option or model is named, before any work starts -----------------------------------


@pytest.mark.integration  # the model URI is checked against a real MLflow registry
def test_score_with_a_run_uri_is_a_clear_error(registry: str, history_files: dict[str, Path],
                                              tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out", str(out),
                            "--model", "runs:/deadbeef/model"])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "cannot load model runs:/deadbeef/model" in r.output and "models:/NAME@alias" in r.output
    r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out", str(out),
                            "--model", "models:/no-such-model@champion"])
    assert r.exit_code == 2 and "cannot load model models:/no-such-model@champion" in r.output, r.output
    assert list(tmp_path.glob("scores*")) == []  # nothing written, no checkpoint left behind


@pytest.mark.parametrize("capacity, problem", [("abc", "is not a number"), ("inf", "must be finite"),
                                                ("1e400", "must be finite"), ("150%", "within 0-100")])
def test_score_names_a_bad_capacity(isolated_settings: Path, history_files: dict[str, Path], tmp_path: Path,
                                    capacity: str, problem: str) -> None:
    r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out",
                            str(tmp_path / "scores.parquet"), "--capacity", capacity])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "'--capacity'" in r.output and problem in _flat(r.output)


def test_score_does_not_create_the_output_folder(isolated_settings: Path, history_files: dict[str, Path],
                                                 tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "deeper"
    r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out",
                            str(missing / "x.parquet")])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert f"folder {missing} does not exist" in _flat(r.output)
    assert not (tmp_path / "no-such-folder").exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out",
                            str(a_file / "x.parquet")])
    assert r.exit_code == 2 and "is not a folder" in r.output, r.output
    for name in ("scores.csv", "scores"):  # Parquet bytes under a CSV name (and --csv's copy as scores.csv.csv)
        r = runner.invoke(app, ["score", "--manifest", str(history_files["declarations"]), "--out",
                                str(tmp_path / name), "--csv"])
        assert r.exit_code == 2 and "so name the file .parquet" in _flat(r.output), r.output
        assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.csv").exists()


# ---- validate rejects the mapping train rejects ------------------------------------------------------


def test_validate_rejects_a_label_known_column_that_train_rejects(isolated_settings: Path, tmp_path: Path) -> None:
    decl = make_declarations(np.random.default_rng(1), 60)
    data = tmp_path / "decl.csv"
    decl.assign(found=[i % 3 == 0 for i in range(len(decl))], note="x").to_csv(data, index=False)
    columns = "\n".join(f"  {c}: {c}" for c in decl.columns)
    for bad in ("arrival_date", "importer_id"):  # not a column; a column but not a date
        mapping = tmp_path / f"mapping-{bad}.yaml"
        mapping.write_text(f"contract: declaration\ncolumns:\n{columns}\nlabels:\n  fraud:\n    column: found\n"
                           f"    equals: true\nlabel_known: {bad}\nextra_columns: [note]\n")
        validated = runner.invoke(app, ["validate", str(data), "--mapping", str(mapping)])
        trained = runner.invoke(app, ["train", "--declarations", str(data), "--mapping", str(mapping),
                                      "--label", "fraud"])
        for r in (validated, trained):
            assert r.exit_code == 2, r.output
            _no_traceback(r.output)
            assert f"label_known column '{bad}' is not a date column" in _flat(r.output)
    # a date column of the contract (or an extra column) is accepted by both
    good = tmp_path / "mapping-good.yaml"
    good.write_text(f"contract: declaration\ncolumns:\n{columns}\nlabel_known: declaration_date\n")
    ok = runner.invoke(app, ["validate", str(data), "--mapping", str(good)])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("env, args, says", [
    ({"RISKPROF_LANE_RED": "abc"}, ["keys", "list"], "RISKPROF_LANE_RED='abc': Input should be a valid number"),
    ({"RISKPROF_LANE_RED": "0.1", "RISKPROF_LANE_YELLOW": "0.5"}, ["keys", "list"],
     "lane thresholds must satisfy 1 ≥ red ≥ yellow ≥ 0, got red=0.1, yellow=0.5"),
    ({"RISKPROF_NUM_THREADS": "zero"}, ["keys", "list"], "RISKPROF_NUM_THREADS='zero': Input should be a valid integer"),
    ({"RISKPROF_NUM_THREADS": "0"}, ["promote"], "RISKPROF_NUM_THREADS='0': Input should be greater than or equal to 1"),
    ({"RISKPROF_INSPECTION_RATE": "0"}, ["promote"], "RISKPROF_INSPECTION_RATE='0': Input should be greater than 0"),
    ({"RISKPROF_MAX_ITEMS": "-5"}, ["serve"], "RISKPROF_MAX_ITEMS='-5': Input should be greater than or equal to 1"),
    ({"RISKPROF_PAGE_SIZE": "1"}, ["serve"], "RISKPROF_PAGE_SIZE='1': Input should be greater than or equal to 5"),
])
def test_a_bad_setting_in_the_environment_is_one_clear_line(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch,
                                                            env: dict[str, str], args: list[str], says: str) -> None:
    from serving.settings import get_serving_settings
    from settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_serving_settings.cache_clear()
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an exception escaping the command
    assert f"error: bad setting in the environment: {says}" in " ".join(result.output.split())
    assert "Traceback" not in result.output and "pydantic" not in result.output


@pytest.mark.parametrize(("rate", "said"), [
    ("0", "--rate must be a percentage in (0, 100]"), ("-5", "--rate must be a percentage in (0, 100]"),
    ("150", "--rate must be a percentage in (0, 100]"), ("nan", "--rate must be a percentage in (0, 100]"),
    # RISKPROF_INSPECTION_RATE's fraction typed as --rate: the top 0.05 % (a row) promoted a worse model
    ("0.05", "--rate 0.05 is 0.05 % of the rows: --rate is in per cent (5 for 5 %)"),
])
def test_promote_checks_its_rate_before_the_gate_runs(rate: str, said: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """It replaced 0 by the default and promoted, and recorded a decision run for the others."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    r = runner.invoke(app, ["promote", "--name", "nothing-here", "--rate", rate])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert said in _flat(r.output)
    assert not (tmp_path / "mlflow.db").exists()  # refused before MLflow was even opened


@pytest.mark.parametrize(("url", "said"), [
    ("notaurl", "the database URL notaurl cannot be used: Could not parse"),
    ("mysql://u:secret@localhost/x", "mysql://u:***@localhost/x cannot be used: its database driver is not installed"),
    ("foo://bar", "foo://bar cannot be used: Can't load plugin"),
    ("sqlite:///{file}/x.db", "x.db cannot be used: [Errno"),
    ("sqlite:///:memory:", "is a SQLite database in memory: it would vanish when this command ends"),
    ("sqlite://", "is a SQLite database in memory"),
])
@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "create", "--role", "admin", "--name", "x"],
                                     ["db", "current"], ["db", "upgrade"], ["profiles", "list"], ["monitor"]])
def test_a_store_url_that_cannot_be_used_is_one_line(url: str, said: str, command: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracebacks before (ArgumentError, ModuleNotFoundError, NoSuchModuleError, FileExistsError); an
    in-memory store printed a new key, or 'stored', and forgot it at exit."""
    file = tmp_path / "a-file"
    file.write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", url.format(file=file))
    from serving.settings import get_serving_settings

    get_serving_settings.cache_clear()
    try:
        r = runner.invoke(app, command)
    finally:
        get_serving_settings.cache_clear()
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    flat = _flat(r.output)
    assert said in flat and "secret" not in flat
    assert "rpk_" not in flat


@pytest.mark.parametrize("command", [
    ["report", "-s", str(REPO / "tests" / "data" / "reports" / "seizures_small.csv"), "-o", "{file}/report"],
    ["profiles", "export", "--out", "{file}/profiles.yaml"],
    ["validate", str(REPO / "tests" / "data" / "reports" / "seizures_small.csv"), "--contract", "seizure",
     "--mapping", "{folder}"],
])
def test_a_path_the_system_refuses_is_one_line_naming_it(command: list[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An output folder under a regular file, a folder given for a file: NotADirectoryError,
    FileExistsError or IsADirectoryError tracebacks before."""
    file = tmp_path / "a-file"
    file.write_text("x")
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'serving.db'}")
    r = runner.invoke(app, [c.format(file=file, folder=tmp_path) for c in command])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    flat = _flat(r.output)
    assert flat.startswith("error: cannot use ") and str(file if "{file}" in " ".join(command) else tmp_path) in flat


@pytest.mark.parametrize(("args", "said"), [
    (["train", "--declarations", "{d}", "--seed", "-1"], "Invalid value for '--seed'"),
    (["train", "--declarations", "{d}", "--rounds", "0"], "Invalid value for '--rounds'"),
    (["train", "--declarations", "{d}", "--num-threads", "0"], "Invalid value for '--num-threads'"),
    (["train", "--declarations", "{d}", "--test-start", "2023-02-30"], "--test-start: '2023-02-30' is not a date"),
    (["train", "--declarations", "{d}", "--name", "bad/name"], "a registered model name cannot contain"),
    (["train", "--declarations", "{d}", "--name", ""], "--name is empty"),
    (["retrain", "--declarations", "{d}", "--name", "a:b"], "a registered model name cannot contain"),
    (["promote", "--name", " "], "--name is empty"),
    (["refresh-features", "--declarations", "{d}", "--alias", "bad/alias"], "an alias is letters, digits"),
    (["score", "--manifest", "{d}", "--out", "{tmp}/o.parquet", "--seed", "-1"], "Invalid value for '--seed'"),
    (["generate", "--out", "{tmp}/g", "--seed", "-3"], "Invalid value for '--seed'"),
    (["simulate", "--seed", "-1"], "Invalid value for '--seed'"),
    (["serve", "--log-level", "foo"], "--log-level 'foo': one of critical"),
])
def test_options_out_of_range_are_refused_before_any_work(args: list[str], said: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each was a traceback after the data were loaded or the model trained (or, for --name '', a silent
    fall-back to the default name); nothing is created in MLflow."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    d = tmp_path / "declarations.csv"
    d.write_text("declaration_id\n")
    r = runner.invoke(app, [a.format(d=d, tmp=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert said in _flat(r.output)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(("uri", "said"), [
    ("foo://bar", "MLflow has no tracking store for 'foo:'"),
    ("sqlite:///{manifest}", "is not a SQLite database"),
    ("sqlite:///{folder}", "is a folder, not a SQLite file"),
    ("http://ops:s3cret@127.0.0.1:{closed}/", "no MLflow server answers at 127.0.0.1:{closed}"),
])
@pytest.mark.parametrize("command", [["promote"], ["score", "--manifest", "{manifest}", "--out", "{folder}/s.parquet"],
                                     ["evaluate", "--declarations", "{manifest}", "--model", "models:/riskprof@champion"]])
def test_a_tracking_uri_mlflow_cannot_open_is_one_line(uri: str, said: str, command: list[str],
                                                       isolated_settings: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyError: 'foo' and sqlalchemy's 'file is not a database' came as tracebacks from inside MLflow; a
    tracking server that is not running kept each command in MLflow's retries for ~4 minutes."""
    from settings import get_settings

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("declaration_id,declaration_date\nD1,2023-01-01\n")
    manifest_bytes = manifest.read_bytes()
    closed = _closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(manifest=manifest, folder=tmp_path, closed=closed))
    get_settings.cache_clear()
    r = runner.invoke(app, [c.format(manifest=manifest, folder=tmp_path) for c in command])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert said.format(closed=closed) in _flat(r.output)
    assert "s3cret" not in r.output
    assert manifest.read_bytes() == manifest_bytes


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_delimiter_at_the_end_of_every_row_no_longer_shifts_the_columns(tmp_path: Path) -> None:
    """pandas took the first column as the index: every value moved one column left ('declaration_date:
    got import'). An empty last field is dropped; a value past the header's columns is an error."""
    from features.io import LoadError, read_raw

    trailing = tmp_path / "trailing.csv"
    trailing.write_text("declaration_id,hs_code\nD1,820600,\nD2,930100,\n")
    assert read_raw(trailing).to_dict("records") == [{"declaration_id": "D1", "hs_code": "820600"},
                                                     {"declaration_id": "D2", "hs_code": "930100"}]
    extra = tmp_path / "extra.csv"
    extra.write_text("declaration_id,hs_code\nD1,820600,x\nD2,930100,y\n")
    with pytest.raises(LoadError, match="rows hold more fields than the header names"):
        read_raw(extra)


@pytest.mark.parametrize(("args", "said"), [
    (["score", "--manifest", "{m}", "--out", "{tmp}/s.parquet", "--capacity", "1.5"], "not a whole number of items"),
    (["score", "--manifest", "{m}", "--out", "{tmp}/s.parquet", "--all-reasons", "--no-reasons"], "contradict"),
    (["score", "--manifest", "{m}", "--out", "{tmp}/s.parquet", "--model", ""], "--model is empty"),
    (["score", "--manifest", "{m}", "--out", "{tmp}"], "is a folder: name the output file in it"),
    (["score", "--manifest", "{m}", "--out", "{tmp}/s.parquet", "--profiles", "{tmp}"], "a folder, not a YAML file"),
    (["profiles", "list", "--status", "foo"], "--status 'foo': one of draft, active, retired"),
    (["profiles", "import", "{empty}"], "holds no profiles and no watch lists"),
    (["profiles", "import", "{tmp}"], "a folder, not a YAML file"),
    (["validate", "{m}", "--limit", "-1"], "Invalid value for '--limit'"),
    (["simulate", "--discovery-recall", "5"], "Invalid value for '--discovery-recall'"),
    (["simulate", "--weeks", "2"], "warmup weeks (--warmup-weeks, 2) must be at least 1 and fewer than the weeks "
                                   "replayed (--weeks, 2)"),  # it said "warmup_weeks must be within 1-1"
    (["simulate", "--weeks", "5", "--drift-week", "9"], "the drift week (--drift-week, 9) must be from"),
    (["db", "upgrade", "--revision", "foo"], "Can't locate revision identified by 'foo'"),
    (["evaluate", "--declarations", "{m}", "--model", "models:/x@y", "--json", "{tmp}/no/such/m.json"],
     "folder {tmp}/no/such does not exist"),  # it made the folders, after the evaluation
    (["evaluate", "--declarations", "{m}", "--model", "models:/x@y", "--json", "{tmp}"], "is a folder: name a file"),
])
def test_more_options_and_inputs_a_sweep_found_are_refused_in_one_line(args: list[str], said: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each was accepted before with a wrong or empty result (capacity 1.5 selected 1 item, an empty YAML
    said 'nothing changed', --status foo listed nothing, db upgrade to an unknown revision did nothing)
    or said 'no such file' of a folder."""
    from serving.settings import get_serving_settings

    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'serving.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    get_serving_settings.cache_clear()
    m, empty = tmp_path / "m.csv", tmp_path / "empty.yaml"
    m.write_text("declaration_id\nD1\n")
    empty.write_text("# nothing here\n")
    try:
        r = runner.invoke(app, [a.format(m=m, tmp=tmp_path, empty=empty) for a in args])
    finally:
        get_serving_settings.cache_clear()
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert said.format(tmp=tmp_path) in _flat(r.output)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", [
    ["score", "--manifest", "{m}", "--out", "{tmp}/s.parquet"],
    ["evaluate", "--declarations", "{m}", "--model", "models:/riskprof@champion"],
    ["promote"],
    ["refresh-features", "--declarations", "{m}"],
])
def test_a_mistyped_sqlite_tracking_store_is_named_and_not_created(command: list[str], isolated_settings: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow created an empty 1 MB store at the mistyped path, then said the model was not found."""
    from settings import get_settings

    typo = tmp_path / "mlfow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo}")
    get_settings.cache_clear()
    m = tmp_path / "manifest.csv"
    m.write_text("declaration_id,declaration_date\nD1,2023-01-01\n")
    r = runner.invoke(app, [c.format(m=m, tmp=tmp_path) for c in command])
    assert r.exit_code != 0, r.output
    _no_traceback(r.output)
    assert f"{typo} does not exist, so no model is registered there" in _flat(r.output)
    assert not typo.exists()


def test_score_reads_a_delimiter_at_the_end_of_every_row_as_validate_does(tmp_path: Path) -> None:
    """validate and train read such a file right (features.io.read_raw), but score's chunked reader took
    the first column as the index: every row was rejected ('declaration_date: got 40') or, where the
    shifted values still fitted, scored as another declaration. Both readers now share the options."""
    from batch._input import inspect_manifest, iter_chunks
    from features.io import LoadError

    trailing = tmp_path / "trailing.csv"
    trailing.write_text("declaration_id;hs_code\nD1;820600;\nD2;930100;\n")
    [file] = inspect_manifest(trailing)
    [(_c, _offset, frame)] = list(iter_chunks(file, 10))
    assert frame.to_dict("records") == [{"declaration_id": "D1", "hs_code": "820600"},
                                        {"declaration_id": "D2", "hs_code": "930100"}]
    extra = tmp_path / "extra.csv"
    extra.write_text("declaration_id;hs_code\nD1;820600;x\nD2;930100;y\n")
    [file] = inspect_manifest(extra)
    with pytest.raises(LoadError, match="rows hold more fields than the header names"):
        list(iter_chunks(file, 10))
