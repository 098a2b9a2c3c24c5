"""A training job stopped by SIGTERM (systemctl stop, a unit's timeout, kill) ends its MLflow run FAILED
and exits 143; it left the run RUNNING for ever (only exceptions ended it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

JOB = textwrap.dedent("""
    import os, signal, sys, time
    import mlflow
    from riskprof.cli_data import stops_on_sigterm

    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("sigterm")

    @stops_on_sigterm
    def job() -> None:
        with mlflow.start_run() as run:
            print(run.info.run_id, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # as systemd's stop would
            time.sleep(60)

    job()
""")


@pytest.mark.slow
def test_a_terminated_job_ends_its_mlflow_run_failed(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # another test's run or experiment
    env.update({"PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"})
    proc = subprocess.run([sys.executable, str(script), uri], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 143, proc.stderr
    assert "stopped by SIGTERM" in proc.stderr
    run_id = proc.stdout.split()[0]
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


def test_the_training_commands_stop_on_sigterm() -> None:
    from riskprof.cli import app

    wrapped = {c.name for c in app.registered_commands if c.callback is not None and hasattr(c.callback, "__wrapped__")}
    assert {"train", "retrain", "refresh-features"} <= wrapped
