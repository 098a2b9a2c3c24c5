"""Shared fixtures. The shared data folder is read from ../shared (never copied into the repo)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# property tests draw the same examples on every run (deterministic seeds everywhere: a commit's CI
# result does not depend on the draw); HYPOTHESIS_PROFILE=explore draws new ones, to hunt for cases
hypothesis_settings.register_profile("riskprof", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "riskprof"))

pytest_plugins = ["tests.pg"]  # a throwaway PostgreSQL cluster: fixtures pg, pg_url

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
    result: object  # training.TrainResult

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
    from training import train_and_log
    from training.data import load_training_set

    uri, models_dir = mlflow_store
    ts = load_training_set([synthetic_data["declarations"]], seizures=synthetic_data["seizures"],
                           outcomes=synthetic_data["outcomes"])
    result = train_and_log(ts, "riskprof-test", seed=0, num_threads=2, num_boost_round=150)
    assert result.version is not None and result.run_id is not None
    return TrainedModel(uri, models_dir, "riskprof-test", result.version, result.run_id, synthetic_data, result)


# ---------------------------------------------------------------------------------------------
# The fast tier: a tiny *real* model (the real FeaturePipeline + a few-tree LightGBM, one thread)
# fitted in-process on a small seeded history, served through the app's loader/resolver seams
# from an in-memory registry instead of MLflow. Tests that need a model trained and registered in
# MLflow (or that start servers) are marked slow/integration by the hook below.
# ---------------------------------------------------------------------------------------------

from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from typing import Any  # noqa: E402

# fixtures that train and register a model, start a database server or read the large shared data set
SLOW_FIXTURES = frozenset({"trained_model", "synthetic_data", "mlflow_store", "champion", "pg", "pg_url",
                           "kr_dir"})  # kr_dir: the shared Korean files (external data, seconds to read)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that (even indirectly) trains a model, uses an MLflow store, starts PostgreSQL or reads the
    shared Korean data is slow and integration, so ``-m "not slow and not integration"`` never runs it."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.integration)


@dataclass
class TinyModel:
    model: Any  # scoring.RiskModel
    traffic: list[dict[str, Any]]  # JSON records of the "recent traffic" behind model.reference_scores


def _json_records(frame: Any) -> list[dict[str, Any]]:
    """Rows as a client sends them: ISO dates, missing values absent."""
    import pandas as pd

    out = []
    for row in frame.to_dict(orient="records"):
        item: dict[str, Any] = {}
        for k, v in row.items():
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
                continue
            item[k] = v.strftime("%Y-%m-%d") if isinstance(v, pd.Timestamp) else (v.item() if hasattr(v, "item") else v)
        out.append(item)
    return out


def build_tiny_model(seed: int = 0, n_history: int = 2_000, n_traffic: int = 1_000) -> TinyModel:
    """Fit the real feature pipeline and a 30-tree LightGBM on a seeded history (about a second)."""
    import lightgbm as lgb
    import numpy as np

    from features.history import History
    from features.pipeline import FeaturePipeline
    from scoring import Calibrator, RiskModel
    from tests.factories import make_declarations, make_outcomes, make_seizures

    rng = np.random.default_rng(seed)
    decl = make_declarations(rng, n_history, start="2023-01-01", days=150)
    outcomes = make_outcomes(rng, decl)
    seizures = make_seizures(rng, 60, start="2022-10-01", days=240)
    labelled = decl.merge(outcomes[["declaration_id", "hit"]], on="declaration_id")
    pipe = FeaturePipeline().fit(History(decl, outcomes, seizures), labelled)
    X = pipe.matrix(pipe.transform_columns(pipe.columns(labelled)))
    y = labelled["hit"].to_numpy(dtype=bool)
    params = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 10, "learning_rate": 0.1,
              "num_threads": 1, "seed": seed, "deterministic": True, "force_row_wise": True, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(X, label=y, feature_name=pipe.feature_names_,
                                            categorical_feature=pipe.categorical_), num_boost_round=30)
    model = RiskModel(pipe, booster, Calibrator(np.array([0.0, 1.0]), np.array([0.0, 1.0])), np.zeros(0))
    traffic_frame = make_declarations(rng, n_traffic, start="2023-06-01", days=30, prefix="R")
    model.reference_scores = np.sort(model.predict(traffic_frame))
    from sklearn.metrics import roc_auc_score

    dates = labelled["declaration_date"]
    model.metadata = {"label": "hit", "training_period": [str(dates.min().date()), str(dates.max().date())],
                      "metrics": {"auc": float(roc_auc_score(y, booster.predict(X)))},
                      "features": list(pipe.feature_names_)}
    return TinyModel(model, _json_records(traffic_frame))


@pytest.fixture(scope="session")
def tiny_model() -> TinyModel:
    return build_tiny_model()


class TinyRegistry:
    """An in-memory model registry behind ``create_app``'s ``loader`` and ``resolver`` seams.

    ``versions`` maps a version to a RiskModel, or to an exception its loading raises (a corrupt
    artifact); ``aliases`` maps an alias to a version.
    """

    def __init__(self, name: str, model: Any):
        self.name = name
        self.versions: dict[str, Any] = {"1": model}
        self.aliases: dict[str, str] = {"champion": "1"}

    def add(self, model: Any) -> str:
        version = str(len(self.versions) + 1)
        self.versions[version] = model
        return version

    def resolve(self, uri: str) -> tuple[str, str, str | None]:
        name, _, alias = uri.removeprefix("models:/").partition("@")
        if name != self.name or alias not in self.aliases:
            raise LookupError(f"registered model alias {alias!r} of {name!r} not found")
        return name, self.aliases[alias], alias

    def load(self, uri: str) -> Any:
        from scoring.registry import LoadedModel

        name, _, version = uri.removeprefix("models:/").partition("/")
        found = self.versions[version]
        if isinstance(found, Exception):
            raise found
        return LoadedModel(found, name, version, None, uri, run_id=f"tiny-run-{version}")


def _test_client_class() -> type:
    """fastapi.testclient warns (UserWarning) that it prefers httpx2; not ours to fix."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient


API_MAX_ITEMS = 50
API_MAX_BODY = 64 * 1024


class Api:
    """A running app (``TestClient``) with one key per role, its store and the registry it loads from."""

    def __init__(self, client: Any, store: Any, keys: dict[str, str], registry: TinyRegistry | None):
        self.client = client
        self.store = store
        self.keys = keys
        self.registry = registry

    @property
    def service(self) -> Any:
        return self.client.app.state.service

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def post(self, path: str, role: str = "officer", **kw: Any) -> Any:
        headers = {**self.h(role), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)

    def get(self, path: str, role: str = "analyst", **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(role), **kw)

    def audit(self) -> Any:
        """The audit log once the background writer has written every call answered so far."""
        assert self.service.flush_audit(timeout=30)
        return self.store.audit_frame()


@pytest.fixture(scope="session")
def seizures_file() -> Path:
    """The trend reports' source for API tests: the reports tests' small hand-checked file (2022 and 2023)."""
    return REPO / "tests" / "data" / "reports" / "seizures_small.csv"


@functools.cache
def _empty_store() -> Path:
    """A serving store migrated to the head revision, once per test process: each API test starts from a
    copy (running the migrations took ~25 ms of every one; ``tests/test_store.py`` tests them)."""
    from serving import Store

    folder = tempfile.mkdtemp(prefix="riskprof-empty-store-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "serving.db"
    Store.from_url(f"sqlite:///{path}").dispose()
    return path


@contextmanager
def running_api(folder: Path, model: Any, *, registry: TinyRegistry | None | bool = True, with_keys: bool = True,
                seizures: Path | None = None, **overrides: Any) -> Iterator[Api]:
    """settings → store → keys → app: the one set-up of every API test.

    ``registry=True`` serves ``model`` from a fresh :class:`TinyRegistry`; ``None`` loads through the
    configured MLflow registry (``model_name`` then names a registered model).
    """
    from serving import ServingSettings, Store, create_app
    from serving.roles import Role

    reg = TinyRegistry(overrides.get("model_name", "tiny"), model) if registry is True else registry or None
    values: dict[str, Any] = {"model_name": reg.name if reg else "riskprof",
                              "database_url": f"sqlite:///{folder / 'serving.db'}",
                              "seizures_path": seizures if seizures is not None else folder / "no-seizures.parquet",
                              "max_items": API_MAX_ITEMS, "max_body_bytes": API_MAX_BODY, "key_cache_seconds": 0}
    settings = ServingSettings(**{**values, **overrides})
    if "database_url" not in overrides:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_store(), folder / "serving.db")
    store = Store.from_url(settings.resolved_database_url)
    try:
        keys = {role.value: store.create_api_key(f"test-{role.value}", role) for role in Role} if with_keys else {}
        seams = {"loader": reg.load, "resolver": reg.resolve} if reg is not None else {}
        with _test_client_class()(create_app(settings, **seams), raise_server_exceptions=False) as client:
            yield Api(client, store, keys, reg)
    finally:
        store.dispose()


@pytest.fixture
def make_api(tiny_model: TinyModel, seizures_file: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Api]]:
    """A factory of running apps serving the tiny model; keyword arguments override settings
    (and ``registry``/``with_keys``/``seizures`` as in :func:`running_api`). Closed after the test."""
    with ExitStack() as stack:
        def make(**overrides: Any) -> Api:
            folder = tmp_path_factory.mktemp("api")
            overrides.setdefault("seizures", seizures_file)
            return stack.enter_context(running_api(folder, tiny_model.model, **overrides))

        yield make


@contextmanager
def settings_env(monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...] = (), **values: str) -> Iterator[None]:
    """The environment variables ``values`` set and ``unset`` removed (monkeypatch undoes both), with the
    cached settings of riskprof and of the serving layer read again inside and after."""
    from serving.settings import get_serving_settings
    from settings import get_settings

    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    get_serving_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
        get_serving_settings.cache_clear()
