"""The lane policy: one object, one set of defaults and environment variables for the API and batch."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from scoring import LanePolicy, LaneSettings, LaneThresholds, assign_lanes

LANE_ENV = ("RISKPROF_LANES_BY", "RISKPROF_LANE_RED", "RISKPROF_LANE_YELLOW", "RISKPROF_LANE_RED_SHARE",
            "RISKPROF_LANE_YELLOW_SHARE")


@pytest.fixture(autouse=True)
def _no_lane_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LANE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_documented_ones() -> None:
    policy = LanePolicy()
    assert (policy.by, policy.red, policy.yellow, policy.red_share, policy.yellow_share) == (
        "score", 0.30, 0.10, 0.02, 0.08)
    assert LaneSettings().lanes == policy
    assert policy.fixed == LaneThresholds() and policy.shares is None


def test_validation() -> None:
    with pytest.raises(ValueError, match="red ≥ yellow"):
        LanePolicy(red=0.1, yellow=0.2)
    with pytest.raises(ValueError, match="red ≤ yellow"):
        LanePolicy(by="capacity", red_share=0.2, yellow_share=0.1)
    with pytest.raises(ValueError, match="score or capacity"):
        LanePolicy(by="share")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="red_share must be within 0-1"):
        LanePolicy(by="capacity", red_share=-0.1)
    # only the rule of the chosen mode applies: thresholds are unused by capacity and shares by score
    assert LanePolicy(by="capacity", red=0.1, yellow=0.2).shares == (0.02, 0.08)
    assert LanePolicy(red_share=0.2, yellow_share=0.1).shares is None


def test_thresholds_by_score_ignore_traffic() -> None:
    policy = LanePolicy(red=0.5, yellow=0.2)
    assert policy.thresholds(np.linspace(0, 1, 101)) == LaneThresholds(0.5, 0.2)
    assert policy.thresholds() == LaneThresholds(0.5, 0.2)


def test_thresholds_by_capacity_put_the_shares_of_reference_traffic_in_red_and_yellow() -> None:
    reference = np.random.default_rng(0).random(1000)
    policy = LanePolicy(by="capacity", red_share=0.01, yellow_share=0.05)
    th = policy.thresholds(reference)
    lanes = assign_lanes(reference, th)
    assert (lanes == "red").sum() == 10 and (lanes != "green").sum() == 50
    # no reference traffic to take shares of: the fixed thresholds apply
    assert policy.thresholds(np.array([])) == policy.fixed and policy.thresholds(None) == policy.fixed


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKPROF_LANES_BY", "capacity")
    monkeypatch.setenv("RISKPROF_LANE_RED_SHARE", "0.03")
    monkeypatch.setenv("RISKPROF_LANE_YELLOW_SHARE", "0.2")
    monkeypatch.setenv("RISKPROF_LANE_RED", "0.4")
    assert LaneSettings().lanes == LanePolicy(by="capacity", red=0.4, red_share=0.03, yellow_share=0.2)
    monkeypatch.setenv("RISKPROF_LANE_YELLOW_SHARE", "0.01")
    with pytest.raises(ValidationError, match="red ≤ yellow"):
        LaneSettings()


def test_api_settings_share_the_policy_and_the_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.settings import ServingSettings
    from settings import Settings

    monkeypatch.setenv("RISKPROF_LANES_BY", "capacity")
    monkeypatch.setenv("RISKPROF_MODEL_NAME", "customs-a")
    serving = ServingSettings()
    assert serving.lanes == LaneSettings().lanes and serving.lanes.by == "capacity"
    assert serving.model_name == Settings().model_name == "customs-a"
    assert serving.model_uri == "models:/customs-a@champion"
    assert "model_name" not in ServingSettings.__dict__.get("__annotations__", {})  # defined once, in Settings
