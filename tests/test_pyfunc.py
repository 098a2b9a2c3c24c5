"""The registered model as any MLflow user meets it: ``mlflow.pyfunc.load_model``, ``mlflow models serve``
and ``mlflow.pyfunc.spark_udf``, each fed the project's own declarations and giving RiskModel's scores."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.api_process import free_port
from tests.conftest import TinyModel, TrainedModel

# optional in the declaration contract: a client may leave them out
OPTIONAL_DROPPED = ["direction", "office_id", "conveyance", "goods_description", "quantity", "currency"]


def _plain_mlflow(trained_model: TrainedModel) -> Any:
    """MLflow as a user outside riskprof sets it up: only the tracking URI."""
    import mlflow

    mlflow.set_tracking_uri(trained_model.tracking_uri)
    mlflow.set_registry_uri(trained_model.tracking_uri)
    return mlflow


def _declarations(trained_model: TrainedModel) -> pd.DataFrame:
    return pd.read_parquet(trained_model.data["declarations"])


def _risk_model(trained_model: TrainedModel) -> Any:
    return trained_model.result.model  # type: ignore[attr-defined]


def test_signature_follows_the_declaration_contract(tiny_model: TinyModel):
    from features.contracts import DECLARATION
    from scoring.registry import model_signature

    model = copy.deepcopy(tiny_model.model)
    model.pipeline.extra_numeric = ("tax_rate",)
    model.pipeline.extra_categorical = ("seller_id",)
    sig = model_signature(model)
    cols = {c.name: c for c in sig.inputs.inputs}
    assert list(cols) == [*DECLARATION.columns, "tax_rate", "seller_id"]
    assert {n for n, c in cols.items() if c.required} == {"declaration_id", "declaration_date", "hs_code"}
    assert {n for n, c in cols.items() if c.required} == {f.name for f in DECLARATION.fields if f.required}
    assert cols["declaration_date"].type.name == "datetime"
    assert {n for n, c in cols.items() if c.type.name == "double"} == {
        "quantity", "gross_weight_kg", "customs_value", "tax_rate"}
    assert cols["seller_id"].type.name == "string" and not cols["seller_id"].required
    assert sig.outputs.input_names() == ["declaration_id", "risk_score"]


def test_load_model_scores_the_declarations_parquet_as_risk_model(trained_model: TrainedModel):
    mlflow = _plain_mlflow(trained_model)
    pyfunc = mlflow.pyfunc.load_model(trained_model.uri)
    decl = _declarations(trained_model)
    assert pd.api.types.is_datetime64_any_dtype(decl["declaration_date"])  # as pandas reads the file
    expected = _risk_model(trained_model).predict(decl)
    out = pyfunc.predict(decl)
    assert list(out.columns) == ["declaration_id", "risk_score"]
    assert out["declaration_id"].tolist() == decl["declaration_id"].tolist()
    np.testing.assert_array_equal(out["risk_score"].to_numpy(), expected)
    # the optional columns may be absent; dates may be Python dates (ISO strings go through JSON, as in
    # the serving test: in a frame, MLflow 3.17 refuses pandas 3's "str" dtype for a datetime column)
    part = decl.head(2_000).drop(columns=OPTIONAL_DROPPED)
    as_dates = part.assign(declaration_date=part["declaration_date"].dt.date)
    np.testing.assert_array_equal(pyfunc.predict(as_dates)["risk_score"].to_numpy(),
                                  _risk_model(trained_model).predict(part))


def test_load_model_names_a_missing_required_column(trained_model: TrainedModel):
    from mlflow.exceptions import MlflowException

    pyfunc = _plain_mlflow(trained_model).pyfunc.load_model(trained_model.uri)
    with pytest.raises(MlflowException, match="hs_code"):
        pyfunc.predict(_declarations(trained_model).head(5).drop(columns=["hs_code"]))


def _wait_for_ping(proc: subprocess.Popen, port: int, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow models serve exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise AssertionError(f"mlflow models serve did not answer /ping within {timeout:.0f} s")


def test_mlflow_models_serve_scores_one_request(trained_model: TrainedModel, tmp_path: Path):
    rows = _declarations(trained_model).head(200).drop(columns=["conveyance", "currency"])
    body = {"dataframe_split": json.loads(
        rows.assign(declaration_date=rows["declaration_date"].dt.strftime("%Y-%m-%d")).to_json(
            orient="split", index=False))}
    assert body["dataframe_split"]["data"][0][1] == rows["declaration_date"].iloc[0].strftime("%Y-%m-%d")
    port = free_port()
    bindir = str(Path(sys.executable).parent)  # the server runs uvicorn from the venv, as an activated venv would
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_model.tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(bindir) / "mlflow"), "models", "serve", "-m", trained_model.uri,
                                 "--env-manager", "local", "-p", str(port), "--host", "127.0.0.1"],
                                env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_ping(proc, port, log)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            got = pd.DataFrame(json.loads(r.read())["predictions"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # uvicorn runs in a child of the mlflow CLI: end the whole group
        proc.wait(timeout=30)
    assert got["declaration_id"].tolist() == rows["declaration_id"].tolist()
    np.testing.assert_array_equal(got["risk_score"].to_numpy(), _risk_model(trained_model).predict(rows))


# PySpark 4.3 warns that it does not fully support pandas 3: the scores below are compared exactly
@pytest.mark.filterwarnings("ignore:.*PySpark does not yet fully support pandas:FutureWarning")
def test_spark_udf_scores_as_risk_model(trained_model: TrainedModel):
    from pyspark.sql import SparkSession

    from batch._spark import spark_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    mlflow = _plain_mlflow(trained_model)
    rows = _declarations(trained_model).sample(300, random_state=0).reset_index(drop=True)
    started_here = SparkSession.getActiveSession() is None
    spark = spark_session("local[2]")
    try:
        udf = mlflow.pyfunc.spark_udf(spark, trained_model.uri, result_type="double", env_manager="local")
        sdf = spark.createDataFrame(rows)
        # a signature with optional columns needs the columns named (MLflow cannot tell which are given)
        out = sdf.select("declaration_id", udf(*sdf.columns).alias("risk")).toPandas()
    finally:
        if started_here:
            spark.stop()
    assert out["declaration_id"].tolist() == rows["declaration_id"].tolist()
    np.testing.assert_array_equal(out["risk"].to_numpy(), _risk_model(trained_model).predict(rows))
