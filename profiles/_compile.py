"""Profiles and watch lists compiled once (when a set of versions is pinned), so matching a batch or
a single declaration does no per-entry or per-profile preparation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import filled_index
from profiles._index import NO_EXPIRY, day_number
from profiles.model import Action, Condition, Profile, WatchList
from profiles.validate import field_kinds

_NEVER = np.iinfo(np.int64).min


class RuleHit(NamedTuple):
    """One reason on one declaration: which rule (and version) matched, and why."""

    kind: str
    id: str
    version: int
    criterion: str


@dataclass(frozen=True)
class Rule:
    """A profile version, or a watch list acting on its own, as the matcher sees it."""

    kind: str  # "profile" | "watch_list"
    id: str
    version: int
    criterion: str
    action: Action
    conditions: tuple[Condition, ...]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


_INDEX_MIN = 256  # distinct values from which a list is searched through its pandas Index


class CompiledList:
    """A watch list as distinct values, each with its longest-lasting entry."""

    def __init__(self, w: WatchList, kind: str):
        self.mode = "prefix" if kind == "hs" else "tokens" if kind == "countries" else "exact"
        entries = w.entries
        expiry = np.array([NO_EXPIRY if d is None else day_number(d) for d in map(attrgetter("expires"), entries)],
                          dtype=np.int64)
        self.expiry = np.concatenate((expiry, [_NEVER]))  # index -1: not on the list
        self.reasons = np.array(list(map(attrgetter("reason"), entries)) + [""], dtype=object)
        self._values = np.array(list(map(attrgetter("value"), entries)), dtype=object)
        # per value, the entry that lasts longest speaks for it
        self._order = (np.lexsort((np.arange(len(entries)), -expiry)) if len(entries)
                       else np.zeros(0, np.int64))

    @property
    def keys(self) -> np.ndarray:
        """Each distinct value once (the batch path's form; see :attr:`best`)."""
        return self._distinct[0]

    @property
    def best(self) -> np.ndarray:
        """The entry behind each of :attr:`keys`: the one that lasts longest."""
        return self._distinct[1]

    @cached_property
    def _distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, entry): each distinct value once, with the entry that lasts longest (the first in
        ``_order``), hashed in C rather than through a dict of every entry; every form of the list
        (:attr:`keys`, the Index, the per-row dict, the prefix sets) is made from it."""
        ordered = self._values[self._order]
        codes, uniq = pd.factorize(ordered, use_na_sentinel=False)
        first = np.empty(len(uniq), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(ordered) - 1, -1, -1)  # the lowest position of each value wins
        return np.asarray(uniq, dtype=object), self._order[first]

    @cached_property
    def _index(self) -> tuple[pd.Index, np.ndarray] | None:
        """The distinct values as a pandas Index (its hash table filled before it is kept, so a thread
        never reads it half built) and the entry at each position: a batch's thousands of distinct
        values are looked up in C (16,000 importer ids: ~7 → ~1.5 ms). None unless every value is text."""
        values, entry = self._distinct
        if pd.api.types.infer_dtype(values, skipna=False) != "string":
            return None
        return filled_index(values, dtype=object), entry

    @cached_property
    def lookup(self) -> dict[str, int]:
        """Value → its entry, for the single-declaration path (built on first use)."""
        values, entry = self._distinct
        return dict(zip(values.tolist(), entry.tolist(), strict=True))

    @cached_property
    def lengths(self) -> tuple[int, ...]:
        return tuple(sorted(set(map(len, self._distinct[0].tolist()))))

    def find(self, values: np.ndarray, arrow: pa.Array | None = None) -> np.ndarray:
        """The entry behind each value (-1 where none); prefixes for HS lists. Exact values are looked
        up in a dict; prefixes are hashed by Arrow, one value set per prefix length (``arrow``: the
        values as Arrow strings, when the caller has them)."""
        out = np.full(len(values), -1, dtype=np.int64)
        if not len(self._values) or not len(values):
            return out
        if self.mode != "prefix":
            if len(values) >= _INDEX_MIN and self._index is not None:  # a batch's distinct values
                index, entries = self._index
                pos = index.get_indexer(np.asarray(values, dtype=object))  # type: ignore[arg-type]
                return np.where(pos >= 0, entries[np.maximum(pos, 0)], -1)
            get = self.lookup.get
            return np.fromiter((get(v, -1) for v in np.asarray(values, dtype=object).tolist()), dtype=np.int64,
                               count=len(values))
        arr = arrow if arrow is not None else pa.array(np.asarray(values).astype(str), pa.string())
        for length, (keys, best) in self._by_length.items():
            found = pc.index_in(pc.utf8_slice_codeunits(arr, 0, length), value_set=keys)
            hit = np.flatnonzero(pc.is_valid(found).to_numpy(zero_copy_only=False))
            cand = np.full(len(values), -1, dtype=np.int64)
            cand[hit] = best[pc.take(found, pa.array(hit)).to_numpy().astype(np.int64)]
            better = self.expiry[cand] > self.expiry[out]
            out = np.where(better, cand, out)
        return out

    @cached_property
    def _by_length(self) -> dict[int, tuple[pa.Array, np.ndarray]]:
        """Per key length (ascending), the keys of that length as an Arrow value set and their entries."""
        values, entry = self._distinct
        size = np.fromiter(map(len, values.tolist()), dtype=np.int64, count=len(values))
        out = {}
        for length in self.lengths:
            at = np.flatnonzero(size == length)
            out[length] = (pa.array(values[at], pa.string()), entry[at])
        return out

    def find_one(self, value: str) -> int:
        """``find`` for one value (the single-declaration path), with dict look-ups."""
        if self.mode == "exact":
            return self.lookup.get(value, -1)
        if self.mode == "tokens":
            found = [self.lookup.get(t, -1) for t in value.split("|")]
        else:
            found = [self.lookup.get(value[:n], -1) for n in self.lengths if n <= len(value)]
        return max(found, key=lambda e: self.expiry[e], default=-1)


@dataclass
class FieldConditions:
    """The conditions on one field, indexed by value for the single-declaration path."""

    kind: str
    exact: dict[Any, list[int]] = field(default_factory=dict)  # in
    failing: dict[Any, list[int]] = field(default_factory=dict)  # values that make a not_in fail
    not_in: list[int] = field(default_factory=list)
    prefix: dict[str, list[int]] = field(default_factory=dict)
    words: dict[str, list[int]] = field(default_factory=dict)
    between: list[tuple[float, float, int]] = field(default_factory=list)
    between_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # low, high, id: set by freeze
    null: list[int] = field(default_factory=list)
    watch: list[tuple[int, str]] = field(default_factory=list)

    def add(self, c: Condition, cid: int) -> None:
        if c.op == "in":
            for v in c.values:
                self.exact.setdefault(v, []).append(cid)
        elif c.op == "not_in":
            self.not_in.append(cid)
            for v in c.values:
                self.failing.setdefault(v, []).append(cid)
        elif c.op == "prefix":
            for v in c.values:
                self.prefix.setdefault(v, []).append(cid)
        elif c.op == "contains_any":
            for v in c.values:
                self.words.setdefault(v, []).append(cid)
        elif c.op == "between":
            low, high = (None if v is None else float(day_number(v)) if isinstance(v, dt.date) else float(v)
                         for v in c.values)
            self.between.append((-np.inf if low is None else low, np.inf if high is None else high, cid))
        elif c.op == "is_null":
            self.null.append(cid)
        else:
            self.watch.append((cid, c.watch_list or ""))

    def freeze(self) -> FieldConditions:
        if self.between:
            low, high, ids = zip(*self.between, strict=True)
            self.between_arrays = (np.array(low), np.array(high), np.array(ids, dtype=np.int64))
        return self


@dataclass(frozen=True)
class LookupGroup:
    """The value-list conditions of one field answered by one look-up (all ``in`` values of the
    field at once, all its HS prefixes at once...)."""

    field: int  # index into ``BatchPlan.fields``
    how: str  # "exact" | "prefix" | "tokens"
    cids: np.ndarray
    values: np.ndarray  # every value of every condition, condition by condition (objects)
    owner: np.ndarray  # the position in ``cids`` of each value's condition
    negated: np.ndarray  # per condition: a ``not_in``


@dataclass(frozen=True)
class BatchPlan:
    """How the batch path evaluates a rule set's conditions, worked out once per set, not per chunk."""

    fields: tuple[str, ...]
    field_of: np.ndarray  # per condition, its field (index into ``fields``)
    groups: tuple[LookupGroup, ...]
    spans: tuple[tuple[int, np.ndarray, np.ndarray, np.ndarray], ...]  # between: (field, cids, low, high)
    nulls: tuple[tuple[int, int], ...]  # is_null: (cid, field)
    watch: tuple[tuple[int, int, str], ...]  # in_watch_list: (cid, field, list name)
    is_list: np.ndarray  # per rule: a watch list acting on its own


def batch_plan(conditions: Sequence[Condition], kinds: Mapping[str, str], rules: Sequence[Rule]) -> BatchPlan:
    fields: dict[str, int] = {}
    field_of = np.array([fields.setdefault(c.field, len(fields)) for c in conditions], dtype=np.int64)
    groups: dict[tuple[int, str], list[int]] = {}
    spans: dict[int, list[int]] = {}
    nulls, watch = [], []
    for cid, c in enumerate(conditions):
        j = int(field_of[cid])
        if c.op == "contains_any" or (c.op in ("in", "not_in") and kinds[c.field] == "countries"):
            groups.setdefault((j, "tokens"), []).append(cid)
        elif c.op == "prefix":
            groups.setdefault((j, "prefix"), []).append(cid)
        elif c.op in ("in", "not_in"):
            groups.setdefault((j, "exact"), []).append(cid)
        elif c.op == "between":
            spans.setdefault(j, []).append(cid)
        elif c.op == "is_null":
            nulls.append((cid, j))
        else:
            watch.append((cid, j, c.watch_list or ""))
    looks = []
    for (j, how), cids in groups.items():
        values = np.empty(sum(len(conditions[c].values) for c in cids), dtype=object)
        values[:] = [v for c in cids for v in conditions[c].values]
        looks.append(LookupGroup(j, how, np.array(cids, dtype=np.int64), values,
                                 np.repeat(np.arange(len(cids), dtype=np.int64), [len(conditions[c].values) for c in cids]),
                                 np.array([conditions[c].op == "not_in" for c in cids], dtype=bool)))
    bounds = {j: np.array([_bounds(conditions[c].values) for c in cids], dtype=np.float64).reshape(-1, 2)
              for j, cids in spans.items()}
    return BatchPlan(tuple(fields), field_of, tuple(looks),
                     tuple((j, np.array(cids, dtype=np.int64), bounds[j][:, 0], bounds[j][:, 1])
                           for j, cids in spans.items()),
                     tuple(nulls), tuple(watch), np.array([r.kind == "watch_list" for r in rules], dtype=bool))


def _bounds(values: tuple[Any, ...]) -> tuple[float, float]:
    """A ``between``'s ends as numbers (dates as day numbers); an open end is infinite."""
    low, high = (None if v is None else float(day_number(v)) if isinstance(v, dt.date) else float(v) for v in values)
    return (-np.inf if low is None else low, np.inf if high is None else high)


@dataclass(frozen=True)
class RuleSet:
    """Active rules, their distinct conditions and compiled watch lists: build once with
    :func:`compile_rules`, match many batches."""

    rules: tuple[Rule, ...]
    conditions: tuple[Condition, ...]  # distinct across rules
    rule_conditions: tuple[tuple[int, ...], ...]  # per rule, its distinct condition ids
    lists: Mapping[str, CompiledList]
    list_texts: Mapping[str, str]  # acting lists: the reason prefix
    kinds: Mapping[str, str]
    by_field: Mapping[str, FieldConditions]
    # rule × condition pairs and validity windows (days), for counting satisfied conditions per rule
    pair_rule: np.ndarray
    pair_cond: np.ndarray
    needed: np.ndarray
    valid_lo: np.ndarray
    valid_hi: np.ndarray
    # per rule: lane severity (0 none, 1 yellow, 2 red), select, alert
    lane_of: np.ndarray
    select_of: np.ndarray
    alert_of: np.ndarray

    @cached_property
    def arrow_rules(self) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """Kind, id, version and criterion of every rule as Arrow columns (a batch's ``rule_hits``)."""
        return (pa.array([r.kind for r in self.rules], pa.string()), pa.array([r.id for r in self.rules], pa.string()),
                pa.array([r.version for r in self.rules], pa.int64()),
                pa.array([r.criterion for r in self.rules], pa.string()))

    @cached_property
    def hit_objects(self) -> np.ndarray:
        """Per rule, its ``RuleHit(kind, id, version, criterion)`` as an object array, built once per set:
        every match of the rule shares it (the API's single declaration would otherwise build one per
        rule, a thousand objects, on every call)."""
        out = np.empty(len(self.rules), dtype=object)
        out[:] = [RuleHit(r.kind, r.id, r.version, r.criterion) for r in self.rules]
        return out

    @cached_property
    def alerting(self) -> frozenset[tuple[str, str, int]]:
        """(kind, id, version) of the rules that raise an alert."""
        return frozenset((r.kind, r.id, r.version) for r in self.rules if r.action.alert)

    @cached_property
    def plan(self) -> BatchPlan:
        """The batch path's grouping of the conditions (built on first use)."""
        return batch_plan(self.conditions, self.kinds, self.rules)


def rules_of(profiles: Sequence[Profile], watchlists: Sequence[WatchList] = ()) -> list[Rule]:
    """The rules that can fire: ``active`` profiles, and watch lists that carry their own action."""
    rules = [Rule("profile", p.id, p.version, p.criterion, p.action, p.conditions, p.valid_from, p.valid_to)
             for p in profiles if p.status == "active"]
    for w in watchlists:
        if w.action is not None:
            reason = w.description or f"on watch list '{w.name}'"
            rules.append(Rule("watch_list", w.name, w.version, reason, w.action,
                              (Condition(field=w.field, op="in_watch_list", watch_list=w.name),)))
    return rules


def compile_rules(profiles: Sequence[Profile], watchlists: Sequence[WatchList] = (),
                  extra_columns: Mapping[str, str] | Sequence[str] = ()) -> RuleSet:
    """Validated profiles and watch lists (``validate_profiles``) ready to match."""
    kinds = field_kinds(extra_columns).kinds
    rules = tuple(rules_of(profiles, watchlists))
    ids: dict[Any, int] = {}
    conditions: list[Condition] = []
    per_rule = []
    by_field: dict[str, FieldConditions] = {}
    for rule in rules:
        mine = []
        for c in rule.conditions:
            key = (c.field, c.op, c.values, c.watch_list)
            if key not in ids:
                ids[key] = len(conditions)
                conditions.append(c)
                by_field.setdefault(c.field, FieldConditions(kinds[c.field])).add(c, ids[key])
            mine.append(ids[key])
        per_rule.append(tuple(dict.fromkeys(mine)))
    used = {c.watch_list for c in conditions if c.watch_list}
    lists = {w.name: CompiledList(w, kinds[w.field]) for w in watchlists if w.name in used}
    texts = {r.id: r.criterion for r in rules if r.kind == "watch_list"}
    pairs = [(r, c) for r, conds in enumerate(per_rule) for c in conds]
    return RuleSet(rules, tuple(conditions), tuple(per_rule), lists, texts, kinds,
                   {k: v.freeze() for k, v in by_field.items()},
                   np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64),
                   np.array([len(c) for c in per_rule], dtype=np.int64),
                   np.array([validity(r)[0] for r in rules], dtype=np.int64),
                   np.array([validity(r)[1] for r in rules], dtype=np.int64),
                   np.array([("yellow", "red").index(r.action.lane) + 1 if r.action.lane else 0 for r in rules],
                            dtype=np.int8),
                   np.array([r.action.select for r in rules], dtype=bool),
                   np.array([r.action.alert for r in rules], dtype=bool))


def validity(rule: Rule) -> tuple[int, int]:
    """The days a rule may fire on (inclusive); open ends are the extreme int64 values."""
    return (day_number(rule.valid_from) if rule.valid_from else _NEVER,
            day_number(rule.valid_to) if rule.valid_to else NO_EXPIRY)
