"""MLflow side of the model: the pyfunc wrapper, logging and loading by ``models:/NAME@alias``.

``import mlflow`` costs ~2 s, so it happens inside these functions, never at import time.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from scoring.model import RiskModel

ARTIFACT_KEY = "risk_model"
ARTIFACT_FILE = "risk_model.pkl"
#: the artifact of versions logged before 2026-12-02 (joblib's format), still read
LEGACY_ARTIFACT_FILE = "risk_model.joblib"


def write_artifact(model: RiskModel, path: str | Path) -> None:
    """The model as a plain pickle (highest protocol: NumPy arrays as out-of-band-sized buffers)."""
    with Path(path).open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)


def read_artifact(path: str | Path) -> Any:
    """A model artifact: a plain pickle, read by the C unpickler (0.02 s for the default model, where
    joblib's Python unpickler took 0.21 s of every ``riskprof score`` and API start), or a version's
    older ``.joblib`` file."""
    path = Path(path)
    if path.suffix == ".joblib":
        return joblib.load(path)
    with path.open("rb") as f:
        return pickle.load(f)


#: the tracking stores MLflow opens (a URI of another scheme failed deep inside MLflow with KeyError)
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_tracking_uri(uri: str) -> None:
    """Raise :class:`settings.BadSetting` for a tracking URI MLflow cannot open: an unknown scheme, or a
    SQLite path that is a folder or a file that is not a SQLite database."""
    from settings import BadSetting

    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme and len(scheme) > 1 and scheme not in TRACKING_SCHEMES:  # one letter: a Windows drive
        raise BadSetting(f"MLFLOW_TRACKING_URI={uri!r}: MLflow has no tracking store for '{scheme}:' "
                         f"(use {', '.join(s + ':' for s in TRACKING_SCHEMES[:4])} …)")
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if path.is_dir():
            raise BadSetting(f"MLFLOW_TRACKING_URI={uri!r}: {path} is a folder, not a SQLite file")
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    raise BadSetting(f"MLFLOW_TRACKING_URI={uri!r}: {path} is not a SQLite database")
    if scheme in ("http", "https"):
        check_server_reachable(uri)


#: seconds a tracking server gets to accept a connection before a command gives up on it
CONNECT_TIMEOUT = 5.0


def check_server_reachable(uri: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`settings.BadSetting` when nothing accepts a connection at an ``http(s)://`` tracking
    URI's host and port. MLflow's own client retries an unreachable server for minutes before it
    fails; this answers in at most ``timeout`` seconds. Only the connection is tried (no TLS, no HTTP),
    so certificates and paths stay MLflow's business; behind a proxy the check is left to MLflow."""
    from settings import BadSetting, redacted_url

    shown = redacted_url(uri, "the configured tracking URI")

    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname
    if not host:
        raise BadSetting(f"MLFLOW_TRACKING_URI={shown!r}: no host in the URL")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise BadSetting(f"MLFLOW_TRACKING_URI={shown!r}: {exc}") from None
    if parts.scheme.lower() in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (
            exc.strerror or str(exc) or type(exc).__name__)
        raise BadSetting(f"MLFLOW_TRACKING_URI={shown!r}: no MLflow server answers at {host}:{port} "
                         f"({reason}); start it, or point MLFLOW_TRACKING_URI at a running one") from None


def configure_mlflow(tracking_uri: str | None = None) -> Any:
    """Point MLflow at the configured store (local SQLite under models/ by default)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    from settings import get_settings

    settings = get_settings()
    uri = tracking_uri or settings.tracking_uri
    check_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def _pyfunc_class() -> type:
    import mlflow.pyfunc

    class RiskPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        """Declarations (the contract's columns, dates as datetimes or ISO strings) → risk_score; the whole
        fitted RiskModel inside."""

        def load_context(self, context: Any) -> None:
            self.risk_model: RiskModel = read_artifact(context.artifacts[ARTIFACT_KEY])

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            from features.contracts import DECLARATION, normalize_table

            frame, report = normalize_table(model_input, DECLARATION, source="pyfunc input")
            if not report.ok:
                raise ValueError(report.summary())
            risk = self.risk_model.predict(frame)
            return pd.DataFrame({"declaration_id": frame["declaration_id"].astype(str).to_numpy(),
                                 "risk_score": risk})

    return RiskPyfunc


# contract kind → MLflow column type: dates are datetimes (a pandas frame read from Parquet carries
# datetime64), numbers doubles, everything else (ids, codes, countries, categories) strings
_MLFLOW_TYPES = {"date": "datetime", "int": "double", "float": "double", "bool": "boolean"}


def model_signature(model: RiskModel) -> Any:
    """The pyfunc's signature, from the declaration contract: each field with its type and whether the
    contract requires it, plus the extra columns the model's mapping kept as features (optional), so
    MLflow passes them through to ``predict``; out come ``declaration_id`` and ``risk_score``."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from features.contracts import DECLARATION

    inputs: list[ColSpec | TensorSpec] = [ColSpec(_MLFLOW_TYPES.get(f.kind, "string"), f.name, required=f.required)
              for f in DECLARATION.fields]
    known = set(DECLARATION.columns)
    inputs += [ColSpec("double", c, required=False) for c in model.pipeline.extra_numeric if c not in known]
    inputs += [ColSpec("string", c, required=False) for c in model.pipeline.extra_categorical if c not in known]
    outputs = Schema([ColSpec("string", "declaration_id"), ColSpec("double", "risk_score")])
    return ModelSignature(inputs=Schema(inputs), outputs=outputs)


def plain_input_example(frame: pd.DataFrame, n: int = 3, numeric: Collection[str] = ()) -> pd.DataFrame:
    """A few rows in the signature's types: dates as datetimes, numbers as floats, text as str (None
    where missing); label columns dropped. ``numeric``: extra columns the model reads as numbers (the
    signature's doubles), whatever their type in ``frame`` (a CSV's mapped column may be text).
    ``log_risk_model`` keeps the signature's columns."""
    from features.contracts import DECLARATION

    ex = frame.head(n).copy()
    for c in ex.columns:
        kind = DECLARATION.spec(c).kind if c in DECLARATION.columns else ("float" if c in numeric else None)
        if c.startswith("label_"):
            ex = ex.drop(columns=c)
        elif kind == "date" or pd.api.types.is_datetime64_any_dtype(ex[c]):
            ex[c] = pd.to_datetime(ex[c], errors="coerce").astype("datetime64[ns]")
        elif pd.api.types.is_bool_dtype(ex[c]):
            ex[c] = ex[c].astype(float)
        elif kind in ("int", "float") or (kind is None and pd.api.types.is_numeric_dtype(ex[c])):
            ex[c] = pd.to_numeric(ex[c], errors="coerce").astype("float64")
        else:
            ex[c] = ex[c].astype(object).where(ex[c].notna(), None)
            ex[c] = ex[c].map(lambda v: v if v is None else str(v)).astype(object)
    return ex


def log_risk_model(model: RiskModel, input_example: pd.DataFrame, name: str = "model") -> Any:
    """Log the RiskModel as one pyfunc model (features + LightGBM + calibration) in the active run."""
    import lightgbm
    import mlflow
    import numpy
    import sklearn

    signature = model_signature(model)
    # in the signature's types whatever the caller passed (records with ISO dates, a validated frame)
    example = plain_input_example(input_example, n=len(input_example), numeric=model.pipeline.extra_numeric)
    example = example[[c for c in signature.inputs.input_names() if c in example.columns]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_FILE
        model.prepare_reasons()  # the family TreeSHAP tables travel in the artifact (built once, here)
        write_artifact(model, path)
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


def _parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@alias`` → (name, alias, None); ``models:/NAME/3`` → (name, None, "3")."""
    if not model_uri.startswith("models:/"):
        raise ValueError(f"model URI must look like models:/NAME@alias or models:/NAME/VERSION, got {model_uri!r}")
    rest = model_uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, alias, None
    name, _, version = rest.partition("/")
    if not version:
        raise ValueError(f"model URI {model_uri!r} names no version or alias")
    return name, None, version


def _model_version(client: Any, model_uri: str) -> tuple[str, Any, str | None]:
    """``models:/NAME@alias`` or ``models:/NAME/3`` → (name, the registry's ModelVersion, alias)."""
    name, alias, version = _parse_model_uri(model_uri)
    if alias is not None:
        return name, client.get_model_version_by_alias(name, alias), alias
    return name, client.get_model_version(name, version), None


def require_tracking_store() -> None:
    """Raise :class:`settings.BadSetting` when the configured tracking store is a SQLite file that does not
    exist: a model read from it cannot be there (MLflow would create an empty store at the mistyped path,
    then say the model is not found)."""
    from settings import BadSetting, get_settings

    uri = get_settings().tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise BadSetting(f"MLFLOW_TRACKING_URI={uri!r}: {path} does not exist, so no model is registered "
                             "there: fix the path, or train one first (riskprof train, or make demo)")


def resolve_version(model_uri: str) -> tuple[str, str, str | None]:
    """``models:/NAME@alias`` or ``models:/NAME/3`` → (name, version, alias)."""
    require_tracking_store()
    fast = _sqlite_version(model_uri)
    if fast is not None:
        return fast.name, fast.version, fast.alias
    name, mv, alias = _model_version(configure_mlflow().MlflowClient(), model_uri)
    return name, str(mv.version), alias


# The MLflow store schema (alembic revision) the read-only look-up below was written against: the
# revision of ``mlflow==3.17.2``. A store at any other revision goes through MLflow itself.
# tests/test_registry_fast.py fails when the pinned MLflow creates stores at another revision.
SQLITE_SCHEMA_REVISION = "dc11669786a5"


@dataclass(frozen=True)
class _VersionRow:
    name: str
    version: str
    alias: str | None
    run_id: str | None
    storage_location: str | None


def _sqlite_version(model_uri: str) -> _VersionRow | None:
    """The registry row of ``models:/NAME@alias`` / ``models:/NAME/3`` read straight from a local SQLite
    store (read-only, stdlib ``sqlite3``), or None whenever MLflow itself must answer: another kind of
    store, a schema revision other than :data:`SQLITE_SCHEMA_REVISION`, a workspace other than the
    default, a name, alias or version not found (MLflow then raises its own error), a version not READY or
    deleted (MLflow keeps a deleted version's row, marked ``Deleted_Internal``).

    ``import mlflow`` and its SQLAlchemy store cost ~1.6 s of a batch run's start-up (a quarter of
    scoring 1 M rows with the product's model); this look-up costs about a millisecond and gives
    the same answer (tested against ``MlflowClient``)."""
    import sqlite3
    from urllib.parse import quote

    from settings import get_settings

    if os.environ.get("MLFLOW_WORKSPACE"):
        return None
    try:
        name, alias, version = _parse_model_uri(model_uri)
    except ValueError:  # MLflow's path raises it, with the same message
        return None
    if version is not None and not version.isdigit():
        return None
    uri = get_settings().tracking_uri  # also the registry's (configure_mlflow), unless set apart
    if not uri.startswith("sqlite:///") or os.environ.get("MLFLOW_REGISTRY_URI", uri) != uri:
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{quote(str(db.resolve()))}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        rev = con.execute("SELECT version_num FROM alembic_version").fetchall()
        if rev != [(SQLITE_SCHEMA_REVISION,)]:
            return None
        if alias is not None:
            row = con.execute("SELECT version FROM registered_model_aliases WHERE workspace = 'default' "
                              "AND name = ? AND alias = ?", (name, alias)).fetchone()
            if row is None:
                return None
            version = str(row[0])
        found = con.execute("SELECT run_id, storage_location, status, current_stage FROM model_versions WHERE "
                            "workspace = 'default' AND name = ? AND version = ?",
                            (name, int(str(version)))).fetchone()
    except sqlite3.Error:  # a locked, foreign or half-migrated file: MLflow decides
        return None
    finally:
        con.close()
    if found is None or found[2] != "READY" or found[3] == "Deleted_Internal":  # deleted: MLflow says not found
        return None
    return _VersionRow(name, str(version), alias, found[0], found[1])


def _local_joblib(storage_location: str | None) -> Path | None:
    """The model artifact (``risk_model.pkl``, or an older version's ``risk_model.joblib``) under a version's
    artifact folder when that folder is on a local disk."""
    from urllib.parse import unquote, urlparse

    import yaml

    if not storage_location:
        return None
    parsed = urlparse(storage_location)
    if parsed.scheme not in ("", "file") or (parsed.scheme == "file" and parsed.netloc not in ("", "localhost")):
        return None
    root = Path(unquote(parsed.path) if parsed.scheme == "file" else storage_location)
    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        return None
    doc = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    artifact = ((doc.get("flavors") or {}).get("python_function") or {}).get("artifacts", {}).get(ARTIFACT_KEY, {})
    rel = artifact.get("path") if isinstance(artifact, dict) else None
    return root / rel if rel else None


def _local_artifact(client: Any, name: str, version: str) -> Path | None:
    """The model artifact of a version whose artifacts are on a local disk (the default store),
    as the pyfunc's ``MLmodel`` names it; None for a remote store (then the pyfunc loader downloads)."""
    return _local_joblib(client.get_model_version_download_uri(name, version))


def load_risk_model(model_uri: str) -> LoadedModel:
    """Load a registered model, pinned to the version the alias points at *now*.

    On a local SQLite store with local artifacts (the default) the alias is read from the store's
    tables and the pickled :class:`RiskModel` straight from the version's artifacts (what the pyfunc's
    ``load_context`` reads): no ``import mlflow``. Otherwise one registry client resolves the alias
    and gives the run, and a remote artifact goes through the pyfunc loader."""
    require_tracking_store()
    fast = _sqlite_version(model_uri)
    local = _local_joblib(fast.storage_location) if fast is not None else None
    if fast is not None and local is not None:  # a local store: no MLflow at all (~1.6 s less start-up)
        name, version, alias, run_id = fast.name, fast.version, fast.alias, fast.run_id
    else:
        mlflow = configure_mlflow()
        client = mlflow.MlflowClient()
        name, mv, alias = _model_version(client, model_uri)
        version, run_id = str(mv.version), mv.run_id
    pinned = f"models:/{name}/{version}"
    try:
        if local is None:
            local = _local_artifact(client, name, version)
        if local is not None:
            risk_model = read_artifact(local)
        else:
            # suppress_warnings: skips a scan of installed packages against the logged requirements (0.4 s)
            risk_model = mlflow.pyfunc.load_model(pinned, suppress_warnings=True).unwrap_python_model().risk_model
        if not isinstance(risk_model, RiskModel):
            raise TypeError(f"the artifact holds a {type(risk_model).__name__}, not a RiskModel")
    except Exception as exc:  # a truncated or foreign pickle raises anything (EOFError, ValueError, ...)
        first = str(exc).splitlines()[0] if str(exc) else ""
        # files gone (an artifact folder moved or deleted) are not a damaged file: say which it is
        missing = isinstance(exc, FileNotFoundError) or "No such artifact" in first or "No such file" in first
        what = "its artifact is missing" if missing else "its artifact is corrupt or incompatible"
        raise ModelLoadError(f"{name}{'@' + alias if alias else ''} (version {version}) cannot be loaded: {what} "
                             f"({type(exc).__name__}: {first})") from exc
    return LoadedModel(risk_model, name, version, alias, pinned, run_id)
