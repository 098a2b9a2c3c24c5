"""The scoring service: FastAPI app, scoring service, API keys, audit log and outcome store.

Names are imported lazily, so the CLI's ``import serving.store`` or ``serving.settings`` (keys, the
database, the demo) does not pull in FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "create_app": "serving.app",
    "StartupError": "serving.app",
    "InputError": "serving.errors",
    "ModelRejected": "serving.errors",
    "ServiceError": "serving.errors",
    "Principal": "serving.roles",
    "Role": "serving.roles",
    "ScoringService": "serving.service",
    "lane_thresholds": "serving.service",
    "ServingSettings": "serving.settings",
    "get_serving_settings": "serving.settings",
    "AuditWriter": "serving.store",
    "Store": "serving.store",
    "make_engine": "serving.store",
    "outcomes_frame": "serving.store",
}

__all__ = [
    "AuditWriter",
    "InputError",
    "ModelRejected",
    "Principal",
    "Role",
    "ScoringService",
    "ServiceError",
    "ServingSettings",
    "StartupError",
    "Store",
    "create_app",
    "get_serving_settings",
    "lane_thresholds",
    "make_engine",
    "outcomes_frame",
]

if TYPE_CHECKING:
    from serving.app import StartupError, create_app
    from serving.errors import InputError, ModelRejected, ServiceError
    from serving.roles import Principal, Role
    from serving.service import ScoringService, lane_thresholds
    from serving.settings import ServingSettings, get_serving_settings
    from serving.store import AuditWriter, Store, make_engine, outcomes_frame


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'serving' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
