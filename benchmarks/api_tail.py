"""Where the slowest 1 % of single scoring calls lose their time: in the code, or waiting on the machine.

A real uvicorn server (one worker, sync audit) runs the app wrapped by ``_timed_app.py``, which times
each request inside the server: its wall time in the app and the CPU time of the event loop's thread
meanwhile. A lean keep-alive client (``http.client``) sends ``--calls`` single declarations with reasons
at concurrency 1, then as many ``GET /health`` (a route that does nothing) for the machine's own floor.
For each call: client latency L, time in the app W, the app thread's CPU C; W − C is time the app waited
(descheduled, or blocked: split into the store calls' wall time beyond their CPU, the SQLite key read and
audit commit, and the rest), L − W time outside the app (client, sockets, uvicorn, scheduling).

Each of the slowest 1 % of calls is put down to the part furthest above its median: **CPU** (the same
work took more of the thread's CPU: cold caches, a slowed virtual CPU), **waited on the store**, **waited
elsewhere in the app** (runnable but not running: another task, or the hypervisor, whose stolen time this
kernel does not count as the thread's CPU), or **outside the app**. The p99 of each call's excess over the median latency says how much
the machine adds at the tail: a p99 goal then needs a p50 of at most the goal minus that excess.

It reuses the work folder of ``api_latency.py`` (its generated data and its ``bench`` model): run that
once with the same ``--workdir`` first.

    .venv/bin/python benchmarks/api_tail.py --workdir /tmp/apilat [--calls 3000] [--goal-ms 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _lean(url: str, key: str, method: str, path: str, bodies: list[bytes | None]) -> np.ndarray:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    out = np.empty(len(bodies))
    try:
        for i, body in enumerate(bodies):
            t = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            out[i] = time.perf_counter() - t
            if r.status != 200:
                raise SystemExit(f"{method} {path} answered {r.status}")
    finally:
        conn.close()
    return out * 1e3


def _p(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="the work folder of api_latency.py (data and model)")
    ap.add_argument("--calls", type=int, default=3000, help="single scoring calls (and as many GET /health)")
    ap.add_argument("--goal-ms", type=float, default=3.0, help="the p99 goal the report compares with")
    args = ap.parse_args()

    tmp = Path(args.workdir).resolve()
    decl = tmp / "data" / "declarations.parquet"
    if not decl.exists():
        sys.exit(f"{decl} not found: run benchmarks/api_latency.py --workdir {tmp} first")
    import api_latency

    from serving.store import Store

    timings = Path(tempfile.mkstemp(prefix="riskprof-tail-", suffix=".json")[1])
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "RISKPROF_MODELS_DIR": str(tmp / "models"), "RISKPROF_MODEL_NAME": "bench",
           "RISKPROF_MODEL_ALIAS": "champion", "RISKPROF_AUDIT_MODE": "sync", "MLFLOW_DISABLE_TELEMETRY": "true",
           "RISKPROF_DATABASE_URL": f"sqlite:///{tmp / f'serving-tail-{os.getpid()}.db'}",
           "RISKPROF_TIMINGS_FILE": str(timings),
           "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    store = Store.from_url(env["RISKPROF_DATABASE_URL"])
    key = store.create_api_key(f"tail-{os.getpid()}", "officer")
    store.dispose()
    bodies: list[bytes | None] = [json.dumps(r).encode() for r in api_latency.payload_rows(decl, 500)]
    calls = [bodies[i % len(bodies)] for i in range(args.calls)]

    with api_latency.uvicorn_server(env, 1, app="_timed_app:create_app") as (url, _pid):
        _lean(url, key, "POST", "/v1/score", calls[:300])  # warm up
        score = _lean(url, key, "POST", "/v1/score", calls)
        _lean(url, key, "GET", "/health", [None] * 300)
        health = _lean(url, key, "GET", "/health", [None] * args.calls)
    records = json.loads(timings.read_text())
    timings.unlink()
    inside = [r for r in records if r[0] == "POST /v1/score"][-args.calls:]
    W = np.array([r[2] for r in inside]) * 1e3
    C = np.array([r[3] for r in inside]) * 1e3
    S = np.array([r[4] - r[5] for r in inside]) * 1e3  # the store calls' wall time beyond their CPU
    L, A, out = score, W - C - S, score - W

    print(f"{args.calls} single calls with reasons, concurrency 1, one worker, sync audit; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| ms | p50 | p99 | max |\n|---|---|---|---|")
    for name, a in (("client latency (L)", L), ("in the app (W)", W), ("app thread CPU (C)", C),
                    ("waited on the store (key check and audit insert: wall − CPU)", S),
                    ("waited elsewhere in the app (W − C − store)", A), ("outside the app (L − W)", out),
                    ("GET /health, client latency", health)):
        print(f"| {name} | {_p(a, 50):.2f} | {_p(a, 99):.2f} | {a.max():.2f} |")
    slow = np.argsort(-L)[: max(1, args.calls // 100)]
    excess = np.stack([C - np.median(C), S - np.median(S), A - np.median(A), out - np.median(out)])[:, slow]
    cause = excess.argmax(axis=0)
    labels = ("CPU (same work, more CPU)", "waited on the store", "waited elsewhere in the app", "outside the app")
    print(f"\nthe slowest 1 % ({len(slow)} calls, {L[slow].min():.2f}–{L[slow].max():.2f} ms), each put down to the "
          "part furthest above its median:")
    for k, label in enumerate(labels):
        mine = slow[cause == k]
        if len(mine):
            print(f"- {label}: {len(mine)} calls, median excess {np.median(excess[k, cause == k]):.2f} ms "
                  f"(their app CPU p50 {np.median(C[mine]):.2f} ms against {np.median(C):.2f} ms for all calls)")
    tail = _p(L - np.median(L), 99)
    print(f"\np99 excess over the median latency: {tail:.2f} ms (GET /health: "
          f"{_p(health - np.median(health), 99):.2f} ms). With that tail, p99 ≤ {args.goal_ms:g} ms needs a "
          f"median of ≤ {args.goal_ms - tail:.2f} ms; it is {np.median(L):.2f} ms.")


if __name__ == "__main__":
    main()
