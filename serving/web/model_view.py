"""The model page's registry view: the versions behind the champion and challenger aliases and the
test metrics of their training runs, read from the MLflow registry (nothing is loaded or moved).

A registry that cannot be reached, or a SQLite registry file that does not exist, is reported on the
page instead of being created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ALIASES = ("champion", "challenger")
MAX_METRICS = 24


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
    return entry
