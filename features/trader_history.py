"""Trader history: past declarations, inspections, hits and time since the last hit."""

from __future__ import annotations

import numpy as np

from features._asof import AsOfTable, factorized
from features._base import Columns, FeatureFamily, days_since, global_rate, outcome_table, rate
from features.history import History

ROLES = ("importer", "declarant")


class TraderHistoryFeatures(FeatureFamily):
    name = "trader_history"
    label = "trader history"

    def __init__(self, roles: tuple[str, ...] = ROLES):
        self.roles = roles

    def fit(self, history: History, train: Columns) -> TraderHistoryFeatures:
        decl = history.declaration_events()
        out = history.outcome_events()
        self.decls_ = {r: AsOfTable(decl[f"{r}_id"], decl["day"], {"n": np.ones(len(decl["day"]))})
                       for r in self.roles}
        self.hits_ = {r: outcome_table(out[f"{r}_id"], out, last_day_of="hit") for r in self.roles}
        self.global_ = global_rate(history)
        names = []
        for r in self.roles:
            names += [f"{r}_declarations", f"{r}_inspections", f"{r}_hits", f"{r}_hit_rate",
                      f"{r}_days_since_hit"]
        self.feature_names_ = tuple(names)
        self.categorical_ = ()
        return self

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        prior = self.global_.at(day)
        f: dict[str, np.ndarray] = {}
        for r in self.roles:
            ids = factorized(cols[f"{r}_id"])  # read by two tables
            f[f"{r}_declarations"] = self.decls_[r].lookup(ids, day)["n"]
            h = self.hits_[r].lookup(ids, day)
            f[f"{r}_inspections"] = h["insp"]
            f[f"{r}_hits"] = h["hit"]
            f[f"{r}_hit_rate"] = rate(h["hit"], h["insp"], prior)
            f[f"{r}_days_since_hit"] = days_since(h["last_day"], day)
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
                parts.append(f"{r} {who}: {hits} hits in {insp} past inspections (last {since:.0f} days ago)")
            elif feats[f"{r}_declarations"][i] == 0:
                parts.append(f"{r} {who}: no declaration history")
        return "; ".join(parts) if parts else "trader history"
