"""Bounded load on the scoring API: N concurrent clients for D seconds against a real uvicorn on 127.0.0.1.

The script starts the server itself (``tests/api_process.py``: one uvicorn process serving the test
suite's tiny real model, a fresh SQLite store, the default durable audit mode) on a free loopback port,
runs the clients for a fixed time, stops everything and reports:

* errors (any answer that is not a 2xx, or no answer) per kind of call — the goal is zero;
* p50/p99 latency of single scores, 1,000-item rankings and outcome posts;
* the server's resident memory (RSS) at start and at the end;
* the audit log against what was answered: one audit event per answered scoring call and one audit
  item per scored declaration, and one stored outcome per acknowledged outcome (read from the store
  after the server has stopped).

Exits 1 if any call failed or the store disagrees with the answers.

    .venv/bin/python benchmarks/load.py [--clients 32] [--seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

KINDS = ("score", "rank", "outcomes")
MIX = (0.7, 0.1, 0.2)  # single scores dominate a clearance desk; a manifest now and then; outcomes as found
RANK_ITEMS = 1_000


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    answered: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # 2xx answers
    scoring_calls: int = 0  # answered 2xx score + rank calls
    scored_items: int = 0
    outcome_ids: set[str] = field(default_factory=set)
    scored_ids: list[str] = field(default_factory=list)


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(xs), q)) * 1000, 1) if xs else None


async def _call(client: httpx.AsyncClient, tally: Tally, kind: str, path: str, body: Any) -> dict[str, Any] | None:
    start = time.perf_counter()
    try:
        answer = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        tally.errors[kind].append(f"{type(exc).__name__}: {exc}")
        return None
    tally.latencies[kind].append(time.perf_counter() - start)
    if not 200 <= answer.status_code < 300:
        tally.errors[kind].append(f"{answer.status_code} {answer.text[:200]}")
        return None
    tally.answered[kind] += 1
    data: dict[str, Any] = answer.json()
    return data


async def _client(n: int, url: str, key: str, traffic: list[dict[str, Any]], until: float, tally: Tally) -> None:
    rng = random.Random(n)
    seq = 0
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
        while time.monotonic() < until:
            kind = rng.choices(KINDS, MIX)[0]
            seq += 1
            if kind == "outcomes" and tally.scored_ids:
                did = tally.scored_ids[rng.randrange(len(tally.scored_ids))]
                body: Any = [{"declaration_id": did, "inspected_date": "2023-07-01", "inspected": True,
                              "selection_source": "model", "selection_probability": 1.0,
                              "hit": did.endswith("7")}]  # one outcome per declaration: a resend is the same
                if await _call(client, tally, kind, "/v1/outcomes", body) is not None:
                    tally.outcome_ids.add(did)
                continue
            if kind == "rank":
                rows = [{**r, "declaration_id": f"C{n}-{seq}-{i}"} for i, r in enumerate(traffic[:RANK_ITEMS])]
                body = {"declarations": rows, "capacity": 50, "random_share": 0.1, "seed": seq}
                answer = await _call(client, tally, kind, "/v1/manifests/rank", body)
            else:
                kind = "score"
                body = {**traffic[rng.randrange(len(traffic))], "declaration_id": f"C{n}-{seq}"}
                answer = await _call(client, tally, kind, "/v1/score", body)
            if answer is not None:
                tally.scoring_calls += 1
                tally.scored_items += int(answer["count"])
                tally.scored_ids.append(f"C{n}-{seq}" if kind == "score" else f"C{n}-{seq}-0")


async def _run(url: str, key: str, traffic: list[dict[str, Any]], clients: int, seconds: float) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(n, url, key, traffic, until, tally) for n in range(clients)))
    return tally


def _rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def _store_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from serving.store import Store, audit_events, audit_items, outcomes

    store = Store.from_url(url, create=False)
    try:
        with store.engine.connect() as conn:
            return {name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                    for name, table in (("audit_events", audit_events), ("audit_items", audit_items),
                                        ("outcomes", outcomes))}
    finally:
        store.dispose()


def run_load(clients: int = 32, seconds: float = 60.0, folder: Path | None = None) -> dict[str, Any]:
    """Start the server, load it, stop it and compare the store with the answers; the report as a dict."""
    from serving.roles import Role
    from serving.store import Store
    from tests.api_process import ApiProcess
    from tests.conftest import build_tiny_model

    with tempfile.TemporaryDirectory(dir=folder) as tmp_name:
        tmp = Path(tmp_name)
        tiny = build_tiny_model()
        (tmp / "model.pkl").write_bytes(pickle.dumps(tiny.model))
        db = f"sqlite:///{tmp / 'serving.db'}"
        store = Store.from_url(db)
        key = store.create_api_key("load", Role.officer)
        store.dispose()
        env = {"RISKPROF_DATABASE_URL": db, "RISKPROF_MODEL_NAME": "tiny", "RISKPROF_KEY_CACHE_SECONDS": "30",
               "RISKPROF_SEIZURES_PATH": str(tmp / "none.parquet"), "RISKPROF_MAX_ITEMS": str(RANK_ITEMS)}
        api = ApiProcess(tmp / "model.pkl", env, tmp / "api.log").start()
        try:
            assert api.proc is not None
            rss_start = _rss_mb(api.proc.pid)
            tally = asyncio.run(_run(api.url, key, tiny.traffic, clients, seconds))
            rss_end = _rss_mb(api.proc.pid)
        finally:
            api.stop()
        counts = _store_counts(db)
    kinds = {k: {"answered": tally.answered[k],
                 "errors": len(tally.errors[k]), "p50_ms": _pct(tally.latencies[k], 50),
                 "p99_ms": _pct(tally.latencies[k], 99), "first_errors": tally.errors[k][:3]} for k in KINDS}
    return {"clients": clients, "seconds": seconds, "errors": sum(len(v) for v in tally.errors.values()),
            "kinds": kinds, "rss_mb_start": rss_start, "rss_mb_end": rss_end,
            "answered_scoring_calls": tally.scoring_calls, "answered_items": tally.scored_items,
            "acknowledged_outcomes": len(tally.outcome_ids), "store": counts,
            "audit_matches": counts["audit_events"] == tally.scoring_calls
            and counts["audit_items"] == tally.scored_items,
            "outcomes_match": counts["outcomes"] == len(tally.outcome_ids)}


def print_report(r: dict[str, Any]) -> None:
    print(f"{r['clients']} clients for {r['seconds']:g} s on 127.0.0.1: "
          f"{'zero errors' if r['errors'] == 0 else str(r['errors']) + ' ERRORS'}")
    for kind, k in r["kinds"].items():
        print(f"  {kind:>8}: {k['answered']:>6,} answered, {k['errors']} errors, p50 {k['p50_ms']} ms, "
              f"p99 {k['p99_ms']} ms" + (f"  e.g. {k['first_errors']}" if k["errors"] else ""))
    print(f"  server RSS: {r['rss_mb_start']} MB at start, {r['rss_mb_end']} MB at the end")
    s = r["store"]
    print(f"  audit log: {s['audit_events']:,} events for {r['answered_scoring_calls']:,} answered scoring calls, "
          f"{s['audit_items']:,} items for {r['answered_items']:,} answered declarations "
          f"({'equal' if r['audit_matches'] else 'MISMATCH'}); outcomes stored {s['outcomes']:,} for "
          f"{r['acknowledged_outcomes']:,} acknowledged ({'equal' if r['outcomes_match'] else 'MISMATCH'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    report = run_load(args.clients, args.seconds)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 and report["audit_matches"] and report["outcomes_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
