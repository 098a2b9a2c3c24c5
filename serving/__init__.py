"""The scoring service: FastAPI app, scoring service, API keys, audit log and outcome store."""

from serving.app import StartupError, create_app
from serving.errors import InputError, ModelRejected, ServiceError
from serving.roles import Principal, Role
from serving.service import ScoringService
from serving.settings import ServingSettings, get_serving_settings
from serving.store import Store, make_engine, outcomes_frame

__all__ = [
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
    "make_engine",
    "outcomes_frame",
]
