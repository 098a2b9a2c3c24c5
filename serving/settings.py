"""Serving configuration from the environment (prefix ``RISKPROF_``).

Paths default to the folders of :class:`settings.Settings` (``models/``, ``data/``) so a
fresh clone serves with no configuration. Nothing here is a secret: API keys live hashed in the
store and are created with ``riskprof keys create``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring import LaneThresholds

MiB = 1024 * 1024


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKPROF_", extra="ignore")

    env: Literal["dev", "prod"] = Field(default="dev", description="prod refuses to start without API keys in the store")
    model_name: str = Field(default="riskprof", description="registered model served")
    model_alias: str = Field(default="champion", description="alias loaded at start-up and by /v1/model/reload")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the audit/outcome/key store "
                                                       "(default: SQLite file <models_dir>/serving.db)")
    seizures_path: Path | None = Field(default=None, description="seizure records behind the trend reports "
                                                         "(default: <data_dir>/seizures.parquet)")
    max_items: int = Field(default=10_000, ge=1, description="most declarations in one request")
    max_body_bytes: int = Field(default=32 * MiB, ge=1024, description="largest request body accepted")
    reasons_top_k: int = Field(default=4, ge=3, le=5, description="reasons returned per declaration (3-5)")
    lanes_by: Literal["score", "capacity"] = Field(
        default="score", description="score: fixed score thresholds; capacity: thresholds at the shares of recent traffic")
    lane_red: float = Field(default=0.30, ge=0, le=1, description="red lane from this calibrated score (lanes_by=score)")
    lane_yellow: float = Field(default=0.10, ge=0, le=1, description="yellow lane from this score (lanes_by=score)")
    lane_red_share: float = Field(default=0.02, ge=0, le=1, description="share of recent traffic in red (lanes_by=capacity)")
    lane_yellow_share: float = Field(default=0.08, ge=0, le=1,
                                     description="share of recent traffic in red or yellow (lanes_by=capacity)")
    audit_mode: Literal["background", "sync"] = Field(
        default="background", description="background: a writer thread batches audit rows (flushed at shutdown); "
                                          "sync: each call is written before it is answered")
    model_poll_seconds: float = Field(
        default=0.0, ge=0, description="if > 0, check the alias this often and load a new version (with the same "
                                       "smoke test as /v1/model/reload); lets several workers follow the champion")
    key_cache_seconds: float = Field(default=30.0, ge=0, description="how long a verified key is trusted before re-checking")

    @model_validator(mode="after")
    def _check_lanes(self) -> ServingSettings:
        if self.lanes_by == "score":
            LaneThresholds(red=self.lane_red, yellow=self.lane_yellow)  # raises ValueError: red ≥ yellow ≥ 0
        elif self.lane_red_share > self.lane_yellow_share:
            raise ValueError(f"lane shares must satisfy red ≤ yellow (red is the riskier, smaller group), got "
                             f"lane_red_share={self.lane_red_share}, lane_yellow_share={self.lane_yellow_share}")
        return self

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        from settings import get_settings

        return f"sqlite:///{get_settings().models_path / 'serving.db'}"

    @property
    def resolved_seizures_path(self) -> Path:
        if self.seizures_path is not None:
            return self.seizures_path
        from settings import get_settings

        return get_settings().data_path / "seizures.parquet"


@lru_cache
def get_serving_settings() -> ServingSettings:
    return ServingSettings()
