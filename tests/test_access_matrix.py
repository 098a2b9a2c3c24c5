"""The access matrix: every API route of the app × (no key, revoked key, officer, analyst, admin).

The role a route needs is read from the route itself (the ``require_<role>`` dependency of
``serving.auth``, ordered by ``serving.roles``), so a new route is checked the day it is added:
a route that needs a role answers 401 without a key or with a revoked one, 403 to a role below it,
and neither (nor a 5xx) to that role and the ones above; a route that needs none never answers 401/403.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from serving.roles import Role

CALLERS = ("no key", "revoked key", *(role.value for role in Role))
# path parameters: ids that may or may not exist (404 is an answer past the key check)
PATH_VALUES = {"profile_id": "p-1", "name": "list-1", "alert_id": "1"}


def needed_role(route: Any) -> Role | None:
    """The least role the route asks for, from its dependency tree (None: no key needed)."""
    found: list[Role] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            found.append(Role(name.removeprefix("require_")))
        stack.extend(dep.dependencies)
    assert len(set(found)) <= 1, f"{route.path} asks for several roles: {found}"
    return found[0] if found else None


def expected(needed: Role | None, caller: str) -> str:
    if needed is None:
        return "answer"
    if caller in ("no key", "revoked key"):
        return "401"
    return "answer" if Role(caller).allows(needed) else "403"


def outcome(status: int) -> str:
    if status in (401, 403):
        return str(status)
    return "answer" if status < 500 else f"server error {status}"


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "1"), path)


def _call(api: Any, method: str, path: str, headers: dict[str, str]) -> int:
    body: dict[str, Any] = {}
    if method in ("POST", "PUT"):
        body["json"] = [{"declaration_id": "X"}] if path.endswith(("/score", "/outcomes")) else {}
    return int(api.client.request(method, _url(path), headers=headers, **body).status_code)


@pytest.fixture
def api(make_api: Any) -> Any:
    api = make_api()
    revoked = api.store.create_api_key("matrix-revoked", Role.admin)
    assert api.store.revoke_key("matrix-revoked")
    api.keys["revoked key"] = revoked
    return api


def _endpoints(app: Any) -> list[Any]:
    """The app's API routes, including those of included routers (FastAPI keeps those as route contexts)."""
    found: list[Any] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "effective_route_contexts"):
            found.extend(c for c in route.effective_route_contexts() if getattr(c, "dependant", None) is not None)
    return found


def routes_of(app: Any) -> list[tuple[str, str, Any]]:
    return sorted(((method, route.path, route) for route in _endpoints(app) for method in route.methods - {"HEAD"}),
                  key=lambda t: t[:2])


def test_every_route_answers_each_caller_as_its_role_says(api: Any) -> None:
    # the API: every route the app documents (the browser pages under /app sign in with a session instead)
    routes = [(m, p, r) for m, p, r in routes_of(api.client.app) if r.include_in_schema or p == "/docs"]
    documented = {(m.upper(), p) for p, item in api.client.get("/openapi.json").json()["paths"].items() for m in item}
    assert documented == {(m, p) for m, p, _ in routes if p != "/docs"}
    table: dict[tuple[str, str], dict[str, str]] = {}
    wanted: dict[tuple[str, str], dict[str, str]] = {}
    for method, path, route in routes:
        needed = needed_role(route)
        row = table.setdefault((method, path), {})
        for caller in CALLERS:
            headers = {} if caller == "no key" else {"X-API-Key": api.keys[caller]}
            row[caller] = outcome(_call(api, method, path, headers))
        wanted[(method, path)] = {caller: expected(needed, caller) for caller in CALLERS}
    mismatches = {route: (table[route], wanted[route]) for route in table if table[route] != wanted[route]}
    if os.environ.get("RISKPROF_MATRIX_REPORT"):  # read by benchmarks/reliability.py
        Path(os.environ["RISKPROF_MATRIX_REPORT"]).write_text(json.dumps(
            {"routes": len(table), "cells": len(table) * len(CALLERS),
             "as_expected": sum(table[r][c] == wanted[r][c] for r in table for c in CALLERS)}))
    assert not mismatches, "\n".join(f"{m} {p}: got {got}, want {want}" for (m, p), (got, want) in mismatches.items())
    # the declared requirements are what the design says: some routes for each role and the health pages open
    needs = {needed_role(r) for _, _, r in routes}
    assert {Role.officer, Role.analyst, Role.admin, None} <= needs
    assert wanted[("GET", "/health")] == dict.fromkeys(CALLERS, "answer")
    assert wanted[("POST", "/v1/model/reload")]["analyst"] == "403"
    assert wanted[("POST", "/v1/score")]["officer"] == "answer"
