"""The risk profiles a batch run pins at its start, kept in its checkpoint so a resumed run uses them.

The caller (``riskprof score``) reads the active profile versions and watch lists from the serving
store or a YAML file; batch only sees their definitions (it never imports serving). A profile changed
or retired while a run is down must not change what the resumed run applies, so the checkpoint keeps
either the definitions themselves (a file, which may change) or, when the caller gives a ``reload``
(the serving store, whose versions never change once stored), only the pinned ids and versions: a
resumed run reads those versions back instead of every run copying 100,000 watch-list entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import attrgetter
from typing import Any

from profiles import Profile, RuleSet, WatchEntry, WatchList, compile_rules, describe_pins


@dataclass(frozen=True)
class PinnedRules:
    """Profile versions and watch lists as pinned at a run's start; ``source`` says where from (the
    serving store, a file) and is part of the run's fingerprint, the versions are not."""

    profiles: tuple[Profile, ...]
    watchlists: tuple[WatchList, ...] = ()
    extra_columns: Mapping[str, str] = field(default_factory=dict)
    source: str = "store"
    # the same versions read back from where they came, given ``pins()``: set when the source keeps
    # every version unchanged (the serving store); the checkpoint then records the pins only
    reload: Callable[[Mapping[str, Any]], PinnedRules] | None = field(default=None, compare=False, repr=False)
    # the SHA-256 of the file the set was read from (a file's rules change without a new version number):
    # part of the run's fingerprint, so a file edited between a crash and the resume restarts the run
    sha256: str | None = None

    @classmethod
    def of(cls, profiles: Sequence[Profile], watchlists: Sequence[WatchList] = (),
           extra_columns: Mapping[str, str] | None = None, source: str = "store",
           reload: Callable[[Mapping[str, Any]], PinnedRules] | None = None, sha256: str | None = None) -> PinnedRules:
        return cls(tuple(profiles), tuple(watchlists), dict(extra_columns or {}), source, reload, sha256)

    @cached_property
    def ruleset(self) -> RuleSet:
        return compile_rules(self.profiles, self.watchlists, self.extra_columns)

    @property
    def empty(self) -> bool:
        """No rule can fire (no active profile, no watch list acting on its own): output as without profiles."""
        return not self.ruleset.rules

    @cached_property
    def alerting(self) -> frozenset[tuple[str, str, int]]:
        """(kind, id, version) of the rules that raise an alert."""
        return self.ruleset.alerting

    def pins(self) -> dict[str, Any]:
        """The versions pinned: profile ids and watch-list names with their versions, in order."""
        return {"profiles": describe_pins(self.profiles),
                "watch_lists": [{"name": w.name, "version": w.version} for w in self.watchlists]}

    def describe(self) -> dict[str, Any]:
        """What ``.meta.json`` records: where the set came from, and the versions pinned."""
        return {"source": self.source, **({"sha256": self.sha256} if self.sha256 else {}), **self.pins(),
                "rules": len(self.ruleset.rules)}

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps: the pins when the set can be read back (``reload``), else the full
        definitions as JSON. A watch list's entries are then kept as columns (one list per attribute):
        100,000 entries cost a few list comprehensions and some long JSON arrays instead of a dict
        each (125 ms of CPU to dump and encode, against 50 ms)."""
        head = {"source": self.source, "extra_columns": dict(self.extra_columns),
                **({"sha256": self.sha256} if self.sha256 else {})}
        if self.reload is not None:
            return {**head, "pins": self.pins()}
        return {**head, "profiles": [p.model_dump(mode="json") for p in self.profiles],
                "watch_lists": [_list_state(w) for w in self.watchlists]}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any], given: PinnedRules | None = None) -> PinnedRules:
        """The set a checkpoint pinned; ``given``: the set the resumed run was started with, whose
        ``reload`` reads pinned versions back (``LookupError`` when its source no longer has them)."""
        extra = doc.get("extra_columns") or {}
        if "pins" in doc:
            if given is None or given.reload is None:
                raise LookupError(f"the checkpoint pinned profile versions of {doc['source']}, which this run "
                                  "cannot read back")
            return replace(given.reload(doc["pins"]), extra_columns=dict(extra))
        return cls.of([Profile.model_validate(p) for p in doc["profiles"]],
                      [WatchList.model_validate(_list_doc(w)) for w in doc["watch_lists"]],
                      extra, str(doc["source"]), sha256=doc.get("sha256"))


_ENTRY_COLUMNS = tuple(WatchEntry.model_fields)
_DATE_COLUMNS = frozenset(k for k, f in WatchEntry.model_fields.items() if f.annotation in (dt.date, dt.date | None))


def _entry_column(entries: tuple[WatchEntry, ...], name: str) -> list[Any]:
    """One attribute of every entry, as ``model_dump(mode="json")`` gives it (dates as ISO text)."""
    values = list(map(attrgetter(name), entries))
    if name in _DATE_COLUMNS:
        return [None if v is None else v.isoformat() for v in values]
    return values


def _list_state(w: WatchList) -> dict[str, Any]:
    doc = w.model_dump(mode="json", exclude={"entries"})
    doc["entry_columns"] = {k: _entry_column(w.entries, k) for k in _ENTRY_COLUMNS}
    return doc


def _list_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A watch list's state as its model's JSON (entries as columns, or as objects in an older state)."""
    columns = doc.get("entry_columns")
    if columns is None:
        return dict(doc)
    rest = {k: v for k, v in doc.items() if k != "entry_columns"}
    rest["entries"] = [dict(zip(_ENTRY_COLUMNS, row, strict=True))
                       for row in zip(*(columns[k] for k in _ENTRY_COLUMNS), strict=True)]
    return rest
