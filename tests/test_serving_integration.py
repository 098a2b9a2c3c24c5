"""The scoring API through a real uvicorn server on 127.0.0.1 (random free port)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_process import app_in_thread

DECL: dict[str, Any] = {
    "declaration_id": "I-0001", "declaration_date": "2023-06-01", "importer_id": "IMP000123",
    "origin_country": "CN", "departure_country": "CN", "transit_countries": ["AE"], "destination_country": "YE",
    "conveyance": "vessel", "hs_code": "820600", "gross_weight_kg": 5400.0, "customs_value": 8200.0,
}


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import mlflow

    from serving import ServingSettings, Store, create_app

    mlflow.MlflowClient().set_registered_model_alias(trained_model.name, "champion", trained_model.version)
    tmp: Path = tmp_path_factory.mktemp("uvicorn")
    settings = ServingSettings(model_name=trained_model.name, database_url=f"sqlite:///{tmp / 'serving.db'}",
                               max_body_bytes=256 * 1024, max_items=100)
    store = Store.from_url(settings.resolved_database_url)
    keys = {"officer": store.create_api_key("it-officer", "officer"),
            "admin": store.create_api_key("it-admin", "admin")}
    app = create_app(settings)
    try:
        with app_in_thread(app, start_timeout=120) as url:
            yield {"url": url, "keys": keys, "store": store, "model": trained_model, "app": app}
    finally:
        store.dispose()


@pytest.mark.slow
@pytest.mark.integration
def test_real_server_scores_and_audits(server: dict[str, Any]) -> None:
    url, keys, store = server["url"], server["keys"], server["store"]
    officer = {"X-API-Key": keys["officer"]}
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        ready = http.get("/ready")
        assert ready.status_code == 200 and ready.json()["model"]["version"] == server["model"].version
        assert http.post("/v1/score", json=DECL).status_code == 401
        assert http.post("/v1/model/reload", headers=officer).status_code == 403

        one = http.post("/v1/score", json=DECL, headers=officer)
        assert one.status_code == 200, one.text
        result = one.json()["results"][0]
        assert result["declaration_id"] == "I-0001" and 0 <= result["risk_score"] <= 1 and result["reasons"]

        batch = [{**DECL, "declaration_id": f"I-{i:04d}"} for i in range(100)]
        many = http.post("/v1/score", json=batch, headers=officer)
        assert many.status_code == 200 and many.json()["count"] == 100

        too_many = http.post("/v1/score", json=[*batch, DECL], headers=officer)
        assert too_many.status_code == 413
        too_big = http.post("/v1/score", content=b"[" + b" " * (300 * 1024) + b"]",
                            headers={**officer, "Content-Type": "application/json"})
        assert too_big.status_code == 413 and too_big.json()["detail"][0]["field"] == "body"
        bad_json = http.post("/v1/score", content=b'{"declaration_id": ', headers=officer)
        assert bad_json.status_code == 400 and bad_json.json()["detail"][0]["field"] == "body"
        bad = http.post("/v1/score", json=[DECL, {**DECL, "gross_weight_kg": -1}], headers=officer)
        assert bad.status_code == 422
        assert bad.json()["detail"] == [{"item": 1, "field": "gross_weight_kg", "value": -1,
                                         "message": "Input should be greater than or equal to 0"}]

        def call(i: int) -> int:
            return http.post("/v1/score", json={**DECL, "declaration_id": f"C-{i:04d}"}, headers=officer).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(call, range(64)))
        assert codes == [200] * 64

    assert server["app"].state.service.flush_audit(timeout=30)
    audit = store.audit_frame()
    assert len(audit) == 1 + 100 + 64
    assert set(audit["key_name"]) == {"it-officer"}
    assert set(audit["model_version"]) == {server["model"].version}
    assert sorted(audit.loc[audit["declaration_id"].str.startswith("C-"), "declaration_id"]) == [
        f"C-{i:04d}" for i in range(64)]
    assert json.loads(json.dumps(audit["reasons"].iloc[0]))[0]["text"]


@pytest.mark.integration
def test_docs_render_in_a_browser_without_internet(tiny_model, tmp_path: Path) -> None:
    """Swagger UI at /docs draws every operation in headless Chromium with every host but 127.0.0.1 unresolvable."""
    import subprocess

    from serving import ServingSettings, create_app
    from tests.conftest import TinyRegistry
    from tests.test_reports_browser import chromium

    registry = TinyRegistry("tiny", tiny_model.model)
    settings = ServingSettings(model_name="tiny", database_url=f"sqlite:///{tmp_path / 'serving.db'}")
    with app_in_thread(create_app(settings, loader=registry.load, resolver=registry.resolve), "uvicorn-docs") as url:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
               "--dump-dom", f"{url}/docs"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "riskprof scoring service" in dom
    for path in ("/v1/score", "/v1/manifests/rank", "/v1/outcomes", "/v1/reports/trends", "/health"):
        assert f'data-path="{path}"' in dom, path
