"""CLI defects found when the tool was attacked: each ends in a clear message and a non-zero exit, never a
traceback or a silent success."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskprof.cli import app
from tests.factories import make_declarations, make_outcomes

runner = CliRunner()


@pytest.fixture
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """MLflow and the serving store in ``tmp_path`` (never the repository's models/ folder)."""
    from serving.settings import get_serving_settings
    from settings import get_settings

    models = tmp_path / "models"
    monkeypatch.setenv("RISKPROF_MODELS_DIR", str(models))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{models / 'mlflow.db'}")
    monkeypatch.delenv("RISKPROF_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    get_serving_settings.cache_clear()
    yield models
    get_settings.cache_clear()
    get_serving_settings.cache_clear()


@pytest.fixture
def history_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    decl = make_declarations(rng, 200)
    paths = {"declarations": tmp_path / "declarations.parquet", "outcomes": tmp_path / "outcomes.parquet"}
    decl.to_parquet(paths["declarations"], index=False)
    make_outcomes(rng, decl).to_parquet(paths["outcomes"], index=False)
    return paths


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output, output


# ---- refresh-features: an unreadable serving store is an error, not "no outcomes" --------------------


def test_refresh_fails_loudly_when_the_store_cannot_be_read(isolated_settings: Path, history_files: dict[str, Path],
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt = tmp_path / "serving.db"
    corrupt.write_bytes(b"this is not an SQLite database, it is a truncated copy " * 200)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{corrupt}")
    r = runner.invoke(app, ["refresh-features", "--model", "models:/no-such-model@champion",
                            "--declarations", str(history_files["declarations"])])
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "cannot read the outcomes recorded through the API" in r.output and str(corrupt) in r.output
    assert "file is not a database" in r.output and "--no-store" in r.output
    # read before the model is touched: nothing was looked up or registered
    assert "no-such-model" not in r.output


@pytest.mark.integration  # reaches a real (empty) MLflow registry
def test_refresh_without_the_store_does_not_read_it(isolated_settings: Path, history_files: dict[str, Path],
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt = tmp_path / "serving.db"
    corrupt.write_bytes(b"not a database " * 200)
    monkeypatch.setenv("RISKPROF_DATABASE_URL", f"sqlite:///{corrupt}")
    r = runner.invoke(app, ["refresh-features", "--no-store", "--model", "models:/no-such-model@champion",
                            "--declarations", str(history_files["declarations"])])
    # past the store, the refresh reaches the registry, which has no such model
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "cannot load model models:/no-such-model@champion" in r.output


def test_store_outcomes_error_names_the_store_without_its_password() -> None:
    from serving.refresh import StoreReadError, store_outcomes

    url = "postgresql+psycopg://riskprof:s3cret@127.0.0.1:1/riskprof?connect_timeout=2"
    with pytest.raises(StoreReadError, match="cannot read the outcomes") as info:
        store_outcomes(url)
    assert "s3cret" not in str(info.value) and "127.0.0.1:1/riskprof" in str(info.value)


def test_history_merges_files_then_the_store(history_files: dict[str, Path], tmp_path: Path) -> None:
    """The store's outcome for a declaration wins over a file's; a fresh store adds nothing."""
    from serving.refresh import history_from_files
    from serving.store import Store

    files = pd.read_parquet(history_files["outcomes"])
    first = files.iloc[0]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    history, n_store = history_from_files([history_files["declarations"]], outcome_files=[history_files["outcomes"]],
                                          database_url=url)
    assert n_store == 0 and len(history.outcomes) == len(files)
    store = Store.from_url(url)
    try:
        store.record_outcomes([{"declaration_id": first["declaration_id"],
                                "inspected_date": str(first["inspected_date"].date()), "inspected": True,
                                "selection_source": "officer", "selection_probability": 1.0,
                                "hit": not bool(first["hit"])}], "test")
    finally:
        store.dispose()
    history, n_store = history_from_files([history_files["declarations"]], outcome_files=[history_files["outcomes"]],
                                          database_url=url)
    assert n_store == 1 and len(history.outcomes) == len(files)
    row = history.outcomes.set_index("declaration_id").loc[first["declaration_id"]]
    assert bool(row["hit"]) is not bool(first["hit"]) and row["selection_source"] == "officer"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database " * 200)
    _, skipped = history_from_files([history_files["declarations"]], from_store=False,
                                    database_url=f"sqlite:///{corrupt}")
    assert skipped is None
