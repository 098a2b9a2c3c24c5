"""The model page's figures.

The registry view: the versions behind the champion and challenger aliases, the test metrics of their
training runs and the champion's calibration on its test period (the run's ``evaluation/metrics.json``,
written by training), read from the MLflow registry (nothing is loaded or moved). A registry that
cannot be reached, or a SQLite registry file that does not exist, is reported on the page instead of
being created.

The served scores against recorded outcomes: calibration and the weekly hit rates of model-selected
and random-stratum inspections, from :func:`serving.monitoring.monitoring_from_store` (the figures of
``GET /v1/monitoring``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from monitoring.build import MIN_WEEK_CALIBRATION
from serving.monitoring import monitoring_from_store
from serving.store import Store

ALIASES = ("champion", "challenger")
MAX_METRICS = 24
CALIBRATION_ARTIFACT = "evaluation/metrics.json"  # training.tracking.log_evaluation: {"test": {"calibration": …}}
RECENT_WEEKS = 12
#: fewer scored outcomes than this (model and random selections) are too few to judge calibration by
MIN_CALIBRATION_ITEMS = MIN_WEEK_CALIBRATION


def registry_aliases(model_name: str, aliases: tuple[str, ...] = ALIASES) -> tuple[list[dict[str, Any]], str]:
    """(one entry per alias: version, run id, metrics or why none), and a note on the registry."""
    from scoring.registry import configure_mlflow
    from settings import get_settings

    uri = get_settings().tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return [], f"no MLflow registry at {uri}"
    try:
        client = configure_mlflow(uri).MlflowClient()
    except Exception as exc:  # noqa: BLE001 - shown on the page, the rest of it still works
        return [], f"the MLflow registry at {uri} cannot be read ({type(exc).__name__})"
    return [_alias(client, model_name, alias) for alias in aliases], uri


def _alias(client: Any, name: str, alias: str) -> dict[str, Any]:
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - MLflow raises its own types for a missing alias
        return {"alias": alias, "version": None, "note": f"no version of {name} has the alias {alias}"}
    entry: dict[str, Any] = {"alias": alias, "version": str(mv.version), "run_id": mv.run_id, "metrics": {}}
    try:
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    except Exception:  # noqa: BLE001
        entry["note"] = "its training run cannot be read"
        return entry
    chosen = sorted(k for k in metrics if k.startswith("test_")) or sorted(metrics)
    entry["metrics"] = {k: round(float(metrics[k]), 4) for k in chosen[:MAX_METRICS]}
    if alias == "champion" and mv.run_id:
        entry["calibration"] = run_calibration(client, mv.run_id)
    return entry


def run_calibration(client: Any, run_id: str) -> list[dict[str, Any]] | None:
    """The test-period calibration training logged for a run (mean predicted risk, observed hit rate and
    rows per quantile bin); ``None`` when the run has no such artifact."""
    try:
        with tempfile.TemporaryDirectory(prefix="riskprof-cal-") as tmp:
            path = client.download_artifacts(run_id, CALIBRATION_ARTIFACT, tmp)
            cal = json.loads(Path(path).read_text(encoding="utf-8"))["test"]["calibration"]
        return [{"predicted": float(p), "observed": float(o), "count": int(n)}
                for p, o, n in zip(cal["predicted"], cal["observed"], cal["count"], strict=True)]
    except Exception:  # noqa: BLE001 - a run logged without it (or an unreadable artifact): said on the page
        return None


def _rate(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures.get(k) for k in ("inspections", "hits", "rate")}


def outcome_figures(store: Store, weeks: int = RECENT_WEEKS) -> dict[str, Any]:
    """Calibration of the recorded scores against recorded outcomes, and the last ``weeks`` weeks' hit
    rates of model-selected and random-stratum inspections (the monitoring figures, unchanged)."""
    result = monitoring_from_store(store)
    overall = result["overall"]
    cal = overall["calibration"]
    recent = [{"week": w["week"], "model": _rate(w["by_source"]["model"]), "random": _rate(w["by_source"]["random"])}
              for w in result["weeks"] if w["inspections"]][-weeks:]
    return {"inspections": overall["inspections"], "calibration": cal["bins"], "ece": cal["ece"],
            "calibration_items": cal["items"], "enough_for_calibration": cal["items"] >= MIN_CALIBRATION_ITEMS,
            "min_calibration_items": MIN_CALIBRATION_ITEMS, "weeks": recent}
