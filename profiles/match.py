"""Vectorised matching of profiles and watch lists against declarations.

Batches: each condition is evaluated once on the distinct values of its field (cached across the
profiles that share it); a profile starts from its most selective condition's rows and filters
those by the others, so its cost follows the rows it can match, not the manifest's length.
Single declarations (the API): each field's value is looked up in the conditions indexed by value
(``RuleSet.by_field``), so the cost does not grow with the number of profiles. Both paths give the
same matches (``tests/test_profiles_match.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from profiles._compile import CompiledList, Rule, RuleSet, compile_rules, rules_of
from profiles._index import FieldIndex, Table, day_number, ranges, stable_order
from profiles.model import Condition, Profile, WatchList

__all__ = ["ProfileMatches", "Rule", "RuleHit", "RuleSet", "compile_rules", "match_profiles", "rules_of"]

_BIG = np.iinfo(np.int64).max
_TABLE_MAX = 1 << 25  # booleans: the largest (condition × value) table built instead of a sort
ROW_PATH_MAX_ROWS = 16  # up to this many declarations, look values up per row (the API's case)
_WORD = re.compile(r"\w+")


class RuleHit(NamedTuple):
    """One reason on one declaration: which rule (and version) matched, and why."""

    kind: str
    id: str
    version: int
    criterion: str


@dataclass(frozen=True)
class ProfileMatches:
    """Every (rule, row) match as flat arrays, grouped by rule and ascending by row within a rule;
    ``hit_reason`` holds a reason where it varies by row (a watch list's entry reason), else None
    (the rule's criterion)."""

    n_rows: int
    rules: tuple[Rule, ...]
    hit_rule: np.ndarray
    hit_row: np.ndarray
    hit_reason: np.ndarray
    ruleset: RuleSet

    @cached_property
    def rows(self) -> tuple[np.ndarray, ...]:
        """Per rule, the rows it matched."""
        bounds = np.searchsorted(self.hit_rule, np.arange(len(self.rules) + 1))
        return tuple(self.hit_row[bounds[r]:bounds[r + 1]] for r in range(len(self.rules)))

    def matrix(self) -> np.ndarray:
        """A boolean (rows × rules) matrix; for tests and small batches."""
        out = np.zeros((self.n_rows, len(self.rules)), dtype=bool)
        out[self.hit_row, self.hit_rule] = True
        return out

    def hits_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Hits grouped by row: (offsets of length rows + 1, hit indices in row order, rules in
        order within a row); for columnar output such as Arrow list columns."""
        order = np.lexsort((self.hit_rule, self.hit_row))
        offsets = np.concatenate(([0], np.cumsum(np.bincount(self.hit_row, minlength=self.n_rows))))
        return offsets, order

    def rule_hits_arrow(self) -> pa.ListArray:
        """Per row, a list of ``{kind, id, version, criterion}`` structs (rules in order) as an Arrow
        column, built without a Python object per hit: what a batch writes to Parquet."""
        offsets, order = self.hits_csr()
        rule = self.hit_rule[order]
        criterion = np.array([r.criterion for r in self.rules], dtype=object)[rule]
        reason = self.hit_reason[order]
        own = np.flatnonzero(reason != None)  # noqa: E711 - elementwise on an object array
        criterion[own] = reason[own]
        structs = pa.StructArray.from_arrays([
            pa.array(np.array([r.kind for r in self.rules], dtype=object)[rule], pa.string()),
            pa.array(np.array([r.id for r in self.rules], dtype=object)[rule], pa.string()),
            pa.array(np.array([r.version for r in self.rules], dtype=np.int64)[rule], pa.int64()),
            pa.array(criterion, pa.string()),
        ], names=list(RuleHit._fields))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int64()), structs)

    def rule_hits(self) -> np.ndarray:
        """Per row, a tuple of :class:`RuleHit` in rule order (``()`` where nothing matched)."""
        out = np.empty(self.n_rows, dtype=object)
        out[:] = [()] * self.n_rows
        if not len(self.hit_row):
            return out
        offsets, order = self.hits_csr()
        shared = np.empty(len(self.rules), dtype=object)
        shared[:] = [RuleHit(r.kind, r.id, r.version, r.criterion) for r in self.rules]
        hits = shared[self.hit_rule]
        for i in np.flatnonzero(self.hit_reason != None):  # noqa: E711 - elementwise on an object array
            r = self.rules[self.hit_rule[i]]
            hits[i] = RuleHit(r.kind, r.id, r.version, self.hit_reason[i])
        hits = hits[order]
        rows = np.flatnonzero(np.diff(offsets))
        out[rows] = [tuple(hits[offsets[i]:offsets[i + 1]]) for i in rows]
        return out


class _Codes:
    """The distinct-value codes that satisfy a condition (-1 = missing), with the row count and a
    per-code look-up made once however many profiles share the condition. A ``between`` on a sorted
    numeric field is one range of codes, kept as ``span`` (start, stop) and expanded only on demand."""

    def __init__(self, f: FieldIndex, codes: np.ndarray | None, entry: np.ndarray | None = None,
                 expiry: np.ndarray | None = None, span: tuple[int, int] | None = None):
        self.field = f
        self.span = span
        self._codes = codes
        self.entry = entry  # watch lists: the entry behind each code (+1 shifted, -1 = none)
        self.expiry = expiry  # watch lists: last day of each entry (index -1: never)
        self.rows = f.span_count(*span) if span is not None else f.row_count(self.codes)
        self._lut: np.ndarray | None = None

    @property
    def codes(self) -> np.ndarray:
        if self._codes is None:
            assert self.span is not None
            self._codes = np.arange(self.span[0], self.span[1], dtype=np.int64)
        return self._codes

    def row_ids(self) -> np.ndarray:
        return self.field.span_rows(*self.span) if self.span is not None else self.field.rows(self.codes)

    def lut(self) -> np.ndarray:
        if self._lut is None:
            self._lut = self.field.lut(self.codes)
        return self._lut


class _FieldCheck:
    """Whether a row's value on one field satisfies conditions of that field, many (condition, row)
    pairs at once: a ``between`` is a range of codes; the others share one flat table of
    (condition, code) → bool, or a sorted array of (condition, code) keys when that table would be large."""

    MAX_TABLE = 1 << 25

    def __init__(self, cids: list[int], sets: list[_Codes]):
        f = sets[cids[0]].field
        self.field = f
        self.width = len(f) + 1
        self.span_lo = np.full(len(sets), -1, dtype=np.int64)
        self.span_hi = np.full(len(sets), -1, dtype=np.int64)
        listed = [c for c in cids if sets[c].span is None]
        for c in cids:
            if sets[c].span is not None:
                self.span_lo[c], self.span_hi[c] = sets[c].span  # type: ignore[misc]
        self.local = np.full(len(sets), -1, dtype=np.int64)
        self.local[listed] = np.arange(len(listed))
        keys = (np.concatenate([self.local[c] * self.width + sets[c].codes + 1 for c in listed]) if listed
                else np.zeros(0, dtype=np.int64))  # ascending: conditions in order, codes ascending and distinct
        self.table: np.ndarray | None = None
        self.keys = keys
        if len(listed) * self.width <= self.MAX_TABLE:
            self.table = np.zeros(len(listed) * self.width, dtype=bool)
            self.table[keys] = True

    def check(self, cond: np.ndarray, rows: np.ndarray) -> np.ndarray:
        code = self.field.codes[rows]
        lo = self.span_lo[cond]
        ok = (code >= lo) & (code < self.span_hi[cond])
        listed = np.flatnonzero(lo < 0)
        if len(listed):
            key = self.local[cond[listed]] * self.width + code[listed] + 1
            if self.table is not None:
                ok[listed] = self.table[key]
            elif len(self.keys):
                pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
                ok[listed] = self.keys[pos] == key
        return ok


class _Columns:
    """The batch path."""

    def __init__(self, table: Table, rs: RuleSet):
        self.table = table
        self.rs = rs
        self._cache: dict[Any, _Codes] = {}
        self._by_id: dict[int, _Codes] = {}
        self._checks: dict[int, _FieldCheck] = {}
        self.days = (int(table.day.min()), int(table.day.max()))

    def codes(self, c: Condition) -> _Codes:
        key = (c.field, c.op, c.values, c.watch_list)
        if key not in self._cache:
            self._cache[key] = self._evaluate(c, self.table.field(c.field))
        return self._cache[key]

    def _evaluate(self, c: Condition, f: FieldIndex) -> _Codes:
        vals = np.array(c.values, dtype=object)
        if c.op == "is_null":
            return _Codes(f, f.null_codes())
        if c.op == "between":
            return _Codes(f, None, span=_between(f, c.values))
        if c.op == "in_watch_list":
            return _watch_codes(self.rs.lists[c.watch_list or ""], f)
        if c.op == "prefix":
            hit = f.prefixed(vals)[0]
        elif c.op == "contains_any" or f.kind == "countries":
            hit = f.tokens(vals)[0]
        else:
            hit = f.exact(vals)[0]
        hit = np.unique(hit)
        return _Codes(f, _complement(f, hit) if c.op == "not_in" else hit)

    def _field_check(self, j: int, field_of: np.ndarray, sets: list[_Codes]) -> _FieldCheck:
        got = self._checks.get(j)
        if got is None:
            got = self._checks[j] = _FieldCheck([c for c in np.flatnonzero(field_of == j).tolist()], sets)
        return got

    def by_id(self, cid: int) -> _Codes:
        got = self._by_id.get(cid)
        if got is None:
            got = self._by_id[cid] = self.codes(self.rs.conditions[cid])
        return got

    def evaluate_all(self) -> None:
        """Every value-list condition evaluated in one look-up per field and kind of look-up (all
        ``in`` values of a field at once, all HS prefixes at once...), then split by condition:
        a thousand profiles cost a few array operations per field, not a few per profile."""
        groups: dict[tuple[str, str], list[int]] = {}
        for cid, c in enumerate(self.rs.conditions):
            kind = self.rs.kinds[c.field]
            if c.op == "contains_any" or (c.op in ("in", "not_in") and kind == "countries"):
                groups.setdefault((c.field, "tokens"), []).append(cid)
            elif c.op == "prefix":
                groups.setdefault((c.field, "prefix"), []).append(cid)
            elif c.op in ("in", "not_in"):
                groups.setdefault((c.field, "exact"), []).append(cid)
        for (name, how), cids in groups.items():
            f = self.table.field(name)
            values = [v for cid in cids for v in self.rs.conditions[cid].values]
            owner = np.repeat(np.array(cids, dtype=np.int64), [len(self.rs.conditions[c].values) for c in cids])
            lookup = f.tokens if how == "tokens" else f.prefixed if how == "prefix" else f.exact
            codes, pos = lookup(np.array(values, dtype=object))
            width = len(f) + 1
            # distinct (condition, code) pairs, by condition and code: a table when that is small
            local = np.searchsorted(np.array(cids, dtype=np.int64), owner[pos])
            keys = local * width + codes + 1
            if len(cids) * width <= _TABLE_MAX:
                seen = np.zeros(len(cids) * width, dtype=bool)
                seen[keys] = True
                pairs = np.flatnonzero(seen)
            else:
                pairs = np.unique(keys)
            cond, code = pairs // width, pairs % width - 1
            bounds = np.searchsorted(cond, np.arange(len(cids) + 1))
            for k, cid in enumerate(cids):
                hit = code[bounds[k]:bounds[k + 1]]
                if self.rs.conditions[cid].op == "not_in":
                    hit = _complement(f, hit)
                self._by_id[cid] = _Codes(f, hit)

    def match_all(self, as_of: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rule, row, watch-list entry or -1) of every match, grouped by rule and by row within a rule.

        No Python loop over rules: each rule starts from the rows of its most selective condition
        (the inverted index of that condition's field, for every rule at once), and the candidate
        (rule, row) pairs are filtered by the rules' other conditions one field at a time (a sorted
        look-up of (condition, code) pairs), then by validity windows and watch-list expiries."""
        rs = self.rs
        empty = np.zeros(0, dtype=np.int64)
        n_cond = len(rs.conditions)
        sets = [self.by_id(c) for c in range(n_cond)]
        cond_rows = np.fromiter((s.rows for s in sets), dtype=np.int64, count=n_cond)
        when = (as_of, as_of) if as_of is not None else self.days
        live = (rs.valid_lo <= when[1]) & (rs.valid_hi >= when[0])
        # the anchor of each rule: its condition with the fewest rows
        pr, pc_ = rs.pair_rule, rs.pair_cond
        order = np.lexsort((cond_rows[pc_], pr))
        first = np.searchsorted(pr[order], np.arange(len(rs.rules)))
        anchor = pc_[order][first]
        rules = np.flatnonzero(live & (cond_rows[anchor] > 0))
        if not len(rules):
            return empty, empty, empty
        anchors = np.unique(anchor[rules])
        # rows of each anchor condition, once however many rules share it (one gather per field)
        seg_start, seg_len = np.zeros(n_cond, np.int64), np.zeros(n_cond, np.int64)
        pieces, offset = [], 0
        by_field: dict[int, list[int]] = {}
        for c in anchors.tolist():
            by_field.setdefault(id(sets[c].field), []).append(c)
        for cids in by_field.values():
            f = sets[cids[0]].field
            spans = [c for c in cids if sets[c].span is not None]
            listed = [c for c in cids if sets[c].span is None]
            for c in spans:
                got = sets[c].row_ids()
                pieces.append(got)
                seg_start[c], seg_len[c] = offset, len(got)
                offset += len(got)
            if listed:
                codes = np.concatenate([sets[c].codes for c in listed])
                got = f.rows_of(codes)  # in the order of the codes: condition by condition
                sizes = np.array([sets[c].rows for c in listed], dtype=np.int64)
                seg_start[listed] = offset + np.cumsum(sizes) - sizes
                seg_len[listed] = sizes
                pieces.append(got)
                offset += len(got)
        anchor_rows = np.concatenate(pieces)
        a = anchor[rules]
        pick = ranges(seg_start[a], seg_len[a])
        hit_rule = np.repeat(rules, seg_len[a])
        hit_row = anchor_rows[pick]
        # the other conditions: each pair expanded to its rule's non-anchor conditions, checked one
        # field at a time (a range test, or a look-up of (condition, code)); a pair with a failure goes
        others = pc_ != anchor[pr]
        o_rule, o_cond = pr[others], pc_[others]  # by rule (pairs are built rule by rule)
        o_off = np.searchsorted(o_rule, np.arange(len(rs.rules) + 1))
        k = o_off[hit_rule + 1] - o_off[hit_rule]
        pair_of = np.repeat(np.arange(len(hit_row)), k)
        cond = o_cond[ranges(o_off[hit_rule], k)]
        fields: dict[int, int] = {}
        field_of = np.array([fields.setdefault(id(s.field), len(fields)) for s in sets], dtype=np.int16)
        fid = field_of[cond]
        by = stable_order(fid, len(fields))
        bounds = np.searchsorted(fid[by], np.arange(len(fields) + 1))
        ok = np.ones(len(cond), dtype=bool)
        for j in np.flatnonzero(np.diff(bounds)).tolist():
            at = by[bounds[j]:bounds[j + 1]]
            c = cond[at]
            ok[at] = self._field_check(j, field_of, sets).check(c, hit_row[pair_of[at]])
        keep = np.bincount(pair_of[~ok], minlength=len(hit_row)) == 0
        hit_rule, hit_row = hit_rule[keep], hit_row[keep]
        day = self.table.day[hit_row] if as_of is None else np.full(len(hit_row), as_of, dtype=np.int64)
        keep = (day >= rs.valid_lo[hit_rule]) & (day <= rs.valid_hi[hit_rule])
        entry = np.full(len(hit_row), -1, dtype=np.int64)
        for c in range(n_cond):  # watch lists (few): an entry that expired before the day is gone
            s = sets[c]
            if s.entry is None or s.expiry is None:
                continue
            uses = np.zeros(len(rs.rules), dtype=bool)
            uses[pr[pc_ == c]] = True
            at = np.flatnonzero(uses[hit_rule])
            if not len(at):
                continue
            e = s.entry[s.field.codes[hit_row[at]] + 1]
            keep[at] &= s.expiry[e] >= day[at]
            entry[at] = e
        hit_rule, hit_row, entry = hit_rule[keep], hit_row[keep], entry[keep]
        order = np.lexsort((hit_row, hit_rule))
        hit_rule, hit_row, entry = hit_rule[order], hit_row[order], entry[order]
        is_list = np.array([r.kind == "watch_list" for r in rs.rules], dtype=bool)
        entry[~is_list[hit_rule]] = -1
        return hit_rule, hit_row, entry


def _complement(f: FieldIndex, hit: np.ndarray) -> np.ndarray:
    """The codes of a ``not_in``: every present value outside ``hit`` (a missing value is not "not
    in" anything: it fails every test but ``is_null``)."""
    keep = ~f.lut(hit)[1:]
    nulls = f.null_codes()
    keep[nulls[nulls >= 0]] = False
    return np.flatnonzero(keep)


def _between(f: FieldIndex, bounds: tuple[Any, ...]) -> tuple[int, int]:
    def num(v: Any) -> float:
        return float(day_number(v)) if isinstance(v, dt.date) else float(v)

    low, high = bounds
    start = 0 if low is None else int(np.searchsorted(f.uniques, num(low), "left"))
    stop = len(f) if high is None else int(np.searchsorted(f.uniques, num(high), "right"))
    return start, max(start, stop)


def _watch_codes(wl: CompiledList, f: FieldIndex) -> _Codes:
    if wl.mode == "tokens":  # a list of countries against "|"-joined lists: any country on it
        codes, pos = f.tokens(wl.keys)
        cand = wl.best[pos]
        order = np.lexsort((cand, -wl.expiry[cand]))
        codes, first = np.unique(codes[order], return_index=True)
        best = cand[order][first]
    else:
        found = wl.find(f.uniques)
        codes = np.flatnonzero(found >= 0)
        best = found[codes]
    entry = np.full(len(f) + 1, -1, dtype=np.int64)
    entry[codes + 1] = best
    return _Codes(f, codes, entry, wl.expiry)


class _Rows:
    """The single-declaration path: values looked up in conditions indexed by value."""

    def __init__(self, table: Table, rs: RuleSet):
        self.rs = rs
        self.values = {name: table.values(name) for name in rs.by_field}
        self.day = table.day

    def satisfied(self, i: int, day: int) -> tuple[np.ndarray, dict[int, int]]:
        sat = np.zeros(len(self.rs.conditions), dtype=bool)
        entries: dict[int, int] = {}
        for name, fc in self.rs.by_field.items():
            v = self.values[name][i]
            if v is None:
                sat[fc.null] = True
                continue
            keys = v.split("|") if fc.kind == "countries" else [v]
            failing: set[int] = set()
            for k in keys:
                sat[fc.exact.get(k, [])] = True
                failing.update(fc.failing.get(k, ()))
            sat[[c for c in fc.not_in if c not in failing]] = True
            if fc.prefix:
                for n in range(2, min(len(v), 10) + 1):
                    sat[fc.prefix.get(v[:n], [])] = True
            if fc.words:
                for w in set(_WORD.findall(v.lower())):
                    sat[fc.words.get(w, [])] = True
            if fc.between_arrays is not None:
                low, high, ids = fc.between_arrays
                sat[ids[(low <= v) & (v <= high)]] = True
            for cid, name_ in fc.watch:
                wl = self.rs.lists[name_]
                e = wl.find_one(v)
                if e >= 0 and wl.expiry[e] >= day:
                    sat[cid] = True
                    entries[cid] = e
        return sat, entries

    def match(self, as_of: int | None) -> tuple[list[int], list[int], list[int]]:
        """(rule, row, watch-list entry or -1) per match."""
        rules: list[int] = []
        rows: list[int] = []
        entries: list[int] = []
        for i in range(len(self.day)):
            day = int(self.day[i]) if as_of is None else as_of
            sat, found = self.satisfied(i, day)
            rs = self.rs
            counts = np.bincount(rs.pair_rule[sat[rs.pair_cond]], minlength=len(rs.rules))
            for r in np.flatnonzero((counts == rs.needed) & (rs.valid_lo <= day) & (day <= rs.valid_hi)).tolist():
                rules.append(r)
                rows.append(i)
                entries.append(found[rs.rule_conditions[r][0]] if rs.rules[r].kind == "watch_list" else -1)
        return rules, rows, entries


def match_profiles(data: pd.DataFrame | Mapping[str, np.ndarray], profiles: Sequence[Profile] | RuleSet,
                   watchlists: Sequence[WatchList] = (), as_of: dt.date | None = None,
                   extra_columns: Mapping[str, str] | Sequence[str] = (),
                   method: Literal["auto", "columns", "rows"] = "auto") -> ProfileMatches:
    """Which declarations each rule matches.

    ``data`` is a validated declaration frame or the canonical column arrays (``features._columns``);
    ``profiles`` validated profiles (with their ``watchlists``), or a :class:`RuleSet` compiled once
    with :func:`compile_rules` (do that when a set of versions is pinned: it saves the preparation
    on every call). Only ``active`` profiles fire, and only on declarations dated within their
    validity window (``valid_from`` ≤ declaration date ≤ ``valid_to``); a watch-list entry stops
    matching after its expiry. ``as_of`` judges validity and expiry at one date for every row
    instead. Draft and retired profiles never fire. ``method`` picks the batch or the per-row path
    (``auto``: per row up to ``ROW_PATH_MAX_ROWS`` declarations); both give the same result.
    """
    rs = profiles if isinstance(profiles, RuleSet) else compile_rules(profiles, watchlists, extra_columns)
    table = Table(data, rs.kinds)
    as_day = day_number(as_of) if as_of is not None else None
    by_rows = method == "rows" or (method == "auto" and table.n <= ROW_PATH_MAX_ROWS)
    if not table.n:
        hit_rule = hit_row = entry = np.zeros(0, np.int64)
    elif by_rows:
        found = _Rows(table, rs).match(as_day)
        hit_rule, hit_row, entry = (np.array(x, dtype=np.int64) for x in found)
        order = np.lexsort((hit_row, hit_rule))
        hit_rule, hit_row, entry = hit_rule[order], hit_row[order], entry[order]
    else:
        columns = _Columns(table, rs)
        columns.evaluate_all()
        hit_rule, hit_row, entry = columns.match_all(as_day)
    reason = np.full(len(hit_row), None, dtype=object)
    for i in np.flatnonzero(entry >= 0):  # a watch list acting alone gives the reason of the entry matched
        rule = rs.rules[hit_rule[i]]
        reason[i] = f"{rule.criterion}: {rs.lists[rule.id].reasons[entry[i]]}"
    return ProfileMatches(table.n, rs.rules, hit_rule, hit_row.astype(np.int64), reason, rs)
