"""Profiles and watch lists as YAML that analysts keep under review in git, and their versions.

``dump_profiles`` → ``load_profiles`` gives the same definitions exactly. Versions are a pure
function over the stored history: a changed profile gets the next version, the old ones stay (the
records that used them keep pointing at them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from features.yamlfile import load_yaml
from profiles.model import Profile, WatchList
from profiles.validate import ProfileError, ProfileProblem, validate_profiles

T = TypeVar("T", Profile, WatchList)
_KEYS = ("profiles", "watch_lists")


def dump_profiles(profiles: Sequence[Profile] = (), watchlists: Sequence[WatchList] = ()) -> str:
    """A YAML document ``{profiles: [...], watch_lists: [...]}`` (fields in definition order)."""
    doc = {"profiles": [p.model_dump(mode="json", exclude_none=True) for p in profiles],
           "watch_lists": [w.model_dump(mode="json", exclude_none=True) for w in watchlists]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def load_profiles(source: str | Path, extra_columns: Mapping[str, str] | Iterable[str] = (),
                  stored_watchlists: Sequence[WatchList] = ()) -> tuple[list[Profile], list[WatchList]]:
    """Profiles and watch lists from a YAML file or text, validated (``ProfileError`` lists every
    problem; nothing is returned unless all are valid)."""
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    name = str(source) if isinstance(source, Path) else "<file>"  # a problem names the file it is in
    try:
        doc = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ProfileError([ProfileProblem(name, f"not valid YAML: {exc}", kind="file")]) from exc
    if not isinstance(doc, dict) or set(doc) - set(_KEYS):
        unknown = sorted(set(doc) - set(_KEYS)) if isinstance(doc, dict) else type(doc).__name__
        raise ProfileError([ProfileProblem(name, f"expected the keys {list(_KEYS)}, got {unknown}", kind="file")])
    profiles, lists = doc.get("profiles") or [], doc.get("watch_lists") or []
    if not isinstance(profiles, list) or not isinstance(lists, list):
        raise ProfileError([ProfileProblem(name, "profiles and watch_lists must be lists", kind="file")])
    return validate_profiles(profiles, lists, extra_columns, stored_watchlists)


def _key(item: Profile | WatchList) -> str:
    return item.id if isinstance(item, Profile) else item.name


def add_versions(stored: Sequence[T], incoming: Sequence[T]) -> tuple[list[T], list[T]]:
    """(every version after the change, the versions added). An incoming definition whose content
    (all but the version) equals its latest stored version adds nothing; a changed one becomes the
    latest version + 1; a new id keeps its own version number (an exported file imported into an
    empty store is the same profiles). Earlier versions are never altered."""
    history = list(stored)
    latest: dict[str, T] = {}
    for item in history:
        if _key(item) not in latest or item.version > latest[_key(item)].version:
            latest[_key(item)] = item
    added: list[T] = []
    for item in incoming:
        last = latest.get(_key(item))
        if last is not None and last.content() == item.content():
            continue
        new = item if last is None else item.model_copy(update={"version": last.version + 1})
        latest[_key(item)] = new
        added.append(new)
    return history + added, added


def latest_versions(history: Sequence[T]) -> list[T]:
    """The newest version of each profile or list, in order of first appearance."""
    latest: dict[str, T] = {}
    for item in history:
        if _key(item) not in latest or item.version > latest[_key(item)].version:
            latest[_key(item)] = item
    return list(latest.values())


def retire(history: Sequence[Profile], profile_id: str) -> tuple[list[Profile], Profile]:
    """A new version of ``profile_id`` with status ``retired`` (KeyError if there is none)."""
    current = {p.id: p for p in latest_versions(history)}
    if profile_id not in current:
        raise KeyError(profile_id)
    new_history, added = add_versions(history, [current[profile_id].model_copy(update={"status": "retired"})])
    return new_history, (added[0] if added else current[profile_id])


def pinned_profiles(history: Sequence[Profile], on: dt.date | None = None) -> list[Profile]:
    """The versions a batch run pins at its start: the latest version of each profile, when that is
    ``active`` (and, given ``on``, not past its ``valid_to``)."""
    return [p for p in latest_versions(history)
            if p.status == "active" and (on is None or p.valid_to is None or p.valid_to >= on)]


def describe_pins(profiles: Sequence[Profile]) -> list[dict[str, Any]]:
    """The pinned set as it goes into a run's ``.meta.json``: ids and versions."""
    return [{"id": p.id, "version": p.version} for p in profiles]
