"""The scoring app wrapped to time each request inside the server (for ``api_tail.py``).

``uvicorn _timed_app:create_app --factory`` (``benchmarks/`` on ``PYTHONPATH``): the same app as
``serving.app:create_app``; for each HTTP request it keeps its method and path, when the app started on
it, its wall time in the app, the CPU time of the event loop's thread meanwhile, and the wall and CPU
time of its two store calls (the key check and the audit insert), and writes them as JSON to
``RISKPROF_TIMINGS_FILE`` when the server shuts down. Requests are timed one at a time (concurrency 1).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import serving.auth
import serving.service
from serving.app import create_app as _create_app

_STORE_CALLS: list[float] = [0.0, 0.0]  # wall, CPU of the current request's store calls


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*a: Any, **k: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            _STORE_CALLS[0] += time.perf_counter() - wall
            _STORE_CALLS[1] += time.thread_time() - cpu
    return timed


def create_app() -> Any:
    serving.service.ScoringService._record = _timed(serving.service.ScoringService._record)  # type: ignore[method-assign]
    serving.auth.KeyVerifier.verify = _timed(serving.auth.KeyVerifier.verify)  # type: ignore[method-assign]
    app = _create_app()
    records: list[tuple[Any, ...]] = []
    path = os.environ["RISKPROF_TIMINGS_FILE"]

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            async def on_message() -> Any:
                message = await receive()
                if message["type"] == "lifespan.shutdown":
                    with open(path, "w") as f:
                        json.dump(records, f)
                return message
            await app(scope, on_message, send)
            return
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        _STORE_CALLS[:] = [0.0, 0.0]
        wall, cpu = time.perf_counter(), time.thread_time()
        await app(scope, receive, send)
        records.append((f"{scope['method']} {scope['path']}", wall, time.perf_counter() - wall,
                        time.thread_time() - cpu, *_STORE_CALLS))

    return timed
