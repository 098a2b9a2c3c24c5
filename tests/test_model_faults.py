"""A corrupt model artifact is never loaded or promoted.

A real MLflow store in a temporary folder holds the suite's tiny model twice: version 1 intact, version 2
whose pickled ``risk_model.joblib`` is cut in half on disk (a disk or copy fault after registration).
``POST /v1/model/reload`` refuses version 2 and keeps serving version 1; ``riskprof promote`` refuses the
corrupt challenger with a message naming it, even with ``--force``, and moves no alias.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.integration]
NAME = "faulty"


@dataclass
class Registry:
    folder: Path
    client: Any

    def alias(self, alias: str) -> str:
        return str(self.client.get_model_version_by_alias(NAME, alias).version)


def _register(mlflow: Any, model: Any, example: pd.DataFrame, folder: Path, experiment: str) -> tuple[str, Path]:
    """Log ``model`` in its own experiment (own artifact folder) and register it; (version, artifact file)."""
    from scoring.registry import ARTIFACT_FILE, log_risk_model

    artifacts = folder / experiment
    mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        log_risk_model(model, example)
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", NAME).version
    [artifact] = artifacts.rglob(ARTIFACT_FILE)
    return str(version), artifact


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a truncated pickle: what a full disk or a cut copy leaves


@pytest.fixture
def registry(tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """v1 = champion (intact); v2 = challenger, its pickled model truncated on disk."""
    from scoring.registry import configure_mlflow
    from settings import get_settings

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RISKPROF_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("RISKPROF_MODEL_NAME", NAME)
    get_settings.cache_clear()
    mlflow = configure_mlflow(uri)
    example = pd.DataFrame(tiny_model.traffic[:3])
    v1, _ = _register(mlflow, tiny_model.model, example, tmp_path, "intact")
    v2, artifact = _register(mlflow, tiny_model.model, example, tmp_path, "corrupt")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(NAME, "champion", v1)
    client.set_registered_model_alias(NAME, "challenger", v2)
    _corrupt(artifact)
    yield Registry(tmp_path, client)
    get_settings.cache_clear()


def test_reload_refuses_a_corrupt_version_and_keeps_serving_the_running_one(
        registry: Registry, tiny_model: Any, tmp_path: Path) -> None:
    from tests.conftest import running_api

    with running_api(tmp_path / "api", tiny_model.model, registry=None, model_name=NAME) as api:
        assert api.get("/v1/model").json()["version"] == "1"
        registry.client.set_registered_model_alias(NAME, "champion", registry.alias("challenger"))
        answer = api.client.post("/v1/model/reload", headers=api.h("admin"))
        assert answer.status_code == 409, answer.text
        detail = str(answer.json())
        assert "version 2 failed to load" in detail
        assert "Traceback" not in answer.text
        assert api.get("/v1/model").json()["version"] == "1"  # the running model stays
        scored = api.post("/v1/score", json=tiny_model.traffic[:2])
        assert scored.status_code == 200 and scored.json()["count"] == 2


def test_the_service_never_starts_serving_a_corrupt_champion(registry: Registry, tiny_model: Any,
                                                             tmp_path: Path) -> None:
    from tests.conftest import running_api

    registry.client.set_registered_model_alias(NAME, "champion", registry.alias("challenger"))
    with running_api(tmp_path / "api", tiny_model.model, registry=None, model_name=NAME) as api:
        ready = api.client.get("/ready")
        assert ready.status_code == 503
        assert api.post("/v1/score", json=tiny_model.traffic[:1]).status_code == 503


@pytest.mark.parametrize("force", [False, True])
def test_promote_refuses_a_corrupt_challenger(registry: Registry, force: bool) -> None:
    result = CliRunner().invoke(app, ["promote", "--name", NAME, *(["--force"] if force else [])])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"a traceback instead of a message: {result.exception!r}"
    text = " ".join(result.output.split())
    assert "challenger" in text and "version 2" in text and "cannot be loaded" in text, text
    assert registry.alias("champion") == "1" and registry.alias("challenger") == "2"


@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_score_with_a_model_that_cannot_be_loaded_exits_2_with_a_message(registry: Registry, tiny_model: Any,
                                                                          fault: str) -> None:
    """``riskprof score`` with a champion whose artifact is truncated or gone ended in a traceback
    (scoring.registry.ModelLoadError, exit 1); the docs promise exit 2 and one ``error:`` line."""
    import shutil

    if fault == "missing":  # the champion's artifacts moved away (mv models/artifacts /elsewhere)
        shutil.move(registry.folder / "intact", registry.folder / "moved-away")
        model, version = f"models:/{NAME}@champion", "1"
    else:
        model, version = f"models:/{NAME}@challenger", "2"
    manifest = registry.folder / "manifest.parquet"
    pd.DataFrame(tiny_model.traffic[:20]).to_parquet(manifest, index=False)
    out = registry.folder / "scores.parquet"
    result = CliRunner().invoke(app, ["score", "--manifest", str(manifest), "--out", str(out), "--model", model,
                                      "--no-profiles"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, (text, result.exception)
    assert f"error: cannot load model {model}: {NAME}@{model.split('@')[1]} (version {version}) cannot be loaded" in text
    # which it is: files gone were said to be "corrupt or incompatible"
    assert ("its artifact is missing" if fault == "missing" else "its artifact is corrupt or incompatible") in text
    assert "Traceback" not in text and not out.exists()
