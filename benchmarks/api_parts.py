"""Where one scoring call's CPU goes: the app called in process (no HTTP server), part by part.

``POST /v1/score`` with one declaration (reasons on, sync audit by default) is sent straight to the ASGI
app, the way uvicorn would call it, and the CPU time (``time.process_time``) of each part is summed:
authentication, body parsing and validation, ``score_table`` (features, LightGBM, reasons), the
rules' decision, the audit insert, the response. Each run is timed twice, back to back and with the
thread asleep ``--pause`` seconds before every call (as a server is between two calls at concurrency 1),
alternating ``--repeat`` times, so both see the same minutes of the machine.

It reuses the work folder of ``api_latency.py`` (its generated data and its ``bench`` model): run that
once with the same ``--workdir`` first.

    .venv/bin/python benchmarks/api_parts.py --workdir /tmp/apilat [--calls 2000] [--pause 0.002]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))



def _wrap(owner: Any, name: str, label: str, totals: dict[str, float], is_async: bool = False) -> None:
    fn: Callable[..., Any] = getattr(owner, name)
    if is_async:
        async def timed_async(*a: Any, **k: Any) -> Any:
            t = time.process_time()
            try:
                return await fn(*a, **k)
            finally:
                totals[label] += time.process_time() - t
        setattr(owner, name, timed_async)
        return

    def timed(*a: Any, **k: Any) -> Any:
        t = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            totals[label] += time.process_time() - t
    setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="the work folder of api_latency.py (data and model)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per block")
    ap.add_argument("--pause", type=float, default=0.002, help="seconds asleep before each call of the idle blocks")
    ap.add_argument("--repeat", type=int, default=2, help="back-to-back / idle alternations")
    ap.add_argument("--audit-mode", default="sync", choices=("sync", "background"))
    args = ap.parse_args()

    tmp = Path(args.workdir).resolve()
    decl = tmp / "data" / "declarations.parquet"
    if not decl.exists():
        sys.exit(f"{decl} not found: run benchmarks/api_latency.py --workdir {tmp} first")
    os.environ.update({"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "RISKPROF_MODELS_DIR": str(tmp / "models"),
                       "RISKPROF_MODEL_NAME": "bench", "RISKPROF_MODEL_ALIAS": "champion",
                       "RISKPROF_DATABASE_URL": f"sqlite:///{tmp / f'serving-parts-{os.getpid()}.db'}",
                       "RISKPROF_MAX_BODY_BYTES": str(64 << 20), "MLFLOW_DISABLE_TELEMETRY": "true",
                       "RISKPROF_AUDIT_MODE": args.audit_mode})
    import api_latency

    import serving.auth
    import serving.routes
    import serving.service
    from serving.app import create_app
    from serving.store import Store

    store = Store.from_url(os.environ["RISKPROF_DATABASE_URL"])
    key = store.create_api_key(f"parts-{os.getpid()}", "officer")
    store.dispose()
    bodies = [json.dumps(r).encode() for r in api_latency.payload_rows(decl, 500)]

    totals: dict[str, float] = collections.defaultdict(float)
    _wrap(serving.auth, "get_principal", "auth (key check)", totals)
    _wrap(serving.routes, "_declarations", "body parsing and validation", totals)
    _wrap(serving.service, "score_table", "score_table (features, LightGBM, reasons)", totals)
    _wrap(serving.service.ScoringService, "_decide", "the rules' decision", totals)
    _wrap(serving.service.ScoringService, "_record", "the audit insert", totals)
    app = create_app()

    async def call(body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/score", "raw_path": b"/v1/score", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
                 "headers": [(b"host", b"x"), (b"x-api-key", key.encode()), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise SystemExit(f"POST /v1/score answered {status}")

    async def block(pause: float) -> dict[str, float]:
        totals.clear()
        t0 = time.process_time()
        for i in range(args.calls):
            if pause:
                time.sleep(pause)
            await call(bodies[i % len(bodies)])
        whole = time.process_time() - t0
        return {"the whole app": whole / args.calls * 1e3, **{k: v / args.calls * 1e3 for k, v in totals.items()}}

    async def run() -> list[tuple[str, dict[str, float]]]:
        out = []
        async with app.router.lifespan_context(app):
            for i in range(300):
                await call(bodies[i % len(bodies)])
            for _ in range(args.repeat):
                out.append(("back to back", await block(0.0)))
                out.append((f"after {args.pause * 1e3:g} ms asleep", await block(args.pause)))
        return out

    results = asyncio.run(run())
    labels = list(results[0][1])
    print(f"CPU per call (ms), {args.calls} calls per block, audit {args.audit_mode}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"| part | {' | '.join(name for name, _ in results)} |")
    print("|---|" + "---|" * len(results))
    for label in labels:
        print(f"| {label} | {' | '.join(f'{r[label]:.3f}' for _, r in results)} |")


if __name__ == "__main__":
    main()
