"""Trader history: past declarations, inspections, hits and time since the last hit."""

from __future__ import annotations

import numpy as np

from features._asof import AsOfTable
from features._base import Columns, FeatureFamily, OutcomeFeatures, counted, global_rate, outcome_table
from features._columns import keys_of
from features.history import History

ROLES = ("importer", "declarant")
_STATS = ("inspections", "hits", "hit_rate", "days_since_hit")


def _outcomes(role: str) -> OutcomeFeatures:
    return OutcomeFeatures(role, _STATS)


class TraderHistoryFeatures(FeatureFamily):
    name = "trader_history"
    label = "trader history"

    def __init__(self, roles: tuple[str, ...] = ROLES):
        self.roles = roles

    def names_out(self) -> tuple[str, ...]:
        return tuple(n for r in self.roles for n in (f"{r}_declarations", *_outcomes(r).names))

    def _fit(self, history: History, train: Columns) -> None:
        decl = history.declaration_events()
        out = history.outcome_events()
        self.decls_ = {r: AsOfTable(decl[f"{r}_id"], decl["day"], {"n": np.ones(len(decl["day"]))})
                       for r in self.roles}
        self.hits_ = {r: outcome_table(out[f"{r}_id"], out, last_day_of="hit") for r in self.roles}
        self.global_ = global_rate(history)

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        prior = self.global_.at(day)
        f: dict[str, np.ndarray] = {}
        for r in self.roles:
            ids = keys_of(cols, f"{r}_id")  # read by two tables
            f[f"{r}_declarations"] = self.decls_[r].lookup(ids, day)["n"]
            f |= _outcomes(r).compute(self.hits_[r], ids, day, prior)
        return f

    def unseen_values(self, cols: Columns) -> dict[str, np.ndarray]:
        out = {}
        for r in self.roles:
            ids = cols[f"{r}_id"]
            n = self.decls_[r].lookup(ids, np.full(len(ids), 10**6))["n"]
            out[f"{r}_id"] = np.array([v is not None for v in ids], dtype=bool) & (n == 0)
        return out

    def reason(self, cols: Columns, feats, i: int) -> str:
        parts = []
        for r in self.roles:
            hits = int(feats[f"{r}_hits"][i])
            insp = int(feats[f"{r}_inspections"][i])
            who = cols[f"{r}_id"][i] or f"unknown {r}"
            if hits:
                since = feats[f"{r}_days_since_hit"][i]
                parts.append(f"{r} {who}: {counted(hits, 'hit')} in {counted(insp, 'past inspection')} "
                             f"(last {since:.0f} days ago)")
            elif feats[f"{r}_declarations"][i] == 0:
                parts.append(f"{r} {who}: no declaration history")
        return "; ".join(parts) if parts else "trader history"
