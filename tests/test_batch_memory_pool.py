"""A batch run takes Arrow's buffers from the system allocator, unless ARROW_DEFAULT_MEMORY_POOL says
otherwise (checked in fresh interpreters: the pool is process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import pyarrow as pa; from batch._chunk import use_system_arrow_pool; "
         "before = pa.default_memory_pool().backend_name; use_system_arrow_pool(); use_system_arrow_pool(); "
         "print(before, pa.default_memory_pool().backend_name)")


@pytest.mark.slow  # two fresh interpreters (~2 s each): kept out of the quick tier
@pytest.mark.parametrize(("env", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_system_pool_unless_the_environment_chooses(env: str | None, expected: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env is not None:
        environ["ARROW_DEFAULT_MEMORY_POOL"] = env
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True,
                         check=True, timeout=120)
    before, after = out.stdout.split()
    assert after == expected
    if env is not None:
        assert before == env  # the user's choice is left alone
