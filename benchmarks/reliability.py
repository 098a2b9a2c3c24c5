"""The reliability figures in one command: fuzzing, the access matrix, a short load run, crash and fault tests.

1. schemathesis over every documented operation (``tests/test_fuzz_openapi.py``): requests sent, 5xx,
   schema violations;
2. the access matrix (``tests/test_access_matrix.py``): every API route × 5 callers;
3. a short bounded load run (``benchmarks/load.py``): errors, p50/p99 per kind, audit rows = answers;
4. the crash and fault tests: kill -9 of a batch run at ten random points then resumed, a full disk
   during a batch, kill -9 of the API under load (SQLite and PostgreSQL), the database going away,
   corrupt model artifacts (``tests/test_batch.py``, ``tests/test_store_postgres_processes.py``,
   ``tests/test_model_faults.py``).

Each test file runs in its own pytest process (``-q``, one thread per library); the figures are read
from the reports the tests write and from pytest's per-test results. Exits 1 if any figure is not
what it should be (a failed test, a 5xx, a load error or an audit mismatch).

    .venv/bin/python benchmarks/reliability.py [--load-clients 32] [--load-seconds 20] [--skip-crash]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CRASH_TESTS = [
    ("tests/test_batch.py", "kill_9 or sigkill or full_disk"),
    ("tests/test_store_postgres_processes.py", "kill_9 or outage"),
    ("tests/test_model_faults.py", ""),
]
# a test that repeats its trial states the count here (the batch test kills ten runs at random points)
TRIALS = {"test_kill_9_at_ten_random_points_then_resume_equals_a_clean_run": 10}


def pytest(path: str, keyword: str = "", env: dict[str, str] | None = None) -> dict[str, str]:
    """Run one test file; {test id: PASSED/FAILED/ERROR/SKIPPED} from pytest's -rA summary."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", path,
           *(["-k", keyword] if keyword else [])]
    variables = {**os.environ, "RISKPROF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                 "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    done = subprocess.run(cmd, cwd=REPO, env=variables, capture_output=True, text=True, check=False)
    results = {test: status for status, test in re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+)",
                                                           done.stdout, re.M)}
    if not results:
        tail = "\n".join(done.stdout.splitlines()[-15:] + done.stderr.splitlines()[-15:])
        results = {path: f"ERROR (no test ran: exit {done.returncode})\n{tail}"}
    return results


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def fuzz_and_matrix(tmp: Path) -> dict[str, Any]:
    fuzz_file, matrix_file = tmp / "fuzz.json", tmp / "matrix.json"
    fuzz_tests = pytest("tests/test_fuzz_openapi.py", env={"RISKPROF_FUZZ_REPORT": str(fuzz_file)})
    matrix_tests = pytest("tests/test_access_matrix.py", env={"RISKPROF_MATRIX_REPORT": str(matrix_file)})
    return {"fuzz": {**_read(fuzz_file), "tests": fuzz_tests},
            "matrix": {**_read(matrix_file), "tests": matrix_tests}}


def crash(selected: list[tuple[str, str]]) -> dict[str, Any]:
    tests: dict[str, str] = {}
    for path, keyword in selected:
        tests.update(pytest(path, keyword))
    trials = {t: TRIALS.get(t.split("::")[-1].split("[")[0], 1) for t in tests}
    passed = sum(n for t, n in trials.items() if tests[t] == "PASSED")
    ran = sum(n for t, n in trials.items() if tests[t] != "SKIPPED")
    return {"tests": tests, "trials_passed": passed, "trials": ran}


def _ok(tests: dict[str, str]) -> bool:
    return bool(tests) and all(status in ("PASSED", "SKIPPED") for status in tests.values())


def report(r: dict[str, Any]) -> bool:
    f, m, load = r["fuzz"], r["matrix"], r["load"]
    print(f"fuzzing (schemathesis, {f.get('operations', '?')} operations, with and without a key): "
          f"{f.get('requests', '?')} requests, {f.get('server_errors', '?')} 5xx, "
          f"{f.get('violations', '?')} schema violations  [{'ok' if _ok(f['tests']) else 'FAILED'}]")
    print(f"access matrix: {m.get('routes', '?')} routes x 5 callers, {m.get('as_expected', '?')} of "
          f"{m.get('cells', '?')} answers as the roles say  [{'ok' if _ok(m['tests']) else 'FAILED'}]")
    k = load["kinds"]
    print(f"load: {load['clients']} clients x {load['seconds']:g} s, {load['errors']} errors; p99 score "
          f"{k['score']['p99_ms']} ms, rank(1,000) {k['rank']['p99_ms']} ms, outcomes {k['outcomes']['p99_ms']} ms; "
          f"audit rows = answers: {load['audit_matches'] and load['outcomes_match']}; "
          f"RSS {load['rss_mb_start']} -> {load['rss_mb_end']} MB")
    ok = _ok(f["tests"]) and _ok(m["tests"]) and load["errors"] == 0 and load["audit_matches"] \
        and load["outcomes_match"]
    if "crash" in r:
        c = r["crash"]
        print(f"crash and fault trials: {c['trials_passed']} of {c['trials']} passed")
        for test, status in c["tests"].items():
            print(f"  {status:<7} {test}")
        ok = ok and _ok(c["tests"])
    failed = {t: s for part in ("fuzz", "matrix", "crash") for t, s in r.get(part, {}).get("tests", {}).items()
              if s not in ("PASSED", "SKIPPED")}
    for test, status in failed.items():
        print(f"  {status}: {test}")
    return ok


def run(load_clients: int, load_seconds: float, with_crash: bool) -> bool:
    sys.path.insert(0, str(Path(__file__).parent))
    from load import print_report, run_load  # benchmarks/load.py

    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        results = fuzz_and_matrix(Path(tmp))
    results["load"] = run_load(load_clients, load_seconds)
    print_report(results["load"])
    if with_crash:
        results["crash"] = crash(CRASH_TESTS)
    print(f"\nreliability figures ({time.monotonic() - start:.0f} s):")
    return report(results)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--load-clients", type=int, default=32)
    ap.add_argument("--load-seconds", type=float, default=20.0)
    ap.add_argument("--skip-crash", action="store_true", help="leave out the crash and fault tests (minutes)")
    args = ap.parse_args()
    sys.exit(0 if run(args.load_clients, args.load_seconds, not args.skip_crash) else 1)
