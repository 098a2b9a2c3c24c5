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


def test_promoting_the_challenger_over_its_own_refreshed_snapshot_is_nothing_to_promote(monkeypatch) -> None:
    """After refresh-features the champion is v2, the challenger's v1 with newer look-ups; `riskprof promote`
    compared v1 with v2 (the same booster: a tie on every period) and moved champion back to v1, undoing
    the refresh. Now nothing is promoted or recorded unless forced."""
    import training.promotion as promotion

    def no_mlflow() -> Any:
        raise AssertionError("nothing is compared or recorded")

    monkeypatch.setattr(promotion, "configure_mlflow", no_mlflow)
    v1 = _loaded("1", "2023-09-30")
    v2 = _loaded("2", "2023-09-30")
    v2.model.metadata.update(refreshed_from_version="1", trained_version="1", history_cutoff="2023-12-31")
    decision = promotion.promotion_gate("m", v1, v2)
    assert not decision.promoted and decision.basis == "refreshed_snapshot"
    assert "version 1 is already the champion" in decision.message and "refreshed up to 2023-12-31" in decision.message
    forced = promotion.preview_promotion("m", v1, v2, force=True)
    assert forced.promoted and forced.forced and forced.basis == "refreshed_snapshot"
    # a challenger of another training is compared as before
    v3 = _loaded("3", "2023-10-31")
    assert promotion._refreshed_snapshot_of("m", v2, v3, 5.0, False) is None
