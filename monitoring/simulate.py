"""Exploration under drift: replay a synthetic declaration stream week by week and compare selection strategies.

Each week every strategy scores the week's declarations with its current model, inspects up to the
capacity, observes outcomes *only for what it inspected*, and refits on all its outcomes so far. The
synthetic truth (who carries, from the generator's latent risk) is known for every item, so the
simulator can report what no real service can: recall, the recall of a pattern that appeared
mid-stream (:mod:`synthetic._drift`), and whether the IPW estimate of the overall hit rate covers the
true rate. The first ``warmup_weeks`` are inspected at random (the same draws for every strategy),
so every strategy starts from the same first model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring._simmodel import STRATEGIES, encode_stream, exploration_value, fit_model, predict, select
from monitoring.metrics import ipw_rate

SIM_START = pd.Timestamp("2024-01-01")  # a Monday: weeks are Monday to Sunday


@dataclass(frozen=True)
class SimulationConfig:
    weeks: int = 26
    per_week: int = 20_000
    capacity: float = 0.05  # share of each week's declarations inspected
    explore_share: float = 0.1  # of the capacity, for the exploring strategies
    strategies: tuple[str, ...] = STRATEGIES
    drift: tuple[str, ...] = ("route", "heading", "weapon")
    drift_week: int | None = None  # default: half-way
    warmup_weeks: int = 2
    rounds: int = 40
    seed: int = 0
    num_threads: int | None = None  # default: RISKPROF_NUM_THREADS
    discovery_recall: float = 0.3  # the new pattern counts as found from the first week its recall reaches this

    def check(self) -> None:
        problems = []
        if self.weeks < 2 or self.per_week < 100:
            problems.append("weeks must be ≥ 2 and per_week ≥ 100")
        if not 0 < self.capacity < 1:
            problems.append(f"capacity must be a share within (0, 1), got {self.capacity}")
        if not 0 <= self.explore_share <= 1:
            problems.append(f"explore_share must be within 0-1, got {self.explore_share}")
        if not 1 <= self.warmup_weeks < self.weeks:  # named as the command line sets them (--warmup-weeks …)
            problems.append(f"warmup weeks (--warmup-weeks, {self.warmup_weeks}) must be at least 1 and fewer than "
                            f"the weeks replayed (--weeks, {self.weeks})")
        elif self.drift and not self.warmup_weeks <= self.resolved_drift_week < self.weeks:
            problems.append(f"the drift week (--drift-week, {self.resolved_drift_week}) must be from the last "
                            f"warm-up week ({self.warmup_weeks}) to the last week replayed ({self.weeks - 1})")
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown or not self.strategies:
            problems.append(f"strategies must be among {list(STRATEGIES)}, got {list(self.strategies)}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def resolved_drift_week(self) -> int:
        return self.weeks // 2 if self.drift_week is None else self.drift_week


@dataclass(frozen=True)
class Stream:
    declarations: pd.DataFrame
    week: np.ndarray
    carries: np.ndarray  # the synthetic truth: would an inspection find something
    pattern: np.ndarray  # the drift pattern of each row ('' = none)


def build_stream(cfg: SimulationConfig) -> Stream:
    """The generator's declarations re-dated to ``weeks`` weeks of ``per_week`` items, with the drift applied."""
    # build_declarations is the one builder that also returns the latent risk (the truth)
    from synthetic import apply_drift, build_declarations, generate_seizures

    n = cfg.weeks * cfg.per_week
    decl, _, latent = build_declarations(generate_seizures(cfg.seed), n=n, seed=cfg.seed)
    i = np.arange(n)
    week = i // cfg.per_week
    day = (i % cfg.per_week) * 7 // cfg.per_week
    decl = decl.assign(declaration_date=SIM_START + pd.to_timedelta(week * 7 + day, unit="D"))
    start = SIM_START + pd.Timedelta(days=7 * cfg.resolved_drift_week)
    drifted = apply_drift(decl, latent.to_numpy(), start, cfg.drift, seed=cfg.seed)
    carries = np.random.default_rng([cfg.seed, 7]).random(n) < drifted.latent_risk
    return Stream(drifted.declarations, week, carries, drifted.pattern)


def _week_row(strategy: str, w: int, chosen: np.ndarray, prob: np.ndarray, z: np.ndarray,
              pattern: np.ndarray) -> dict[str, Any]:
    hits = int((chosen & z).sum())
    new = pattern != ""
    ipw = ipw_rate(z[chosen], prob[chosen], population=len(z))
    truth = float(z.mean())
    covered = None if ipw["estimate"] is None else bool(ipw["low"] <= truth <= ipw["high"])
    return {"week": w, "strategy": strategy, "inspected": int(chosen.sum()), "hits": hits,
            "hit_rate": hits / max(1, int(chosen.sum())), "carriers": int(z.sum()),
            "recall": hits / max(1, int(z.sum())), "new_pattern_carriers": int((z & new).sum()),
            "new_pattern_found": int((chosen & z & new).sum()),
            "new_pattern_recall": (int((chosen & z & new).sum()) / int((z & new).sum())) if (z & new).any() else None,
            "true_rate": truth, "ipw_estimate": ipw["estimate"], "ipw_low": ipw["low"], "ipw_high": ipw["high"],
            "ipw_error": None if ipw["estimate"] is None else ipw["estimate"] - truth, "ipw_covers_truth": covered}


def run_simulation(cfg: SimulationConfig, stream: Stream | None = None) -> dict[str, Any]:
    """Per strategy and week: hit rate, recall, recall of the new pattern, IPW vs truth, cost of exploring."""
    cfg.check()
    if cfg.num_threads is None:
        from settings import get_settings

        cfg = SimulationConfig(**{**asdict(cfg), "num_threads": get_settings().num_threads})
    stream = stream or build_stream(cfg)
    enc = encode_stream(stream.declarations)
    ids = stream.declarations["declaration_id"].to_numpy(dtype=object)
    z = stream.carries
    warm = np.flatnonzero(stream.week < cfg.warmup_weeks)
    # warm-up: the same random inspections for every strategy
    warm_rng = np.random.default_rng([cfg.seed, 3])
    warm_pick = warm[warm_rng.random(len(warm)) < cfg.capacity]
    labelled = {s: warm_pick.copy() for s in cfg.strategies}
    rows: list[dict[str, Any]] = []
    for w in range(cfg.warmup_weeks, cfg.weeks):
        idx = np.flatnonzero(stream.week == w)
        for k, s in enumerate(cfg.strategies):
            lab = labelled[s]
            model = fit_model(enc.matrix[lab], z[lab], enc.names, cfg.rounds, int(cfg.num_threads or 1), cfg.seed)
            scores = predict(model, enc.matrix[idx], float(z[lab].mean()) if len(lab) else 0.0)
            optimism = exploration_value(enc.codes, idx, lab, z[lab]) if s == "ucb" else None
            chosen, prob = select(s, scores, ids[idx], cfg.capacity, cfg.explore_share,
                                  seed=cfg.seed * 1_000_003 + w * 101 + k, optimism=optimism)
            rows.append(_week_row(s, w, chosen, prob, z[idx], stream.pattern[idx]))
            labelled[s] = np.concatenate([lab, idx[chosen]])
    _add_costs(rows)
    return {"config": {**asdict(cfg), "drift_week": cfg.resolved_drift_week},
            "weeks": rows, "summary": summarise(rows, cfg)}


def _add_costs(rows: list[dict[str, Any]]) -> None:
    """Hits each strategy gave up against pure exploitation in the same week (negative: it found more)."""
    base = {r["week"]: r["hits"] for r in rows if r["strategy"] == "exploit"}
    running: dict[str, int] = {}
    for r in rows:
        cost = base[r["week"]] - r["hits"] if r["week"] in base else None
        r["cost_in_hits"] = cost
        if cost is not None:
            running[r["strategy"]] = running.get(r["strategy"], 0) + cost
            r["cumulative_cost_in_hits"] = running[r["strategy"]]
        else:
            r["cumulative_cost_in_hits"] = None


def summarise(rows: list[dict[str, Any]], cfg: SimulationConfig) -> dict[str, Any]:
    """Per strategy: hits, cost, new-pattern recall after the drift and the week it was found, IPW accuracy."""
    out: dict[str, Any] = {}
    for s in cfg.strategies:
        mine = [r for r in rows if r["strategy"] == s]
        after = [r for r in mine if r["week"] >= cfg.resolved_drift_week] if cfg.drift else []
        found = next((r["week"] for r in after if (r["new_pattern_recall"] or 0) >= cfg.discovery_recall), None)
        carriers = sum(r["new_pattern_carriers"] for r in after)
        est = [r for r in mine if r["ipw_estimate"] is not None]
        out[s] = {
            "hits": sum(r["hits"] for r in mine), "inspected": sum(r["inspected"] for r in mine),
            "hit_rate": sum(r["hits"] for r in mine) / max(1, sum(r["inspected"] for r in mine)),
            "cost_in_hits": mine[-1]["cumulative_cost_in_hits"] if mine else None,
            "new_pattern_recall_after_drift": (sum(r["new_pattern_found"] for r in after) / carriers) if carriers else None,
            "new_pattern_found_week": found,
            "weeks_to_find_new_pattern": None if found is None else found - cfg.resolved_drift_week,
            "ipw_weeks": len(est),
            "ipw_mean_error": float(np.mean([r["ipw_error"] for r in est])) if est else None,
            "ipw_coverage": float(np.mean([r["ipw_covers_truth"] for r in est])) if est else None,
        }
    return out
