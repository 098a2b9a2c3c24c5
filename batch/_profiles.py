"""The risk profiles a batch run pins at its start, kept in its checkpoint so a resumed run uses them.

The caller (``riskprof score``) reads the active profile versions and watch lists from the serving
store or a YAML file; batch only sees their definitions (it never imports serving). The definitions
themselves go into the checkpoint state, not only their ids: a profile changed or retired while a
run is down must not change what the resumed run applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from profiles import Profile, RuleSet, WatchList, compile_rules, describe_pins


@dataclass(frozen=True)
class PinnedRules:
    """Profile versions and watch lists as pinned at a run's start; ``source`` says where from (the
    serving store, a file) and is part of the run's fingerprint, the versions are not."""

    profiles: tuple[Profile, ...]
    watchlists: tuple[WatchList, ...] = ()
    extra_columns: Mapping[str, str] = field(default_factory=dict)
    source: str = "store"

    @classmethod
    def of(cls, profiles: Sequence[Profile], watchlists: Sequence[WatchList] = (),
           extra_columns: Mapping[str, str] | None = None, source: str = "store") -> PinnedRules:
        return cls(tuple(profiles), tuple(watchlists), dict(extra_columns or {}), source)

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
        return frozenset((r.kind, r.id, r.version) for r in self.ruleset.rules if r.action.alert)

    def describe(self) -> dict[str, Any]:
        """What ``.meta.json`` records: where the set came from, and the versions pinned."""
        return {"source": self.source, "profiles": describe_pins(self.profiles),
                "watch_lists": [{"name": w.name, "version": w.version} for w in self.watchlists],
                "rules": len(self.ruleset.rules)}

    def state(self) -> dict[str, Any]:
        """The full definitions, as JSON, for the checkpoint state."""
        return {"source": self.source, "extra_columns": dict(self.extra_columns),
                "profiles": [p.model_dump(mode="json") for p in self.profiles],
                "watch_lists": [w.model_dump(mode="json") for w in self.watchlists]}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> PinnedRules:
        return cls.of([Profile.model_validate(p) for p in doc["profiles"]],
                      [WatchList.model_validate(w) for w in doc["watch_lists"]],
                      doc.get("extra_columns") or {}, str(doc["source"]))
