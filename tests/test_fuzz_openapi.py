"""Schemathesis against the service's own OpenAPI schema: every operation the app documents, with an
admin key and without one, positive and negative data, through a real uvicorn on 127.0.0.1 serving the
suite's tiny model. Every answer must be a non-5xx whose status, media type, headers and body the schema
documents. Deterministic (hypothesis derandomized); the number of requests sent is counted and asserted.

``RISKPROF_FUZZ_REPORT=path.json`` writes the counts (``benchmarks/reliability.py`` reads them).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXAMPLES_PER_RUN = int(os.environ.get("RISKPROF_FUZZ_EXAMPLES", "15"))  # per operation × key × generation mode
MIN_REQUESTS = 1_000


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    operations: int = 0


@pytest.fixture(scope="module")
def server(tiny_model: Any, seizures_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """create_app (tiny model through the loader seam, SQLite store) in a real uvicorn thread on a free port."""
    import uvicorn

    from serving import ServingSettings, Store, create_app
    from serving.roles import Role
    from tests.conftest import API_MAX_BODY, API_MAX_ITEMS, TinyRegistry

    folder = tmp_path_factory.mktemp("fuzz")
    registry = TinyRegistry("tiny", tiny_model.model)
    settings = ServingSettings(model_name="tiny", database_url=f"sqlite:///{folder / 'serving.db'}",
                               seizures_path=seizures_file, max_items=API_MAX_ITEMS, max_body_bytes=API_MAX_BODY,
                               key_cache_seconds=0)
    store = Store.from_url(settings.resolved_database_url)
    keys = {role.value: store.create_api_key(f"fuzz-{role.value}", role) for role in Role}
    revoked = store.create_api_key("fuzz-revoked", Role.admin)
    store.revoke_key("fuzz-revoked")
    keys["revoked"] = revoked
    app = create_app(settings, loader=registry.load, resolver=registry.resolve)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", keys)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        store.dispose()


@dataclass
class Tally:
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status >= 500)


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
            response_schema_conformance]


def _fuzz_operation(operation: Any, mode: Any, headers: dict[str, str] | None, server: Server,
                    session: requests.Session, tally: Tally, examples: int) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import FailureGroup

    checks = _checks()
    label = f"{operation.method.upper()} {operation.path}"

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, session=session, timeout=30)
        tally.requests += 1
        tally.by_status[response.status_code] += 1
        tally.by_operation[label] += 1
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as exc:
            if len(tally.failures) < 40:  # the request and the answer, enough to reproduce by hand
                titles = "; ".join(sorted({f.title for f in exc.exceptions}))
                tally.failures.append(f"{titles}: {label} [{mode.value}, {'key' if headers else 'no key'}] "
                                      f"{case.as_curl_command(headers=headers)} -> {response.status_code} "
                                      f"{response.text[:300]!r}")

    try:
        run()
    except Unsatisfiable:
        if mode.value != "negative":
            raise  # only an operation without parameters or body has no invalid request to make


def fuzz(server: Server, examples: int = EXAMPLES_PER_RUN) -> tuple[Tally, list[str]]:
    """Every documented operation × (admin key, no key) × (positive, negative data)."""
    import schemathesis
    from schemathesis.core.result import Err
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the app's OpenAPI schema has an invalid operation: {result.err()}")
        operations.append(result.ok())
    tally = Tally()
    with requests.Session() as session:  # one keep-alive connection: a bad answer must not poison the next
        for operation in operations:
            for headers in ({"X-API-Key": server.keys["admin"]}, None):
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz_operation(operation, mode, headers, server, session, tally, examples)
    return tally, [f"{op.method.upper()} {op.path}" for op in operations]


def test_every_operation_is_fuzzed_without_a_5xx_or_a_schema_violation(server: Server) -> None:
    tally, labels = fuzz(server)

    documented = json.loads(requests.get(f"{server.url}/openapi.json", timeout=10).text)["paths"]
    expected = {f"{method.upper()} {path}" for path, item in documented.items() for method in item}
    assert set(labels) == expected and set(tally.by_operation) == expected
    report = os.environ.get("RISKPROF_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({"requests": tally.requests, "server_errors": tally.server_errors,
                                            "operations": len(labels), "violations": len(tally.failures),
                                            "by_status": dict(sorted(tally.by_status.items()))}))
    print(f"\nfuzzed {tally.requests} requests over {len(labels)} operations; statuses {dict(tally.by_status)}")
    assert tally.server_errors == 0, "\n\n".join(tally.failures)
    assert not tally.failures, "\n\n".join(tally.failures)
    assert tally.requests >= MIN_REQUESTS
    # both sides of the key were exercised: authorised answers and refusals
    assert tally.by_status[401] > 0 and sum(n for s, n in tally.by_status.items() if 200 <= s < 300) > 0
