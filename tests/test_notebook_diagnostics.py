"""The model-diagnostics notebook runs against a real registered model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TrainedModel

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.integration
def test_model_diagnostics_notebook_executes(trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RISKPROF_MODEL_URI", trained_model.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.tracking_uri)
    assert os.environ["MLFLOW_TRACKING_URI"] == trained_model.tracking_uri
    nb = nbformat.read(REPO / "notebooks" / "model_diagnostics.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, [(e["ename"], e["evalue"]) for e in errors]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "precision" in text and "goods_cover" in text and trained_model.name in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
