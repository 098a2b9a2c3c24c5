"""The nightly job as the operations guide runs it: relative paths from the job's working folder, a
half-copied manifest, a checkpoint whose pinned model version is gone, an output folder that becomes
read-only while the run writes. Each night either scores the right rows once or fails with exit 2 and
a message naming the problem, leaving a state the same command resumes from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from batch import BatchOptions, OutputPaths, read_output, score_manifest
from tests.conftest import TinyModel, TinyRegistry
from tests.factories import make_declarations
from tests.test_batch_profiles import _StopAfter
from tests.test_batch_resilience import _AfterFirstChunk

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


class _Killed(BaseException):
    """The run dies (as under SIGKILL: nothing of it runs afterwards but what a crash leaves)."""


class _VersionNotFound(Exception):
    """What MLflow raises for a version not in the registry (an ``MlflowException`` whose ``error_code`` is
    ``RESOURCE_DOES_NOT_EXIST``), without importing MLflow (seconds) in the quick tier."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class _Registry:
    """Versions and the ``champion`` alias, loaded as ``scoring.registry.load_risk_model`` loads them."""

    def __init__(self, models: dict[str, Any], champion: str):
        self.models, self.champion = dict(models), champion

    def load(self, uri: str) -> Any:
        from scoring.registry import LoadedModel

        name, _, ref = uri.removeprefix("models:/").partition("/")
        alias = None
        if "@" in name:
            name, alias = name.split("@")
            ref = self.champion
        if ref not in self.models:
            raise _VersionNotFound(f"Model Version (name={name}, version={ref}) not found")
        return LoadedModel(self.models[ref], name, ref, alias, f"models:/{name}/{ref}", run_id=f"run-{ref}")


def test_a_checkpoint_whose_pinned_version_left_the_registry_starts_afresh_with_the_champion(
        tiny_model: TinyModel, tmp_path: Path) -> None:
    """Killed while pinned to version 2, which was then deleted (a bad model rolled back: champion is 1
    again): every rerun of the same command failed with exit 2, "cannot load model …@champion: Model
    Version (name=…, version=2) not found", about an alias that pointed to version 1, and the night never
    completed. Now the checkpoint is discarded with a note and the run scores with the champion."""
    manifest = tmp_path / "manifest.parquet"
    _manifest(200).to_parquet(manifest, index=False)
    registry = _Registry({"1": tiny_model.model, "2": tiny_model.model}, champion="2")
    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    with pytest.raises(_Killed):
        score_manifest(manifest, out, "models:/tiny@champion", _options(), load_model=registry.load,
                       progress=_StopAfter(2, _Killed))
    ckpt = OutputPaths(out).checkpoint
    assert json.loads((ckpt / "state.json").read_text())["model"]["uri"] == "models:/tiny/2"

    del registry.models["2"]
    registry.champion = "1"
    summary = score_manifest(manifest, out, "models:/tiny@champion", _options(), load_model=registry.load)

    assert any(f"discarded checkpoint {ckpt}: the model version it pinned (models:/tiny/2) is no longer in the "
               "registry" in n and "starts afresh" in n for n in summary.notes), summary.notes
    assert summary.model["version"] == "1" and summary.chunks_resumed == 0
    assert summary.counts.rows_scored == 200 and not ckpt.exists()
    clean = score_manifest(manifest, tmp_path / "clean.parquet", "models:/tiny/1", _options(),
                           load_model=registry.load)
    assert pq.read_table(out).drop(["source_file"]).replace_schema_metadata(None).equals(
        pq.read_table(tmp_path / "clean.parquet").drop(["source_file"]).replace_schema_metadata(None))
    assert clean.counts.rows_scored == 200


def _csv_bytes(n: int = 100) -> bytes:
    return _manifest(n).to_csv(index=False, date_format="%Y-%m-%d").encode()


def test_a_half_copied_csv_is_refused_naming_its_cut_off_last_line(tiny_model: TinyModel, tmp_path: Path) -> None:
    """A manifest still being copied ends mid-row: it was scored with exit 0, its last row with the fields it
    happened to have (a customs value cut from 962.17 to 962.1, the currency missing) and the rows not yet
    copied silently absent. Now the run stops (nothing written) and says the file looks cut off."""
    from features.io import LoadError

    whole = _csv_bytes()
    last_line_start = whole.rstrip(b"\n").rfind(b"\n") + 1
    cut = whole[:last_line_start + (len(whole) - last_line_start) // 2]  # half of the last row
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(cut)
    out = tmp_path / "scores.parquet"
    with pytest.raises(LoadError) as err:
        score_manifest(manifest, out, MODEL_URI, _options(), load_model=TinyRegistry("tiny", tiny_model.model).load)
    said = str(err.value)
    assert str(manifest) in said and "ends without a line break" in said and "cut off" in said, said
    assert "fields" in said and "still being copied" in said
    assert not out.exists() and not OutputPaths(out).checkpoint.exists()

    manifest.write_bytes(whole)  # the copy completed: the same command scores every row
    summary = score_manifest(manifest, out, MODEL_URI, _options(), load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert summary.counts.rows_scored == 100


@pytest.mark.parametrize("ending", ["whole last row", "quoted line break in the last row"])
def test_a_csv_whose_last_row_is_whole_is_scored_without_a_final_line_break(tiny_model: TinyModel, tmp_path: Path,
                                                                           ending: str) -> None:
    """No final line break is allowed (RFC 4180): only a last row short of fields is taken for a cut."""
    frame = _manifest(30)
    if ending != "whole last row":
        frame.loc[frame.index[-1], "goods_description"] = "spare parts,\nsecond line"
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(frame.to_csv(index=False, date_format="%Y-%m-%d").encode().rstrip(b"\n"))
    summary = score_manifest(manifest, tmp_path / "scores.parquet", MODEL_URI, _options(),
                             load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert summary.counts.rows_scored == 30


def _chattr(flag: str, path: Path) -> None:
    res = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"chattr {flag} is not possible here (needs root on ext4/xfs/tmpfs): {res.stderr.strip()}")


def test_an_output_folder_made_read_only_mid_run_fails_with_the_write_error_not_the_lock_files(
        tiny_model: TinyModel, tmp_path: Path) -> None:
    """The folder made immutable while the run scored: the publish failed (exit 2, the chunks kept, the
    remedy said), and then removing ``<out>.lock`` failed too, and that error replaced the first: the
    library raised PermissionError, the CLI printed a second line, "error: cannot use …/scores.parquet.lock:
    Operation not permitted", the last an operator reads. A lock file left behind blocks nothing."""
    from batch import BatchWriteError

    manifest = tmp_path / "manifest.parquet"
    _manifest(200).to_parquet(manifest, index=False)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "scores.parquet"
    try:
        with pytest.raises(BatchWriteError) as err:
            score_manifest(manifest, out, MODEL_URI, _options(), load_model=TinyRegistry("tiny", tiny_model.model).load,
                           progress=_AfterFirstChunk(lambda: _chattr("+i", folder)))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    said = str(err.value)
    assert "permission denied" in said and "Nothing was published" in said and "run the same command" in said, said
    assert (folder / "scores.parquet.lock").exists()  # could not be removed: harmless
    summary = score_manifest(manifest, out, MODEL_URI, _options(), load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert summary.chunks_resumed == 5 and summary.counts.rows_scored == 200
    assert not (folder / "scores.parquet.lock").exists()


def test_a_quote_left_open_mid_file_fails_the_run_naming_the_row_instead_of_losing_the_rows_it_swallowed(
        tiny_model: TinyModel, tmp_path: Path) -> None:
    """``"import,`` in row 50 of a CSV: the quoted value ran on to the next quote, 30 lines further, and the
    run exited 0 with "rejected 1": the 30 declarations it swallowed were neither scored nor rejected.
    Now the run fails on its input (exit 2, nothing written) naming the file, the row and the column."""
    from batch import ManifestError

    frame = _manifest(100)
    frame.loc[frame.index[80], "goods_description"] = "parts, spare"  # quoted by the writer: the quote closing it
    lines = frame.to_csv(index=False, date_format="%Y-%m-%d").splitlines(keepends=True)
    lines[50] = lines[50].replace(",import,", ',"import,', 1).replace(",export,", ',"export,', 1)
    assert '"' in lines[50]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("".join(lines))
    out = tmp_path / "scores.parquet"
    with pytest.raises(ManifestError) as err:
        score_manifest(manifest, out, MODEL_URI, _options(), load_model=TinyRegistry("tiny", tiny_model.model).load)
    said = str(err.value)
    assert f"{manifest}: row 50: its direction value runs over" in said and "quote left open" in said, said
    assert "would not be scored" in said
    assert not out.exists() and not OutputPaths(out).checkpoint.exists()


def test_a_rejected_row_with_a_line_break_in_its_description_is_only_rejected(tiny_model: TinyModel,
                                                                             tmp_path: Path) -> None:
    """A multi-line value that holds no row of its own is no open quote: the row is rejected for its date."""
    frame = _manifest(60)
    frame["declaration_date"] = frame["declaration_date"].dt.strftime("%Y-%m-%d")
    frame.loc[frame.index[10], "goods_description"] = "spare parts,\nsee the invoice, page 2"
    frame.loc[frame.index[10], "declaration_date"] = "yesterday"
    manifest = tmp_path / "manifest.csv"
    frame.to_csv(manifest, index=False)
    summary = score_manifest(manifest, tmp_path / "scores.parquet", MODEL_URI, _options(),
                             load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert summary.counts.rows_scored == 59 and summary.counts.rows_rejected == 1
