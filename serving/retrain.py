"""The weekly retraining job from files and the serving store (``riskprof retrain``).

It lives with the serving store because it reads the outcomes officers recorded through the API
(``POST /v1/outcomes``); the retraining itself (:func:`training.retrain.retrain`) knows nothing of
the store. As for a refresh, a store that cannot be read is an error (:class:`StoreReadError`),
never a challenger silently trained without the latest outcomes; ``from_store=False`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serving.refresh import StoreReadError, store_outcomes
from serving.store import redacted_url

__all__ = ["StoreReadError", "retrain_from_files", "retraining_set_from_files"]


def retraining_set_from_files(declarations: Sequence[Path], *, seizures: Path | None = None,
                              outcome_files: Sequence[Path] = (), mapping: Path | None = None,
                              label: str | None = None, from_store: bool = True,
                              database_url: str | None = None) -> tuple[Any, int | None]:
    """The training set of everything known now, and how many outcomes the store gave (None: not read).

    The store is read first, so an unreadable store fails before any file is loaded or model trained.
    """
    from serving.settings import ServingSettings
    from training.retrain import load_retraining_set

    from_api, source = None, None
    if from_store and (label is None or label == "hit"):
        url = database_url or ServingSettings().resolved_database_url
        from_api, source = store_outcomes(url), redacted_url(url)
    ts = load_retraining_set(declarations, seizures=seizures, outcome_files=outcome_files, extra_outcomes=from_api,
                             mapping=mapping, label=label, extra_source=source)
    return ts, None if from_api is None else len(from_api)


def retrain_from_files(declarations: Sequence[Path], model_name: str, *, seizures: Path | None = None,
                       outcome_files: Sequence[Path] = (), mapping: Path | None = None, label: str | None = None,
                       from_store: bool = True, database_url: str | None = None, **retrain_kwargs: Any) -> Any:
    """Build the training set (files and the store's outcomes) and run :func:`training.retrain.retrain`
    on it; returns its ``RetrainResult`` (``data["store_outcomes"]``: outcomes read from the store)."""
    from training.retrain import retrain

    ts, n_store = retraining_set_from_files(declarations, seizures=seizures, outcome_files=outcome_files,
                                            mapping=mapping, label=label, from_store=from_store,
                                            database_url=database_url)
    return retrain(ts, model_name, about_data={"store_outcomes": n_store}, **retrain_kwargs)
