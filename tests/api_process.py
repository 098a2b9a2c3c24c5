"""The scoring API as a real uvicorn process, for tests that kill it, run two of it, or cut its database.

``python -m tests.api_process --model M.pkl --port N`` serves a pickled ``RiskModel`` (the suite's
tiny model) through ``create_app``'s loader/resolver seams; everything else (store URL, audit mode,
key cache) comes from the ``RISKPROF_*`` environment like ``riskprof serve``. :class:`ApiProcess`
starts it in its own process group, waits for ``/ready`` and stops (or ``kill -9``s) it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def app_in_thread(app: Any, name: str = "uvicorn-test", start_timeout: float = 60) -> Iterator[str]:
    """``app`` served by a real uvicorn on a free 127.0.0.1 port, in a thread of this process; yields
    its base URL and stops the server (and its thread) on exit."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not srv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop"


class ApiProcess:
    """One uvicorn process serving ``model_path`` with the given ``RISKPROF_*`` environment."""

    def __init__(self, model_path: Path, env: dict[str, str], log_path: Path):
        self.model_path = model_path
        self.env = {**os.environ, "RISKPROF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                    "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO), **env}
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> ApiProcess:
        cmd = [sys.executable, "-m", "tests.api_process", "--model", str(self.model_path), "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API did not become ready:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL the whole process group: no shutdown hook, no flush."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill9()


def main() -> None:
    import uvicorn

    from serving import create_app
    from serving.settings import ServingSettings
    from tests.conftest import TinyRegistry

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    settings = ServingSettings()
    with open(args.model, "rb") as fh:
        model = pickle.load(fh)  # noqa: S301 - the test suite's own file
    registry = TinyRegistry(settings.model_name, model)
    app = create_app(settings, loader=registry.load, resolver=registry.resolve)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
