"""riskprof against a real MLflow tracking server (``mlflow server``, started here), as a team shares one:
train registers through HTTP (artifacts proxied by the server), score and evaluate load the model back,
promote moves the alias; and a server that stops answering is one line within seconds, not minutes of
MLflow's retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from tests.conftest import settings_env
from tests.factories import make_declarations, make_outcomes

pytestmark = [pytest.mark.slow, pytest.mark.integration]

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"mlflow server did not answer: {(root / 'server.log').read_text()[-2000:]}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def via_server(mlflow_server: tuple[str, subprocess.Popen], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = mlflow_server[0]
    with settings_env(monkeypatch, unset=("RISKPROF_DATABASE_URL",), MLFLOW_TRACKING_URI=url,
                      RISKPROF_MODELS_DIR=str(tmp_path / "models"), RISKPROF_NUM_THREADS="1"):
        yield url


def test_train_score_promote_through_a_tracking_server(via_server: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    decl = make_declarations(rng, 3000)
    d, o = tmp_path / "declarations.parquet", tmp_path / "outcomes.parquet"
    decl.to_parquet(d, index=False)
    make_outcomes(rng, decl).to_parquet(o, index=False)

    r = runner.invoke(app, ["train", "--declarations", str(d), "--outcomes", str(o), "--name", "served-reg",
                            "--rounds", "20"])
    assert r.exit_code == 0, r.output
    assert "served-reg" in r.output

    from mlflow import MlflowClient

    client = MlflowClient(via_server, registry_uri=via_server)
    version = client.get_model_version_by_alias("served-reg", "challenger")
    assert version.version == "1"
    # the model file went to the server's artifact store, nowhere under the local models folder
    assert client.list_artifacts(version.run_id)
    assert not list((tmp_path / "models").rglob("*.pkl"))

    manifest = decl.tail(200).drop(columns=[c for c in ("hit",) if c in decl.columns])
    m = tmp_path / "manifest.parquet"
    manifest.to_parquet(m, index=False)
    out = tmp_path / "scores.parquet"
    r = runner.invoke(app, ["score", "--manifest", str(m), "--out", str(out), "--model", "models:/served-reg@challenger",
                            "--no-profiles"])
    assert r.exit_code == 0, r.output
    scores = pd.read_parquet(out)
    assert len(scores) == 200 and scores["risk_score"].between(0, 1).all()

    r = runner.invoke(app, ["promote", "--name", "served-reg", "--force"])
    assert r.exit_code == 0, r.output
    assert client.get_model_version_by_alias("served-reg", "champion").version == "1"


def test_a_server_that_stops_answering_is_one_line_within_seconds(via_server: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With the server reachable the check passes; on a port where it is not, the command stops at
    once with the variable named (MLflow's client retried for ~4 minutes)."""
    from scoring.registry import check_tracking_uri
    from settings import get_settings

    check_tracking_uri(via_server)  # a running server: nothing to say
    gone = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gone)
    get_settings.cache_clear()
    r = runner.invoke(app, ["promote", "--name", "served-reg"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert f"MLFLOW_TRACKING_URI='{gone}'" in r.output and "no MLflow server answers" in r.output
