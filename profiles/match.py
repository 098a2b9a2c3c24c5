"""Vectorised matching of profiles and watch lists against declarations.

Each condition is evaluated once on the distinct values of its field (cached across profiles that
share it); a profile starts from its most selective condition's rows and filters those by the
others, so its cost follows the rows it can match, not the manifest's length.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from profiles._index import NO_EXPIRY, FieldIndex, Table, day_number
from profiles.model import Action, Condition, Profile, WatchList
from profiles.validate import field_kinds


@dataclass(frozen=True)
class Rule:
    """A profile version, or a watch list acting on its own, as the matcher sees it."""

    kind: Literal["profile", "watch_list"]
    id: str
    version: int
    criterion: str
    action: Action
    conditions: tuple[Condition, ...]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


class RuleHit(NamedTuple):
    """One reason on one declaration: which rule (and version) matched, and why."""

    kind: str
    id: str
    version: int
    criterion: str


@dataclass(frozen=True)
class ProfileMatches:
    """Matches of every rule: ``rows[r]`` are the (ascending) rows rule ``r`` matched;
    ``reasons[r]`` the reason per matched row where it varies (a watch list's entry reason)."""

    n_rows: int
    rules: tuple[Rule, ...]
    rows: tuple[np.ndarray, ...]
    reasons: tuple[np.ndarray | None, ...]

    def matrix(self) -> np.ndarray:
        """A boolean (rows × rules) matrix; for tests and small batches (the API)."""
        out = np.zeros((self.n_rows, len(self.rules)), dtype=bool)
        for r, rows in enumerate(self.rows):
            out[rows, r] = True
        return out

    def rule_hits(self) -> np.ndarray:
        """Per row, a tuple of :class:`RuleHit` in rule order (``()`` where nothing matched)."""
        out = np.empty(self.n_rows, dtype=object)
        out[:] = [()] * self.n_rows
        if not self.rules:
            return out
        row = np.concatenate(self.rows)
        rule = np.repeat(np.arange(len(self.rules)), [len(r) for r in self.rows])
        pos = np.concatenate([np.arange(len(r)) for r in self.rows])
        order = np.lexsort((rule, row))
        bounds = np.flatnonzero(np.diff(row[order])) + 1
        for chunk in np.split(order, bounds) if len(order) else ():
            hits = []
            for k in chunk:
                rl = self.rules[rule[k]]
                why = self.reasons[rule[k]]
                hits.append(RuleHit(rl.kind, rl.id, rl.version, rl.criterion if why is None else why[pos[k]]))
            out[row[chunk[0]]] = tuple(hits)
        return out


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


class _Codes(NamedTuple):
    codes: np.ndarray  # distinct-value codes that satisfy the condition (-1 = missing)
    expiry: np.ndarray | None  # watch lists: last valid day per code (+1 shifted), else None
    entry: np.ndarray | None  # watch lists: the entry behind each code (+1 shifted)


class _Matcher:
    def __init__(self, table: Table, watchlists: Mapping[str, WatchList]):
        self.table = table
        self.watchlists = watchlists
        self._cache: dict[Any, _Codes] = {}

    def codes(self, c: Condition) -> _Codes:
        key = (c.field, c.op, c.values, c.watch_list)
        if key not in self._cache:
            self._cache[key] = self._evaluate(c, self.table.field(c.field))
        return self._cache[key]

    def _evaluate(self, c: Condition, f: FieldIndex) -> _Codes:
        vals = np.array(c.values, dtype=object)
        if c.op == "is_null":
            return _Codes(f.null_codes(), None, None)
        if c.op == "between":
            return _Codes(_between(f, c.values), None, None)
        if c.op == "in_watch_list":
            return self._watch_list(self.watchlists[c.watch_list or ""], f)
        if c.op == "prefix":
            hit = f.prefixed(vals)[0]
        elif c.op == "contains_any" or f.kind == "countries":
            hit = f.tokens(vals)[0]
        else:
            hit = f.exact(vals.astype(f.uniques.dtype) if f.uniques.dtype != object else vals)[0]
        hit = np.unique(hit)
        if c.op == "not_in":  # a missing value is not "not in" anything: it fails every test but is_null
            keep = ~f.lut(hit)[1:]
            keep[f.null_codes()[1:]] = False
            return _Codes(np.flatnonzero(keep), None, None)
        return _Codes(hit, None, None)

    def _watch_list(self, w: WatchList, f: FieldIndex) -> _Codes:
        values = np.array([e.value for e in w.entries], dtype=object)
        if f.kind == "hs":
            codes, pos = f.prefixed(values)
        elif f.kind == "countries":
            codes, pos = f.tokens(values)
        else:
            codes, pos = f.exact(values)
        expiry = np.array([NO_EXPIRY if e.expires is None else day_number(e.expires) for e in w.entries],
                          dtype=np.int64)
        # the entry that lasts longest speaks for a value that several entries match
        order = np.lexsort((pos, -expiry[pos]))
        uniq, first = np.unique(codes[order], return_index=True)
        best = pos[order][first]
        exp = np.full(len(f) + 1, np.iinfo(np.int64).min, dtype=np.int64)
        exp[uniq + 1] = expiry[best]
        entry = np.full(len(f) + 1, -1, dtype=np.int64)
        entry[uniq + 1] = best
        return _Codes(uniq, exp, entry)

    def match(self, rule: Rule, day_lo: int, day_hi: int, as_of: int | None) -> np.ndarray:
        lo = day_number(rule.valid_from) if rule.valid_from else np.iinfo(np.int64).min
        hi = day_number(rule.valid_to) if rule.valid_to else np.iinfo(np.int64).max
        when = (as_of, as_of) if as_of is not None else (day_lo, day_hi)
        if lo > when[1] or hi < when[0]:
            return np.zeros(0, dtype=np.int64)
        sets = [(self.table.field(c.field), self.codes(c)) for c in rule.conditions]
        counts = [f.row_count(s.codes) for f, s in sets]
        first = int(np.argmin(counts))
        if counts[first] == 0:
            return np.zeros(0, dtype=np.int64)
        f0, s0 = sets[first]
        rows = f0.rows(s0.codes)
        for i, (f, s) in enumerate(sets):
            if i != first:
                rows = rows[f.lut(s.codes)[f.codes[rows] + 1]]
        day = self.table.day[rows] if as_of is None else np.full(len(rows), as_of, dtype=np.int64)
        keep = (day >= lo) & (day <= hi)
        for f, s in sets:
            if s.expiry is not None:  # an entry that expired before the declaration's day is gone
                keep &= s.expiry[f.codes[rows] + 1] >= day
        return np.sort(rows[keep])


def _between(f: FieldIndex, bounds: tuple[Any, ...]) -> np.ndarray:
    def num(v: Any) -> float:
        return float(day_number(v)) if isinstance(v, dt.date) else float(v)

    low, high = bounds
    start = 0 if low is None else int(np.searchsorted(f.uniques, num(low), "left"))
    stop = len(f) if high is None else int(np.searchsorted(f.uniques, num(high), "right"))
    return np.arange(start, max(start, stop), dtype=np.int64)


def match_profiles(data: pd.DataFrame | Mapping[str, np.ndarray], profiles: Sequence[Profile],
                   watchlists: Sequence[WatchList] = (), as_of: dt.date | None = None,
                   extra_columns: Mapping[str, str] | Sequence[str] = ()) -> ProfileMatches:
    """Which declarations each rule matches (validated profiles and lists: see ``validate_profiles``).

    ``data`` is a validated declaration frame or the canonical column arrays (``features._columns``).
    Only ``active`` profiles fire, and only on declarations dated within their validity window
    (``valid_from`` ≤ declaration date ≤ ``valid_to``); a watch-list entry stops matching after its
    expiry. ``as_of`` judges validity and expiry at one date for every row instead (e.g. the day a
    manifest is scored). Draft and retired profiles never fire.
    """
    kinds = field_kinds(extra_columns).kinds
    table = Table(data, kinds)
    matcher = _Matcher(table, {w.name: w for w in watchlists})
    rules = tuple(rules_of(profiles, watchlists))
    day_lo = int(table.day.min()) if table.n else 0
    day_hi = int(table.day.max()) if table.n else -1
    as_day = day_number(as_of) if as_of is not None else None
    rows, reasons = [], []
    for rule in rules:
        hit = matcher.match(rule, day_lo, day_hi, as_day) if table.n else np.zeros(0, np.int64)
        rows.append(hit)
        reasons.append(_entry_reasons(rule, matcher, hit, {w.name: w for w in watchlists}))
    return ProfileMatches(table.n, rules, tuple(rows), tuple(reasons))


def _entry_reasons(rule: Rule, matcher: _Matcher, rows: np.ndarray,
                   lists: Mapping[str, WatchList]) -> np.ndarray | None:
    """A watch list acting alone gives the reason of the entry each row matched."""
    if rule.kind != "watch_list":
        return None
    c = rule.conditions[0]
    f, s = matcher.table.field(c.field), matcher.codes(c)
    assert s.entry is not None
    entries = lists[rule.id].entries
    texts = np.array([f"{rule.criterion}: {e.reason}" for e in entries], dtype=object)
    return texts[s.entry[f.codes[rows] + 1]]
