"""Settings from the environment (prefix ``RISKPROF_``), with defaults that work on a fresh clone.

The bottom layer: every package (features, scoring, training, serving, batch, the CLI) may import
it, and it imports none of them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "redacted_url", "settings_problem"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKPROF_", extra="ignore")

    home: Path = Path.cwd()
    models_dir: Path | None = None  # default: <home>/models
    data_dir: Path | None = None  # default: <home>/data
    batch_output_dir: Path | None = None  # default: <home>/out (where `riskprof demo` scores its manifest)
    mlflow_tracking_uri: str | None = None  # MLFLOW_TRACKING_URI wins when set
    model_name: str = "riskprof"  # the registered model: training registers it, the API and batch load it
    num_threads: int = Field(default=2, ge=1)  # LightGBM threads (0 or less: every core, oversubscribed)
    seed: int = 0
    inspection_rate: float = Field(default=0.05, gt=0, le=1)  # the rate promote compares challenger and champion at

    @property
    def models_path(self) -> Path:
        return (self.models_dir or self.home / "models").resolve()

    @property
    def data_path(self) -> Path:
        return (self.data_dir or self.home / "data").resolve()

    @property
    def batch_output_path(self) -> Path:
        """The folder of nightly batch outputs the workbench lists and opens (never outside it)."""
        return (self.batch_output_dir or self.home / "out").resolve()

    @property
    def tracking_uri(self) -> str:
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.models_path / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return (self.models_path / "artifacts").as_uri()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def redacted_url(url: str, unparsable: str = "the configured database URL") -> str:
    """``url`` with its password hidden (``user:***@host``), for messages naming a database URL or an
    MLflow tracking URI; ``unparsable`` when it does not parse as a URL."""
    if "@" not in url:  # no credentials to hide: shown as given (render_as_string escapes ':memory:')
        return url
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return unparsable


class BadSetting(ValueError):
    """A setting that validates as text but cannot be used (an MLflow tracking URI of no known scheme, a
    SQLite file that is no database): its message names the variable, the value and the problem."""


def settings_problem(exc: BaseException) -> str | None:
    """What is wrong with the environment, in one line per setting, when ``exc`` is a settings class's
    validation error (``RISKPROF_LANE_RED='abc': Input should be a valid number …``); else None.

    Every settings class of the project is a pydantic ``BaseSettings`` named ``…Settings`` whose fields
    are read from ``RISKPROF_<FIELD>``: a bad value fails when the class is built, and the command line
    says which variable and why instead of a traceback."""
    from pydantic import ValidationError

    if isinstance(exc, BadSetting):
        return f"bad setting in the environment: {exc}"
    if not isinstance(exc, ValidationError) or not exc.title.endswith("Settings"):
        return None
    lines = []
    for err in exc.errors():
        loc: tuple[Any, ...] = tuple(err.get("loc") or ())
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if loc:
            given = err.get("input")
            value = f"={given!r}" if isinstance(given, str) else ""
            lines.append(f"{_ENV_PREFIX}{str(loc[0]).upper()}{value}: {message}")
        else:  # a rule over several settings
            lines.append(message)
    return "bad setting in the environment: " + "; ".join(lines)


_ENV_PREFIX = "RISKPROF_"
