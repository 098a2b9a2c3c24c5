"""Refreshing a served model's feature snapshot with the outcomes recorded through the API.

``riskprof refresh-features`` is a thin wrapper over :func:`refresh_from_files`. It lives with the
serving store because it reads the outcomes posted to ``/v1/outcomes``; the refresh itself
(:func:`training.lifecycle.refresh_features`) knows nothing of the store.

A store that cannot be read is an error (:class:`StoreReadError`), never a silent "no outcomes": a
refresh that quietly misses the outcomes officers recorded would register a snapshot that looks
current and is not. A store with no outcome table yet (a fresh install) is simply empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from features.history import History

__all__ = ["RefreshResult", "StoreReadError", "history_from_files", "merge_outcomes", "refresh_from_files",
           "refresh_sources", "store_outcomes"]


class StoreReadError(RuntimeError):
    """The serving store's outcomes could not be read (the message names the store and the cause)."""


@dataclass(frozen=True)
class RefreshResult:
    model_uri: str  # the model refreshed
    version: str  # the new registered version
    run_id: str
    outcomes: int  # outcomes in the refreshed history (files and store, one per declaration)
    store_outcomes: int | None  # outcomes read from the serving store; None when it was not read


def store_outcomes(database_url: str | None = None) -> pd.DataFrame:
    """Outcomes recorded through the API, from ``database_url`` (default: the configured serving store).

    Raises :class:`StoreReadError` when the store cannot be opened or read, or holds outcomes that
    break the outcome contract.
    """
    import sqlalchemy as sa

    from features.contracts import ContractError
    from serving.settings import ServingSettings
    from serving.store import StoreURLError, outcomes_frame, redacted_url

    url = database_url or ServingSettings().resolved_database_url
    try:
        return outcomes_frame(url)
    except (sa.exc.SQLAlchemyError, ContractError, OSError, ImportError, StoreURLError) as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreReadError(
            f"cannot read the outcomes recorded through the API from {redacted_url(url)}: {cause}. Repair the "
            f"store or RISKPROF_DATABASE_URL, or refresh without them (--no-store)") from exc


def _empty_outcomes() -> pd.DataFrame:
    return pd.DataFrame({"declaration_id": pd.Series(dtype="string"),
                         "inspected_date": pd.Series(dtype="datetime64[ns]"),
                         "inspected": pd.Series(dtype="boolean"), "hit": pd.Series(dtype="boolean")})


def merge_outcomes(frames: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """One outcome per declaration; a later frame wins (files in the order given, then the store)."""
    kept = [f for f in frames if f is not None and len(f)]
    if not kept:
        return _empty_outcomes()
    return pd.concat(kept, ignore_index=True).drop_duplicates("declaration_id", keep="last")


def history_from_files(declarations: Sequence[Path], *, seizures: Path | None = None,
                       outcome_files: Sequence[Path] = (), mapping: Path | None = None,
                       from_store: bool = True, database_url: str | None = None) -> tuple[History, int | None]:
    """The history a refresh rebuilds from, and how many outcomes came from the store (None: not read).

    Returns ``(History, store count)``. Raises the loaders' errors (``LoadError``, ``MappingError``,
    ``ContractError``) and :class:`StoreReadError`.
    """
    from features.contracts import DECLARATION, OUTCOME, SEIZURE
    from features.history import History
    from features.io import load_table
    from features.mapping import load_mapping
    from training.lifecycle import require_declarations

    m = load_mapping(mapping) if mapping else None
    decl = load_table(list(declarations), DECLARATION, m).frame
    require_declarations(decl)  # before the store is read or a History built from nothing
    seiz = load_table(seizures, SEIZURE).frame if seizures else None
    frames: list[pd.DataFrame | None] = [load_table(p, OUTCOME).frame for p in outcome_files]
    from_api = store_outcomes(database_url) if from_store else None
    frames.append(from_api)
    n_store = None if from_api is None else len(from_api)
    return History(decl, merge_outcomes(frames), seiz), n_store


def refresh_from_files(model_uri: str, declarations: Sequence[Path], *, seizures: Path | None = None,
                       outcome_files: Sequence[Path] = (), mapping: Path | None = None, from_store: bool = True,
                       database_url: str | None = None, alias: str | None = None) -> RefreshResult:
    """Rebuild ``model_uri``'s feature snapshot from these files (and the store's outcomes) and register
    it as a new version; ``alias`` (default: the alias refreshed) then points at it. The version's run
    records what was read (:func:`refresh_sources`), as a training run records its files.

    The store is read before the model is touched, so an unreadable store registers nothing.
    """
    from training.lifecycle import refresh_features

    history, n_store = history_from_files(declarations, seizures=seizures, outcome_files=outcome_files,
                                          mapping=mapping, from_store=from_store, database_url=database_url)
    sources = refresh_sources(declarations, seizures=seizures, outcome_files=outcome_files, mapping=mapping,
                              from_store=from_store, database_url=database_url)
    version, run_id = refresh_features(model_uri, history, alias=alias, sources=sources)
    return RefreshResult(model_uri, version, run_id, len(history.outcomes), n_store)


def refresh_sources(declarations: Sequence[Path], *, seizures: Path | None = None, outcome_files: Sequence[Path] = (),
                    mapping: Path | None = None, from_store: bool = True,
                    database_url: str | None = None) -> dict[str, list[str]]:
    """What a refresh read, in the form a training run records it (``TrainingSet.sources``: resolved paths,
    the store's URL without its password), so that the refreshed version's rows can be read again."""
    from serving.settings import ServingSettings
    from serving.store import redacted_url
    from training.retrain import file_sources

    sources = file_sources(declarations, seizures, outcome_files, mapping)
    if from_store:
        sources["store"] = [redacted_url(database_url or ServingSettings().resolved_database_url)]
    return sources
