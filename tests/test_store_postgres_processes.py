"""Real uvicorn processes on one store: kill -9 under load loses nothing answered, two processes share
keys and outcomes on PostgreSQL, and a database outage answers 503 and heals by itself.

Each API is a separate process (``tests/api_process.py``) serving the suite's tiny model from a
pickle; the PostgreSQL cluster is the suite's own (``tests/pg.py``).
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving import migrations
from serving.store import Store, make_engine, outcomes_frame
from tests.api_process import ApiProcess
from tests.pg import PgCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def decl(i: str) -> dict[str, Any]:
    return {"declaration_id": i, "declaration_date": "2023-06-01", "hs_code": "820600", "importer_id": "IMP000123",
            "origin_country": "CN", "departure_country": "CN", "conveyance": "vessel", "customs_value": 8200.0}


def outcome(i: str, hit: bool = False) -> dict[str, Any]:
    return {"declaration_id": i, "inspected_date": "2023-06-02", "inspected": True, "selection_source": "model",
            "selection_probability": 1.0, "hit": hit}


@pytest.fixture(scope="module")
def model_file(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pkl"
    path.write_bytes(pickle.dumps(tiny_model.model))
    return path


@pytest.fixture
def launch(model_file: Path, tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Start API processes on a store URL (settings as RISKPROF_* variables); all stopped after the test."""
    started: list[ApiProcess] = []

    def start(url: str, **env: str) -> ApiProcess:
        variables = {"RISKPROF_DATABASE_URL": url, "RISKPROF_MODEL_NAME": "tiny",
                     "RISKPROF_SEIZURES_PATH": str(tmp_path / "none.parquet"), **env}
        api = ApiProcess(model_file, variables, tmp_path / f"api-{len(started)}.log")
        started.append(api)
        return api.start()

    yield start
    for api in started:
        api.stop()


def _store(url: str) -> Store:
    if not url.startswith("sqlite"):
        engine = make_engine(url)
        migrations.upgrade(engine)
        engine.dispose()
    return Store.from_url(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'serving.db'}"
    return request.getfixturevalue("pg_url")


# ---- kill -9 under load ------------------------------------------------------------------------


class Load:
    """Clients scoring (1 and 5 declarations a call) and posting outcomes until told to stop or the
    server dies; keeps what was acknowledged with a 2xx."""

    def __init__(self, url: str, key: str, clients: int):
        self.url, self.key, self.clients = url, key, clients
        self.scored: list[str] = []  # declaration ids of every answered scoring call
        self.outcomes: list[str] = []  # declaration ids of every acknowledged outcome
        self.errors: list[str] = []  # non-2xx answers (connection failures after the kill are expected)
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in range(clients)]

    def _run(self, c: int) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=30) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                ids = [f"C{c}-{i}-{j}" for j in range(1 if i % 2 else 5)]
                try:
                    if i % 3 == 0:
                        r = http.post("/v1/outcomes", json=[outcome(x) for x in ids])
                        target = self.outcomes
                    else:
                        r = http.post("/v1/score", json=[decl(x) for x in ids])
                        target = self.scored
                except httpx.HTTPError:
                    return  # the server is gone
                with self._lock:
                    if r.status_code == 200:
                        target.extend(ids)
                    else:
                        self.errors.append(f"{r.status_code} {r.text[:200]}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_kill_9_under_load_loses_no_answered_call(store_url: str, launch: Callable[..., ApiProcess]) -> None:
    """Default settings (audit_mode=sync): every call answered 2xx before the kill is in the audit log
    after it, and every acknowledged outcome is stored."""
    store = _store(store_url)
    key = store.create_api_key("load", "officer")
    api = launch(store_url)
    with Load(api.url, key, clients=4) as load:
        time.sleep(3.0)
        api.kill9()  # mid-load: requests are in flight
    assert load.errors == []
    assert len(load.scored) > 20 and len(load.outcomes) > 5, (len(load.scored), len(load.outcomes))

    restarted = launch(store_url)  # a fresh process on the same store starts and serves
    with httpx.Client(base_url=restarted.url, headers={"X-API-Key": key}) as http:
        assert http.post("/v1/score", json=decl("after-restart")).status_code == 200
    audited = set(store.audit_frame()["declaration_id"])
    lost = sorted(set(load.scored) - audited)
    assert lost == [], f"{len(lost)} of {len(load.scored)} answered declarations missing from the audit log"
    assert "after-restart" in audited
    stored = set(outcomes_frame(store)["declaration_id"])
    assert sorted(set(load.outcomes) - stored) == []
    print(f"\n{store_url.split(':')[0]}: {len(load.scored)} answered declarations and {len(load.outcomes)} "
          f"outcomes before kill -9, none lost")
    store.dispose()


# ---- two API processes on one PostgreSQL -------------------------------------------------------


def _post_together(clients: list[httpx.Client], path: str, body: Any) -> list[httpx.Response]:
    """The same body posted by every client at the same moment (threads released by one barrier)."""
    barrier = threading.Barrier(len(clients))
    answers: list[httpx.Response | None] = [None] * len(clients)

    def post(i: int) -> None:
        barrier.wait()
        answers[i] = clients[i].post(path, json=body)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_two_processes_share_revocations_and_outcomes(pg_url: str, launch: Callable[..., ApiProcess]) -> None:
    store = _store(pg_url)
    key = store.create_api_key("shared", "officer")
    # an hour of hash caching: a revocation must still reach both processes at once
    a = launch(pg_url, RISKPROF_KEY_CACHE_SECONDS="3600")
    b = launch(pg_url, RISKPROF_KEY_CACHE_SECONDS="3600")
    with httpx.Client(base_url=a.url, headers={"X-API-Key": key}) as ha, \
            httpx.Client(base_url=b.url, headers={"X-API-Key": key}) as hb:
        assert ha.post("/v1/score", json=decl("A-1")).status_code == 200
        assert hb.post("/v1/score", json=decl("B-1")).status_code == 200

        for round_ in range(5):  # the same outcomes to both processes at the same moment
            batch = [outcome(f"O-{round_}-{i}") for i in range(20)]
            answers = dict(zip("ab", _post_together([ha, hb], "/v1/outcomes", batch), strict=True))
            assert {n: r.status_code for n, r in answers.items()} == {"a": 200, "b": 200}, \
                {n: r.text for n, r in answers.items()}
            assert answers["a"].json()["created"] + answers["b"].json()["created"] == 20
            assert answers["a"].json()["unchanged"] + answers["b"].json()["unchanged"] == 20
        frame = outcomes_frame(store)
        assert len(frame) == 100 and frame["declaration_id"].is_unique

        assert store.revoke_key("shared")  # what `riskprof keys revoke --name shared` does
        for http in (ha, hb):
            refused = http.post("/v1/score", json=decl("after-revoke"))
            assert refused.status_code == 401 and refused.json()["detail"] == "invalid or revoked API key"
    assert "after-revoke" not in set(store.audit_frame()["declaration_id"])
    store.dispose()


def test_revocation_by_one_process_reaches_the_other_via_the_cli(pg_url: str,
                                                                  launch: Callable[..., ApiProcess],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from serving.settings import get_serving_settings

    store = _store(pg_url)
    key = store.create_api_key("desk-9", "officer")
    a = launch(pg_url, RISKPROF_KEY_CACHE_SECONDS="3600")
    with httpx.Client(base_url=a.url, headers={"X-API-Key": key}) as http:
        assert http.post("/v1/score", json=decl("X-1")).status_code == 200
        monkeypatch.setenv("RISKPROF_DATABASE_URL", pg_url)
        get_serving_settings.cache_clear()
        try:
            assert CliRunner().invoke(app, ["keys", "revoke", "--name", "desk-9"]).exit_code == 0
        finally:
            get_serving_settings.cache_clear()
        assert http.post("/v1/score", json=decl("X-2")).status_code == 401
    store.dispose()


# ---- the database goes away and comes back -----------------------------------------------------


def test_database_outage_answers_503_and_recovers(pg: PgCluster, pg_url: str,
                                                  launch: Callable[..., ApiProcess]) -> None:
    """No decision without an audit record: with PostgreSQL stopped every keyed call answers 503 with
    a JSON reason (known and unseen keys alike); once it is back the same process serves again."""
    store = _store(pg_url)
    key = store.create_api_key("seen", "officer")
    unseen = store.create_api_key("unseen", "officer")
    api = launch(pg_url)
    with httpx.Client(base_url=api.url, headers={"X-API-Key": key}, timeout=30) as http:
        assert http.post("/v1/score", json=decl("F-before")).status_code == 200
        pg.stop()
        try:
            for path, body, headers in [("/v1/score", decl("F-down"), {}),
                                        ("/v1/score", decl("F-down-2"), {"X-API-Key": unseen}),
                                        ("/v1/manifests/rank", {"declarations": [decl("F-down-3")], "capacity": 1}, {}),
                                        ("/v1/outcomes", outcome("F-down"), {})]:
                t0 = time.perf_counter()
                down = http.post(path, json=body, headers=headers)
                assert down.status_code == 503, (path, down.text)
                assert down.headers["content-type"].startswith("application/json")
                assert "store (database) is unavailable" in down.json()["detail"], down.text
                assert time.perf_counter() - t0 < 10
            not_ready = http.get("/ready")
            assert not_ready.status_code == 503 and not_ready.json()["store_reachable"] is False
            assert http.get("/health").status_code == 200
        finally:
            pg.start()
        back = http.post("/v1/score", json=decl("F-after"))  # stale connections are replaced, not used
        assert back.status_code == 200, back.text
        assert http.post("/v1/outcomes", json=outcome("F-after")).status_code == 200
        assert http.get("/ready").status_code == 200
    audited = set(store.audit_frame()["declaration_id"])
    assert {"F-before", "F-after"} <= audited and not audited & {"F-down", "F-down-2", "F-down-3"}
    assert "traceback" not in api.log().lower()
    store.dispose()


def test_the_api_refuses_to_start_on_an_older_schema(pg_url: str, launch: Callable[..., ApiProcess]) -> None:
    engine = make_engine(pg_url)
    from serving.store import metadata

    metadata.create_all(engine)  # tables from before migrations: older than the code
    engine.dispose()
    with pytest.raises(RuntimeError, match=r"older than this code .* run `riskprof db upgrade`"):
        launch(pg_url)
