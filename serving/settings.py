"""Serving configuration from the environment (prefix ``RISKPROF_``).

The API's settings extend :class:`settings.Settings` (paths default to its ``models/`` and ``data/``
folders, so a fresh clone serves with no configuration; ``model_name`` is defined there once) and
:class:`scoring.lanes.LaneSettings`. Nothing here is a secret: API keys live hashed in the store and
are created with ``riskprof keys create``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from scoring.lanes import LaneSettings
from settings import Settings

MiB = 1024 * 1024


class ServingSettings(Settings, LaneSettings):
    """The base settings (paths, ``model_name``), the lane policy (:class:`scoring.lanes.LaneSettings`,
    shared with batch scoring) and what only the API needs."""

    model_config = SettingsConfigDict(env_prefix="RISKPROF_", extra="ignore")

    env: Literal["dev", "prod"] = Field(default="dev", description="prod refuses to start without API keys in the store")
    model_alias: str = Field(default="champion", description="alias loaded at start-up and by /v1/model/reload")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the audit/outcome/key store "
                                                       "(default: SQLite file <models_dir>/serving.db)")
    seizures_path: Path | None = Field(default=None, description="seizure records behind the trend reports "
                                                         "(default: <data_dir>/seizures.parquet)")
    max_items: int = Field(default=10_000, ge=1, description="most declarations in one request")
    max_body_bytes: int = Field(default=32 * MiB, ge=1024, description="largest request body accepted")
    reasons_top_k: int = Field(default=4, ge=3, le=5, description="reasons returned per declaration (3-5)")
    audit_mode: Literal["background", "sync"] = Field(
        default="sync", description="sync: each call is committed to the audit log before it is answered (a 2xx "
                                    "means it is recorded; 503 if the store is down); background: a writer thread "
                                    "batches audit rows (flushed at shutdown, lost on a crash)")
    model_poll_seconds: float = Field(
        default=0.0, ge=0, description="if > 0, check the alias this often and load a new version (with the same "
                                       "smoke test as /v1/model/reload); lets several workers follow the champion")
    key_cache_seconds: float = Field(default=30.0, ge=0, description="how long a key's hash check is cached (its "
                                                                     "revocation is checked on every request)")
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, le=600, description="longest wait for one call to the store (a lock held by another "
                                               "session, a busy SQLite file, no free pooled connection): then 503, "
                                               "nothing decided or recorded")

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.models_path / 'serving.db'}"

    @property
    def resolved_seizures_path(self) -> Path:
        return self.seizures_path if self.seizures_path is not None else self.data_path / "seizures.parquet"


@lru_cache
def get_serving_settings() -> ServingSettings:
    return ServingSettings()
