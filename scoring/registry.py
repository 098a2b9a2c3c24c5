"""MLflow side of the model: the pyfunc wrapper, logging and loading by ``models:/NAME@alias``.

``import mlflow`` costs ~2 s, so it happens inside these functions, never at import time.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from scoring.model import RiskModel

ARTIFACT_KEY = "risk_model"
ARTIFACT_FILE = "risk_model.joblib"


def configure_mlflow(tracking_uri: str | None = None) -> Any:
    """Point MLflow at the configured store (local SQLite under models/ by default)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    from settings import get_settings

    settings = get_settings()
    uri = tracking_uri or settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def _pyfunc_class() -> type:
    import mlflow.pyfunc

    class RiskPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        """Declarations (plain-typed columns) → risk_score; the whole fitted RiskModel inside."""

        def load_context(self, context: Any) -> None:
            self.risk_model: RiskModel = joblib.load(context.artifacts[ARTIFACT_KEY])

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            from features.contracts import DECLARATION, normalize_table

            frame, report = normalize_table(model_input, DECLARATION, source="pyfunc input")
            if not report.ok:
                raise ValueError(report.summary())
            risk = self.risk_model.predict(frame)
            return pd.DataFrame({"declaration_id": frame["declaration_id"].astype(str).to_numpy(),
                                 "risk_score": risk})

    return RiskPyfunc


def plain_input_example(frame: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """A few rows with plain types (str, float), as MLflow's schema inference wants them."""
    ex = frame.head(n).copy()
    for c in ex.columns:
        if c.startswith("label_"):
            ex = ex.drop(columns=c)
        elif pd.api.types.is_datetime64_any_dtype(ex[c]):
            ex[c] = ex[c].dt.strftime("%Y-%m-%d").astype(object)
        elif pd.api.types.is_bool_dtype(ex[c]):
            ex[c] = ex[c].astype(float)
        elif pd.api.types.is_numeric_dtype(ex[c]):
            ex[c] = ex[c].astype("float64")
        else:
            ex[c] = ex[c].astype(object).where(ex[c].notna(), None)
    return ex


def log_risk_model(model: RiskModel, input_example: pd.DataFrame, name: str = "model") -> Any:
    """Log the RiskModel as one pyfunc model (features + LightGBM + calibration) in the active run."""
    import lightgbm
    import mlflow
    import numpy
    import sklearn
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_FILE
        joblib.dump(model, path)
        example = input_example
        sig_out = pd.DataFrame({"declaration_id": example["declaration_id"].astype(str),
                                "risk_score": model.predict(_example_frame(example))})
        signature = infer_signature(example, sig_out)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=_pyfunc_class()(),
            artifacts={ARTIFACT_KEY: str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"lightgbm=={lightgbm.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={numpy.__version__}",
                f"scikit-learn=={sklearn.__version__}",
                "riskprof",
            ],
        )


def _example_frame(example: pd.DataFrame) -> pd.DataFrame:
    from features.contracts import DECLARATION, normalize_table

    frame, _ = normalize_table(example, DECLARATION)
    return frame


class ModelLoadError(RuntimeError):
    """A registered version whose artifact does not load (corrupt or incompatible): never served or promoted."""


@dataclass
class LoadedModel:
    model: RiskModel
    name: str
    version: str
    alias: str | None
    uri: str
    run_id: str | None

    def describe(self) -> dict[str, Any]:
        meta = dict(self.model.metadata)
        return {"name": self.name, "version": self.version, "alias": self.alias, "uri": self.uri,
                "run_id": self.run_id, **meta}


def resolve_version(model_uri: str) -> tuple[str, str, str | None]:
    """``models:/NAME@alias`` or ``models:/NAME/3`` → (name, version, alias)."""
    mlflow = configure_mlflow()
    client = mlflow.MlflowClient()
    if not model_uri.startswith("models:/"):
        raise ValueError(f"model URI must look like models:/NAME@alias or models:/NAME/VERSION, got {model_uri!r}")
    rest = model_uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
        return name, str(mv.version), alias
    name, _, version = rest.partition("/")
    if not version:
        raise ValueError(f"model URI {model_uri!r} names no version or alias")
    mv = client.get_model_version(name, version)
    return name, str(mv.version), None


def load_risk_model(model_uri: str) -> LoadedModel:
    """Load a registered model, pinned to the version the alias points at *now*."""
    mlflow = configure_mlflow()
    name, version, alias = resolve_version(model_uri)
    pinned = f"models:/{name}/{version}"
    try:
        # suppress_warnings: skips a scan of installed packages against the logged requirements (0.4 s)
        pyfunc = mlflow.pyfunc.load_model(pinned, suppress_warnings=True)
        risk_model = pyfunc.unwrap_python_model().risk_model
    except Exception as exc:  # a truncated or foreign pickle raises anything (EOFError, ValueError, ...)
        raise ModelLoadError(f"{name}{'@' + alias if alias else ''} (version {version}) cannot be loaded: its "
                             f"artifact is corrupt or incompatible ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    mv = mlflow.MlflowClient().get_model_version(name, version)
    return LoadedModel(risk_model, name, version, alias, pinned, mv.run_id)
