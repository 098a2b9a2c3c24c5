"""Shared fixtures. The shared data folder is read from ../shared (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RISKPROF_SHARED", REPO.parent / "shared"))
KR_DIR = SHARED / "data" / "kr-customs-declarations"
KR_MAPPING = REPO / "examples" / "kr-customs" / "mapping.yaml"


@pytest.fixture(scope="session")
def kr_dir() -> Path:
    if not KR_DIR.exists():
        pytest.fail(f"shared Korean dataset not found at {KR_DIR} (set RISKPROF_SHARED)")
    return KR_DIR


# ---------------------------------------------------------------------------------------------
# A small synthetic data set and a real model trained on it, registered in a real MLflow store
# in a temporary folder. Session-scoped: trained once per test run (one LightGBM fit at a time).
# ---------------------------------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402

SMALL_DECLARATIONS = 30_000


@dataclass
class TrainedModel:
    tracking_uri: str
    models_dir: Path
    name: str
    version: str
    run_id: str
    data: dict[str, Path]
    result: object  # training.train.TrainResult

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@challenger"


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from synthetic import generate

    out = tmp_path_factory.mktemp("synthetic")
    return generate(out, seed=0, n_declarations=SMALL_DECLARATIONS)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory):
    """Point riskprof's settings and MLflow at a fresh SQLite store for the whole session."""
    from settings import get_settings

    models_dir = tmp_path_factory.mktemp("models")
    uri = f"sqlite:///{models_dir / 'mlflow.db'}"
    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "RISKPROF_MODELS_DIR")}
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["RISKPROF_MODELS_DIR"] = str(models_dir)
    get_settings.cache_clear()
    yield uri, models_dir
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained_model(synthetic_data: dict[str, Path], mlflow_store) -> TrainedModel:
    from training.data import load_training_set
    from training.train import train_and_log

    uri, models_dir = mlflow_store
    ts = load_training_set([synthetic_data["declarations"]], seizures=synthetic_data["seizures"],
                           outcomes=synthetic_data["outcomes"])
    result = train_and_log(ts, "riskprof-test", seed=0, num_threads=2, num_boost_round=150)
    assert result.version is not None and result.run_id is not None
    return TrainedModel(uri, models_dir, "riskprof-test", result.version, result.run_id, synthetic_data, result)
