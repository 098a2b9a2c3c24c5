"""The promotion gate's decisions that need no model and no MLflow store (fakes of the loaded models)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def _loaded(version: str, cutoff: str) -> Any:
    metadata = {"label": "hit", "training_period": ["2022-01-01", cutoff], "test_period": ["2023-05-01", cutoff]}
    return SimpleNamespace(version=version, run_id=None, model=SimpleNamespace(metadata=metadata))


def test_promoting_the_champion_again_says_its_cut_off_not_unknown() -> None:
    """`riskprof promote` twice in a row: the second said 'training cut-off: challenger v1 unknown, champion
    v1 unknown' although the version records its cut-off (the first promotion printed it)."""
    from training.promotion import preview_promotion

    v1 = _loaded("1", "2023-09-30")
    decision = preview_promotion("m", v1, v1)
    assert not decision.promoted and "already the champion" in decision.message
    assert decision.challenger_cutoff == decision.champion_cutoff == "2023-09-30"
    assert decision.details()[0] == "training cut-off: challenger v1 2023-09-30, champion v1 2023-09-30"
