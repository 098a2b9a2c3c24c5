"""Model diagnostics for notebooks and reviews: what a registered model learned and how well."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.registry import LoadedModel, configure_mlflow, load_risk_model


@dataclass
class ModelDiagnostics:
    loaded: LoadedModel
    metrics: pd.DataFrame  # rate, precision/recall of the model and the baselines
    calibration: pd.DataFrame  # predicted vs observed per bin (test period)
    importance: pd.DataFrame  # feature, family, gain
    family_importance: pd.DataFrame  # family, gain share
    summary: dict[str, Any]


def load_diagnostics(model_uri: str) -> ModelDiagnostics:
    """Load a registered model and the evaluation its training run logged."""
    mlflow = configure_mlflow()
    loaded = load_risk_model(model_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=loaded.run_id, artifact_path="evaluation",
                                                   dst_path=tmp)
        logged = json.loads((Path(path) / "metrics.json").read_text())
        importance = pd.read_csv(Path(path) / "feature_importance.csv")
    test = logged["test"]
    rows = []
    for rate in test["precision_at"]:
        row = {"inspection_rate_pct": float(rate), "precision": test["precision_at"][rate],
               "recall": test["recall_at"][rate], "precision_vs_oracle": test["precision_at_norm"][rate]}
        for name, b in logged["baselines"].items():
            row[f"precision_{name}"] = b["precision_at"][rate]
        rows.append(row)
    family = (importance.groupby("family")["gain"].sum() / importance["gain"].sum()).rename("gain_share")
    return ModelDiagnostics(
        loaded=loaded,
        metrics=pd.DataFrame(rows),
        calibration=pd.DataFrame(test["calibration"]),
        importance=importance,
        family_importance=family.sort_values(ascending=False).reset_index(),
        summary={"model": loaded.describe(), "auc": test["auc"], "average_precision": test["average_precision"],
                 "brier": test["brier"], "selection_bias": logged["selection_bias"]},
    )


def plot_diagnostics(diag: ModelDiagnostics):
    """Calibration curve, precision at inspection rate, top features — one matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    cal = diag.calibration
    hi = float(max(cal["predicted"].max(), cal["observed"].max(), 0.01))
    axes[0].plot([0, hi], [0, hi], "k:")
    axes[0].plot(cal["predicted"], cal["observed"], "o-")
    axes[0].set(title="calibration (test period)", xlabel="predicted", ylabel="observed")
    m = diag.metrics
    for col in [c for c in m.columns if c.startswith("precision") and c != "precision_vs_oracle"]:
        axes[1].plot(m["inspection_rate_pct"], m[col], "o-", label=col)
    axes[1].set(title="precision at inspection rate", xlabel="% inspected")
    axes[1].legend(fontsize=8)
    top = diag.importance.head(15).iloc[::-1]
    axes[2].barh(top["feature"], top["gain"])
    axes[2].set(title="top features (gain)")
    fig.tight_layout()
    return fig
