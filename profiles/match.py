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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from profiles._compile import CompiledList, LookupGroup, Rule, RuleHit, RuleSet, compile_rules, rules_of
from profiles._index import FieldIndex, Table, day_number, ranges, stable_order
from profiles.model import Profile, WatchList

__all__ = ["ProfileMatches", "Rule", "RuleHit", "RuleSet", "compile_rules", "match_profiles", "rules_of"]

_TABLE_MAX = 1 << 25  # booleans: the largest (condition × value) table built instead of a sort
ROW_PATH_MAX_ROWS = 16  # up to this many declarations, look values up per row (the API's case)
_WORD = re.compile(r"\w+")


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
        order = stable_order(self.hit_row, self.n_rows)  # hits come by rule: a stable sort keeps rules in order
        offsets = np.concatenate(([0], np.cumsum(np.bincount(self.hit_row, minlength=self.n_rows))))
        return offsets, order

    def rule_hits_arrow(self) -> pa.ListArray:
        """Per row, a list of ``{kind, id, version, criterion}`` structs (rules in order) as an Arrow
        column, built without a Python object per hit (each rule's fields taken by Arrow from the
        rule set's own columns): what a batch writes to Parquet."""
        offsets, order = self.hits_csr()
        rule = pa.array(self.hit_rule[order])
        kind, rid, version, criterion = (pc.take(col, rule) for col in self.ruleset.arrow_rules)
        reason = self.hit_reason[order]
        if (reason != None).any():  # noqa: E711 - elementwise on an object array
            criterion = pc.coalesce(pa.array(reason, pa.string()), criterion)  # a watch-list entry's own reason
        structs = pa.StructArray.from_arrays([kind, rid, version, criterion], names=list(RuleHit._fields))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int64()), structs)

    def rule_hits(self) -> np.ndarray:
        """Per row, a tuple of :class:`RuleHit` in rule order (``()`` where nothing matched)."""
        out = np.empty(self.n_rows, dtype=object)
        out[:] = [()] * self.n_rows
        if not len(self.hit_row):
            return out
        offsets, order = self.hits_csr()
        hits = self.ruleset.hit_objects[self.hit_rule]
        for i in np.flatnonzero(self.hit_reason != None):  # noqa: E711 - elementwise on an object array
            r = self.rules[self.hit_rule[i]]
            hits[i] = RuleHit(r.kind, r.id, r.version, self.hit_reason[i])
        hits = hits[order]
        rows = np.flatnonzero(np.diff(offsets))
        out[rows] = [tuple(hits[offsets[i]:offsets[i + 1]]) for i in rows]
        return out


class _Columns:
    """The batch path. Every condition becomes a set of distinct-value codes of its field (a
    ``between`` on a sorted numeric field a range of codes), stored flat: ``codes[start:start + len]``
    per condition, with the rows holding them counted once."""

    def __init__(self, table: Table, rs: RuleSet):
        self.table = table
        self.rs = rs
        self.plan = rs.plan
        self.days = (int(table.day.min()), int(table.day.max()))
        n_cond = len(rs.conditions)
        self.fields = [table.field(name) for name in self.plan.fields]
        self.field_of = self.plan.field_of
        self.span_lo = np.full(n_cond, -1, dtype=np.int64)  # a ``between``: codes span_lo <= code < span_hi
        self.span_hi = np.full(n_cond, -1, dtype=np.int64)
        self.start = np.zeros(n_cond, dtype=np.int64)
        self.size = np.zeros(n_cond, dtype=np.int64)
        self.rows = np.zeros(n_cond, dtype=np.int64)  # rows satisfying each condition
        self.watch: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # watch lists: (entry by code + 1, expiry)
        self._blocks: list[np.ndarray] = []
        self._stored = 0
        self._codes: np.ndarray | None = None

    def _store(self, cids: np.ndarray, local: np.ndarray, codes: np.ndarray) -> None:
        """Codes of conditions ``cids`` given as (index into ``cids``, code) pairs sorted by both."""
        f = self.fields[self.field_of[cids[0]]]
        sizes = np.bincount(local, minlength=len(cids))
        self.start[cids] = self._stored + np.cumsum(sizes) - sizes
        self.size[cids] = sizes
        self.rows[cids] = np.bincount(local, weights=f.counts[codes + 1], minlength=len(cids)).astype(np.int64)
        self._blocks.append(codes.astype(np.int64, copy=False))
        self._stored += len(codes)

    def _store_one(self, cid: int, codes: np.ndarray) -> None:
        self._store(np.array([cid], dtype=np.int64), np.zeros(len(codes), dtype=np.int64), codes)

    @property
    def codes(self) -> np.ndarray:
        if self._codes is None:
            self._codes = np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.int64)
        return self._codes

    def cond_codes(self, cids: np.ndarray) -> np.ndarray:
        """The codes of conditions ``cids``, condition by condition."""
        return self.codes[ranges(self.start[cids], self.size[cids])]

    def evaluate_all(self) -> None:
        """Every condition evaluated: value lists in one look-up per field and kind of look-up (all
        ``in`` values of a field at once, all HS prefixes at once...), ``between`` by one search per
        field; a thousand profiles cost a few array operations per field, not a few per profile."""
        plan = self.plan
        for cid, j in plan.nulls:
            self._store_one(cid, self.fields[j].null_codes())
        for cid, j, name in plan.watch:
            entry, expiry = _watch_entries(self.rs.lists[name], self.fields[j])
            self._store_one(cid, np.flatnonzero(entry[1:] >= 0))
            self.watch[cid] = (entry, expiry)
        for group in plan.groups:
            self._evaluate_group(group)
        for j, cids, low, high in plan.spans:
            f = self.fields[j]
            start = np.searchsorted(f.uniques, low, "left")
            stop = np.maximum(start, np.searchsorted(f.uniques, high, "right"))
            self.span_lo[cids], self.span_hi[cids] = start, stop
            self.rows[cids] = f.span_counts(start, stop)

    def _evaluate_group(self, g: LookupGroup) -> None:
        f = self.fields[g.field]
        lookup = f.tokens if g.how == "tokens" else f.prefixed if g.how == "prefix" else f.exact
        codes, pos = lookup(g.values)
        width = len(f) + 1
        # distinct (condition, code) pairs, by condition and code: a table when that is small
        keys = g.owner[pos] * width + codes + 1
        if len(g.cids) * width <= _TABLE_MAX:
            seen = np.zeros(len(g.cids) * width, dtype=bool)
            seen[keys] = True
            pairs = np.flatnonzero(seen)
        else:
            pairs = np.unique(keys)
        local, code = pairs // width, pairs % width - 1
        if not g.negated.any():
            self._store(g.cids, local, code)
            return
        plain = ~g.negated[local]
        if not g.negated.all():
            self._store(g.cids[~g.negated], np.cumsum(~g.negated)[local[plain]] - 1, code[plain])
        for k in np.flatnonzero(g.negated).tolist():
            self._store_one(int(g.cids[k]), _complement(f, code[local == k]))

    def _checker(self, cids: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``check(cond, rows)``: whether each row satisfies its condition (one of ``cids``), any field:
        a look-up in one flat (condition, code) table (or in the sorted (condition, code) keys when
        that table would be large), a range test for a ``between``."""
        n = self.table.n
        wanted = np.unique(self.field_of[cids])  # the fields' row codes side by side: one gather for any field
        flat = np.concatenate([self.fields[j].keys for j in wanted.tolist()])  # codes + 1, 32-bit
        at = np.zeros(len(self.fields), dtype=np.int64)
        at[wanted] = np.arange(len(wanted)) * n
        offset = at[self.field_of]  # per condition: where its field's codes start in ``flat``
        small = len(flat) < 1 << 31  # then 32-bit positions
        widths = np.array([len(f) + 1 for f in self.fields], dtype=np.int64)
        listed = cids[self.span_lo[cids] < 0]
        width = widths[self.field_of[listed]]
        base = np.zeros(len(self.rs.conditions), dtype=np.int64)
        base[listed] = np.cumsum(width) - width
        keys = np.repeat(base[listed], self.size[listed]) + self.cond_codes(listed) + 1  # ascending
        total = int(width.sum())
        if small and total + int(widths.max(initial=0)) < 1 << 31:
            offset, base = offset.astype(np.int32), base.astype(np.int32)
        table: np.ndarray | None = None
        if total + int(widths.max(initial=0)) <= _TABLE_MAX:
            # room past the end: a ``between``'s key (base 0) lands anywhere and is answered below
            table = np.zeros(total + int(widths.max(initial=0)) + 1, dtype=bool)
            table[keys] = True
        spans = bool((self.span_lo[cids] >= 0).any())

        def check(cond: np.ndarray, rows: np.ndarray) -> np.ndarray:
            code = flat[offset[cond] + rows]  # +1 shifted: 0 = missing
            key = base[cond] + code
            if table is not None:
                ok = table[key]
            elif len(keys):
                ok = keys[np.minimum(np.searchsorted(keys, key), len(keys) - 1)] == key
            else:
                ok = np.zeros(len(key), dtype=bool)
            if spans:
                lo = self.span_lo[cond]
                at = np.flatnonzero(lo >= 0)
                ok[at] = (code[at] > lo[at]) & (code[at] <= self.span_hi[cond[at]])
            return ok

        return check

    def match_all(self, as_of: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rule, row, watch-list entry or -1) of every match, grouped by rule and by row within a rule.

        No Python loop over rules: each rule starts from the rows of its most selective condition
        (the inverted index of that condition's field, for every rule at once); the candidate
        (rule, row) pairs are then filtered by the rules' other conditions, most selective first, one
        condition per pair and round (a table look-up or a range test whatever the field), so a pair
        that fails is not tested again; then by validity windows and watch-list expiries."""
        rs = self.rs
        empty = np.zeros(0, dtype=np.int64)
        cond_rows = self.rows
        when = (as_of, as_of) if as_of is not None else self.days
        live = (rs.valid_lo <= when[1]) & (rs.valid_hi >= when[0])
        # each rule's conditions, fewest rows first: the first is its anchor
        pr, pc_ = rs.pair_rule, rs.pair_cond
        order = np.lexsort((cond_rows[pc_], pr))
        sr, sc = pr[order], pc_[order]
        first = np.searchsorted(sr, np.arange(len(rs.rules)))
        anchor = sc[first]
        rules = np.flatnonzero(live & (cond_rows[anchor] > 0))
        if not len(rules):
            return empty, empty, empty
        anchors = np.unique(anchor[rules])
        # rows of each anchor condition, once however many rules share it (one gather per field)
        seg_start, seg_len = np.zeros(len(cond_rows), np.int64), np.zeros(len(cond_rows), np.int64)
        pieces, offset = [], 0
        fid = self.field_of[anchors]
        for j in np.unique(fid).tolist():
            f = self.fields[j]
            mine = anchors[fid == j]
            for c in mine[self.span_lo[mine] >= 0].tolist():
                got = f.span_rows(int(self.span_lo[c]), int(self.span_hi[c]))
                pieces.append(got)
                seg_start[c], seg_len[c] = offset, len(got)
                offset += len(got)
            listed = mine[self.span_lo[mine] < 0]
            if len(listed):
                got = f.rows_of(self.cond_codes(listed))  # in the order of the codes: condition by condition
                sizes = cond_rows[listed]
                seg_start[listed] = offset + np.cumsum(sizes) - sizes
                seg_len[listed] = sizes
                pieces.append(got)
                offset += len(got)
        # candidates as 32-bit integers: half the memory traffic over the hundreds of thousands of pairs
        anchor_rows = np.concatenate(pieces).astype(np.int32)
        a = anchor[rules]
        hit_rule = np.repeat(rules.astype(np.int32), seg_len[a])
        hit_row = anchor_rows[ranges(seg_start[a], seg_len[a])]
        # the other conditions of each rule, fewest rows first, as a (rule, round) matrix (-1: none)
        rank = np.arange(len(sr)) - first[sr]
        more = rank > 0
        rounds = int(rank.max()) if len(rank) else 0
        then = np.full((len(rs.rules), max(rounds, 1)), -1, dtype=np.int32)
        then[sr[more], rank[more] - 1] = sc[more]
        used = np.unique(then[rules])
        used = used[used >= 0]  # none when every rule with candidates has a single condition
        if not len(used):
            rounds = 0
        if rounds:
            check = self._checker(used)
        for k in range(rounds):
            cond = then[hit_rule, k]
            done = cond < 0  # the rule has no condition left
            if done.all():
                break
            ok = check(np.maximum(cond, 0), hit_row) | done
            hit_rule, hit_row = hit_rule[ok], hit_row[ok]
        day = self.table.day[hit_row] if as_of is None else np.full(len(hit_row), as_of, dtype=np.int64)
        keep = (day >= rs.valid_lo[hit_rule]) & (day <= rs.valid_hi[hit_rule])
        entry = np.full(len(hit_row), -1, dtype=np.int64)
        for c, (entries, expiry) in sorted(self.watch.items()):  # watch lists (few): an entry that expired before the day is gone
            uses = np.zeros(len(rs.rules), dtype=bool)
            uses[pr[pc_ == c]] = True
            at = np.flatnonzero(uses[hit_rule])
            if not len(at):
                continue
            e = entries[self.fields[self.field_of[c]].keys[hit_row[at]]]
            keep[at] &= expiry[e] >= day[at]
            entry[at] = e
        hit_rule, hit_row, entry = hit_rule[keep].astype(np.int64), hit_row[keep].astype(np.int64), entry[keep]
        # by rule, then by row: one radix sort of the combined key (the pairs are distinct)
        order = stable_order(hit_rule * self.table.n + hit_row, len(rs.rules) * self.table.n)
        hit_rule, hit_row, entry = hit_rule[order], hit_row[order], entry[order]
        entry[~self.plan.is_list[hit_rule]] = -1
        return hit_rule, hit_row, entry


def _complement(f: FieldIndex, hit: np.ndarray) -> np.ndarray:
    """The codes of a ``not_in``: every present value outside ``hit`` (a missing value is not "not
    in" anything: it fails every test but ``is_null``)."""
    keep = ~f.lut(hit)[1:]
    nulls = f.null_codes()
    keep[nulls[nulls >= 0]] = False
    return np.flatnonzero(keep)


def _watch_entries(wl: CompiledList, f: FieldIndex) -> tuple[np.ndarray, np.ndarray]:
    """(the entry behind each code, +1 shifted, -1 = none; the entries' last days)."""
    if wl.mode == "tokens":  # a list of countries against "|"-joined lists: any country on it
        codes, pos = f.tokens(wl.keys)
        cand = wl.best[pos]
        order = np.lexsort((cand, -wl.expiry[cand]))
        codes, first = np.unique(codes[order], return_index=True)
        best = cand[order][first]
    else:
        found = wl.find(f.uniques, f.arrow_uniques() if wl.mode == "prefix" else None)
        codes = np.flatnonzero(found >= 0)
        best = found[codes]
    entry = np.full(len(f) + 1, -1, dtype=np.int64)
    entry[codes + 1] = best
    return entry, wl.expiry


class _Rows:
    """The single-declaration path: values looked up in conditions indexed by value."""

    def __init__(self, table: Table, rs: RuleSet):
        self.rs = rs
        self.values = {name: table.values(name) for name in rs.by_field}
        self.day = table.day

    def satisfied(self, i: int, day: int) -> tuple[np.ndarray, dict[int, int]]:
        """Row ``i``'s satisfied conditions: their ids gathered in a list, then set in one assignment
        (a NumPy assignment per look-up cost more than the look-ups)."""
        hit: list[int] = []
        add = hit.extend
        entries: dict[int, int] = {}
        for name, fc in self.rs.by_field.items():
            v = self.values[name][i]
            if v is None:
                add(fc.null)
                continue
            keys = v.split("|") if fc.kind == "countries" else (v,)
            for k in keys:
                add(fc.exact.get(k, ()))
            if fc.not_in:
                failing: set[int] = set()
                for k in keys:
                    failing.update(fc.failing.get(k, ()))
                add(c for c in fc.not_in if c not in failing)
            if fc.prefix:
                get = fc.prefix.get
                for n in range(2, min(len(v), 10) + 1):
                    add(get(v[:n], ()))
            if fc.words:
                get = fc.words.get
                for w in set(_WORD.findall(v.lower())):
                    add(get(w, ()))
            if fc.between_arrays is not None:
                low, high, ids = fc.between_arrays
                add(ids[(low <= v) & (v <= high)].tolist())
            for cid, name_ in fc.watch:
                wl = self.rs.lists[name_]
                e = wl.find_one(v)
                if e >= 0 and wl.expiry[e] >= day:
                    hit.append(cid)
                    entries[cid] = e
        sat = np.zeros(len(self.rs.conditions), dtype=bool)
        sat[hit] = True
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
                   method: Literal["auto", "columns", "rows"] = "auto",
                   scored: Mapping[str, Any] | None = None) -> ProfileMatches:
    """Which declarations each rule matches.

    ``data`` is a validated declaration frame or the canonical column arrays (``features._columns``);
    ``profiles`` validated profiles (with their ``watchlists``), or a :class:`RuleSet` compiled once
    with :func:`compile_rules` (do that when a set of versions is pinned: it saves the preparation
    on every call). Only ``active`` profiles fire, and only on declarations dated within their
    validity window (``valid_from`` ≤ declaration date ≤ ``valid_to``); a watch-list entry stops
    matching after its expiry. ``as_of`` judges validity and expiry at one date for every row
    instead. Draft and retired profiles never fire. ``method`` picks the batch or the per-row path
    (``auto``: per row up to ``ROW_PATH_MAX_ROWS`` declarations); both give the same result.
    ``scored``: the canonical columns the model scored from ``data`` (``ScoreTable.columns``), whose
    key columns the feature pipeline has factorized already: those are not factorized again.
    """
    rs = profiles if isinstance(profiles, RuleSet) else compile_rules(profiles, watchlists, extra_columns)
    table = Table(data, rs.kinds, scored)
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
    at = np.flatnonzero(entry >= 0)  # a watch list acting alone gives the reason of the entry matched
    if len(at):  # each distinct (rule, entry) worded once
        width = int(entry[at].max()) + 1
        distinct, inverse = np.unique(hit_rule[at] * width + entry[at], return_inverse=True)
        rule_of, entry_of = np.divmod(distinct, width)
        texts = np.array([f"{rs.rules[r].criterion}: {rs.lists[rs.rules[r].id].reasons[e]}"
                          for r, e in zip(rule_of.tolist(), entry_of.tolist(), strict=True)], dtype=object)
        reason[at] = texts[inverse.reshape(-1)]
    return ProfileMatches(table.n, rs.rules, hit_rule, hit_row.astype(np.int64), reason, rs)
