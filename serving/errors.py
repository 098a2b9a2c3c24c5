"""Errors of the scoring service, with the HTTP status each maps to (no FastAPI import here).

``serving.handlers`` turns them into JSON bodies; the service raises them without knowing about
HTTP, so batch code can call it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FieldProblem:
    """One bad value of a request: ``item`` is the 0-based index in a list (``None`` for a single body)."""

    field: str
    message: str
    item: int | None = None
    value: Any = None
    has_value: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.item is not None:
            out["item"] = self.item
        out["field"] = self.field
        out["message"] = self.message
        if self.has_value:
            out["value"] = self.value
        return out


class ServiceError(Exception):
    """Base: carries an HTTP status and a JSON-able detail."""

    status_code = 500

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.message, **self.extra}


class InputError(ServiceError):
    """The request breaks its contract; lists every bad field."""

    status_code = 422

    def __init__(self, problems: list[FieldProblem], message: str = "invalid request"):
        super().__init__(message)
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {"detail": [p.as_dict() for p in self.problems]}


class MalformedBody(InputError):
    status_code = 400


class TooManyItems(InputError):
    status_code = 413


class ConflictError(InputError):
    status_code = 409


class NoModelLoaded(ServiceError):
    status_code = 503


class UnknownModel(InputError):
    """A request names a model that is not the one served."""

    status_code = 404


class ModelNotFound(ServiceError):
    """The registry has no version behind the configured name and alias."""

    status_code = 404


class ModelRejected(ServiceError):
    """A candidate model failed to load or to score the smoke sample; the running one stays."""

    status_code = 409


class SourceUnavailable(ServiceError):
    """A data source behind a report is missing or unreadable."""

    status_code = 503

