"""The nightly job as the operations guide runs it: relative paths from the job's working folder, a
half-copied manifest, a checkpoint whose pinned model version is gone, an output folder that becomes
read-only while the run writes. Each night either scores the right rows once or fails with exit 2 and
a message naming the problem, leaving a state the same command resumes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from batch import BatchOptions, read_output, score_manifest
from tests.conftest import TinyModel, TinyRegistry
from tests.factories import make_declarations

MODEL_URI = "models:/tiny/1"


def _options(**kw: Any) -> BatchOptions:
    return BatchOptions(**{"capacity": "10%", "chunk_rows": 40, "pipelined": False, **kw})


def _manifest(n: int = 100, seed: int = 5):
    return make_declarations(np.random.default_rng(seed), n, start="2023-06-01", days=30)


def test_relative_paths_of_the_nightly_job_are_recorded_as_absolute_so_the_workbench_finds_the_manifest(
        tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's cron line and systemd unit run ``score --manifest in/… --out out/…`` from /srv/riskprof.
    The output recorded ``in/manifest.csv`` as it was typed, so the workbench, running elsewhere, said "the
    manifest file is no longer at in/manifest.csv" and showed no declaration fields (the mapping alike)."""
    home = tmp_path / "srv"
    (home / "in").mkdir(parents=True)
    (home / "out").mkdir()
    frame = _manifest()
    frame.to_csv(home / "in" / "manifest.csv", index=False, date_format="%Y-%m-%d")
    mapping = home / "mapping.yaml"
    mapping.write_text("contract: declaration\ncolumns:\n" + "".join(f"  {c}: {c}\n" for c in frame.columns))
    monkeypatch.chdir(home)
    score_manifest("in/manifest.csv", "out/scores.parquet", MODEL_URI, _options(), mapping="mapping.yaml",
                   load_model=TinyRegistry("tiny", tiny_model.model).load)

    meta = json.loads((home / "out" / "scores.meta.json").read_text())
    assert meta["input"]["files"][0]["path"] == str(home / "in" / "manifest.csv")
    assert meta["mapping"]["path"] == str(mapping)
    assert set(pq.read_table(home / "out" / "scores.parquet").column("source_file").to_pylist()) == {
        str(home / "in" / "manifest.csv")}

    monkeypatch.chdir(tmp_path)  # the workbench's own working folder
    out = read_output(home / "out" / "scores.parquet")
    assert out.notes == []
    assert sorted(out.declarations["declaration_id"]) == sorted(frame["declaration_id"])
