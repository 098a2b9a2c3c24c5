"""The registry look-up without MLflow (local SQLite store) gives what ``MlflowClient`` gives.

A batch run or the CLI resolves ``models:/NAME@alias`` and loads the pickled model straight from the
store's tables and artifact folder; anything it cannot answer with certainty goes through MLflow.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scoring import registry

ROOT = Path(__file__).resolve().parents[1]


def _client(trained_model):
    return registry.configure_mlflow(trained_model.tracking_uri).MlflowClient()


def test_fast_lookup_equals_mlflow_for_alias_and_version(trained_model) -> None:
    client = _client(trained_model)
    for uri in (trained_model.uri, f"models:/{trained_model.name}/{trained_model.version}"):
        fast = registry._sqlite_version(uri)
        assert fast is not None, uri
        name, mv, alias = registry._model_version(client, uri)
        assert (fast.name, fast.version, fast.alias, fast.run_id) == (name, str(mv.version), alias, mv.run_id)
        # the artifact it reads is the one MLflow's download URI points at
        assert registry._local_joblib(fast.storage_location) == registry._local_artifact(client, name, str(mv.version))
        assert registry._local_joblib(fast.storage_location).is_file()


def test_fast_lookup_follows_alias_moves_and_defers_unknown_names(trained_model) -> None:
    client = _client(trained_model)
    name, version = trained_model.name, trained_model.version
    client.set_registered_model_alias(name, "fast-probe", version)
    try:
        found = registry._sqlite_version(f"models:/{name}@fast-probe")
        assert found is not None and found.version == version
        assert registry.resolve_version(f"models:/{name}@fast-probe") == (name, version, "fast-probe")
    finally:
        client.delete_registered_model_alias(name, "fast-probe")
    # gone: the fast path does not answer, and MLflow's own error is what the caller sees
    assert registry._sqlite_version(f"models:/{name}@fast-probe") is None
    with pytest.raises(Exception, match="fast-probe"):
        registry.resolve_version(f"models:/{name}@fast-probe")
    assert registry._sqlite_version("models:/no-such-model@champion") is None
    assert registry._sqlite_version(f"models:/{name}/999") is None
    assert registry._sqlite_version(f"models:/{name}/not-a-number") is None
    assert registry._sqlite_version("runs:/abc/model") is None


def test_pinned_mlflow_creates_stores_at_the_known_schema_revision(trained_model) -> None:
    """Upgrading MLflow fails here first: check the look-up's queries against the new schema, then
    update ``SQLITE_SCHEMA_REVISION``."""
    db = trained_model.tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (registry.SQLITE_SCHEMA_REVISION,)]


def test_another_schema_revision_goes_through_mlflow(trained_model, tmp_path, monkeypatch) -> None:
    from settings import get_settings

    db = tmp_path / "mlflow.db"
    db.write_bytes(Path(trained_model.tracking_uri.removeprefix("sqlite:///")).read_bytes())
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    get_settings.cache_clear()
    try:
        assert registry._sqlite_version(trained_model.uri) is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert registry._sqlite_version(trained_model.uri) is not None


def test_a_deleted_version_is_not_found_as_mlflow_says(trained_model, tmp_path, monkeypatch) -> None:
    """MLflow keeps a deleted version's row (stage ``Deleted_Internal``): the fast look-up read it, and
    ``riskprof score --model models:/NAME/1`` scored with a version the registry says does not exist."""
    from settings import get_settings

    db = tmp_path / "mlflow.db"
    with sqlite3.connect(trained_model.tracking_uri.removeprefix("sqlite:///")) as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # with what is still in the write-ahead log
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)  # set by MLflow's set_registry_uri
    get_settings.cache_clear()
    pinned = f"models:/{trained_model.name}/{trained_model.version}"
    try:
        assert registry._sqlite_version(pinned) is not None
        registry.configure_mlflow().MlflowClient().delete_model_version(trained_model.name, trained_model.version)
        with sqlite3.connect(db) as con:  # the row is still there, marked
            assert con.execute("SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                               (trained_model.name, int(trained_model.version))).fetchone() == ("Deleted_Internal",)
        assert registry._sqlite_version(pinned) is None
        with pytest.raises(Exception, match="not found"):
            registry.load_risk_model(pinned)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        registry.configure_mlflow(trained_model.tracking_uri)
    assert registry._sqlite_version(pinned) is not None


def test_loading_a_model_from_the_local_store_does_not_import_mlflow(trained_model) -> None:
    code = (
        "import json, sys\n"
        "from scoring.registry import load_risk_model\n"
        f"m = load_risk_model({trained_model.uri!r})\n"
        "print(json.dumps({'mlflow': 'mlflow' in sys.modules, 'version': m.version, 'run_id': m.run_id,\n"
        "                  'uri': m.uri, 'trees': m.model.booster.num_trees()}))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_model.tracking_uri,
           "RISKPROF_MODELS_DIR": str(trained_model.models_dir), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"mlflow": False, "version": trained_model.version, "run_id": trained_model.run_id,
                   "uri": f"models:/{trained_model.name}/{trained_model.version}",
                   "trees": trained_model.result.model.booster.num_trees()}


def test_versions_logged_with_the_older_joblib_artifact_still_load_and_score_alike(trained_model) -> None:
    """New versions carry a plain pickle (``risk_model.pkl``, read by the C unpickler); a version logged
    before that carries ``risk_model.joblib``: both loaders (the fast local one and MLflow's pyfunc) read
    it, and it scores exactly as the model it holds."""
    import tempfile

    import joblib
    import mlflow
    import numpy as np
    import pandas as pd

    client = _client(trained_model)
    new = registry.load_risk_model(trained_model.uri)
    assert registry._local_joblib(registry._sqlite_version(trained_model.uri).storage_location).name == \
        registry.ARTIFACT_FILE == "risk_model.pkl"
    mlflow.set_experiment("riskprof")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / registry.LEGACY_ARTIFACT_FILE
        joblib.dump(new.model, path)
        with mlflow.start_run(run_name="legacy-artifact"):
            info = mlflow.pyfunc.log_model(name="model", python_model=registry._pyfunc_class()(),
                                           artifacts={registry.ARTIFACT_KEY: str(path)}, pip_requirements=["riskprof"])
    legacy = "riskprof-legacy-artifact"  # a model of its own: the session's model keeps its versions
    version = str(mlflow.register_model(info.model_uri, legacy).version)
    client.set_registered_model_alias(legacy, "legacy-probe", version)
    try:
        uri = f"models:/{legacy}@legacy-probe"
        old = registry.load_risk_model(uri)
        assert old.version == version
        assert registry._local_joblib(registry._sqlite_version(uri).storage_location).suffix == ".joblib"
        frame = pd.read_parquet(trained_model.data["declarations"]).head(300)
        assert np.array_equal(old.model.predict(frame), new.model.predict(frame))
        via_pyfunc = mlflow.pyfunc.load_model(f"models:/{legacy}/{version}").unwrap_python_model()
        assert np.array_equal(via_pyfunc.risk_model.predict(frame), new.model.predict(frame))
    finally:
        client.delete_registered_model_alias(legacy, "legacy-probe")
