"""Shared fixtures. The shared data folder is read from ../shared (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RISKPROF_SHARED", REPO.parent / "shared"))
KR_DIR = SHARED / "data" / "kr-customs-declarations"
KR_MAPPING = REPO / "examples" / "kr-customs" / "mapping.yaml"


@pytest.fixture(scope="session")
def kr_dir() -> Path:
    if not KR_DIR.exists():
        pytest.fail(f"shared Korean dataset not found at {KR_DIR} (set RISKPROF_SHARED)")
    return KR_DIR
