"""How long the exploration simulator takes, against the stream it replays.

Run: ``.venv/bin/python benchmarks/simulate_speed.py [--weeks 26] [--per-week 20000] [--extrapolate]``

The target is 26 weeks × 20,000 declarations a week with a weekly refit of every strategy in
≤ 10 minutes on a 2-core machine (the defaults). Reported:

* building the stream (generator declarations, re-dating, drift, truth) — the baseline: the
  simulator cannot be faster than the data it replays;
* the simulation itself (per strategy and week: refit, score, select, observe), and the ratio;
* with ``--extrapolate``: two smaller runs (same weeks, ``--per-week`` / 10 and / 4), a straight
  line through their total times, and its value at ``--per-week`` — printed as an *extrapolation*,
  for when the full size may not be run (a shared machine). Both parts grow linearly with the rows:
  generation and scoring per declaration, the refits with the labelled rows (= capacity × rows).
"""

from __future__ import annotations

import argparse
import resource
import time

from monitoring import SimulationConfig, build_stream, run_simulation


def _run(cfg: SimulationConfig) -> tuple[float, float]:
    t0 = time.perf_counter()
    stream = build_stream(cfg)
    t1 = time.perf_counter()
    run_simulation(cfg, stream)
    return t1 - t0, time.perf_counter() - t1


def _config(args: argparse.Namespace, per_week: int) -> SimulationConfig:
    return SimulationConfig(weeks=args.weeks, per_week=per_week, capacity=args.capacity, seed=args.seed,
                            num_threads=args.threads, rounds=args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--per-week", type=int, default=20_000)
    parser.add_argument("--capacity", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads of each refit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extrapolate", action="store_true",
                        help="run at per-week/10 and per-week/4 only, and extrapolate to per-week")
    args = parser.parse_args()
    _run(SimulationConfig(weeks=3, per_week=300, warmup_weeks=1, num_threads=1, rounds=5))  # imports, tables
    print(f"{'run':44s} {'stream s':>9s} {'simulate s':>11s} {'total s':>8s} {'sim/stream':>10s}")
    sizes = [args.per_week // 10, args.per_week // 4] if args.extrapolate else [args.per_week]
    totals = []
    for per_week in sizes:
        t_stream, t_sim = _run(_config(args, per_week))
        totals.append(t_stream + t_sim)
        label = f"{args.weeks} weeks x {per_week:,}/week, {args.threads} thread(s)"
        print(f"{label:44s} {t_stream:9.1f} {t_sim:11.1f} {t_stream + t_sim:8.1f} {t_sim / t_stream:10.2f}")
    if args.extrapolate:
        (n1, n2), (t1, t2) = sizes, totals
        slope = (t2 - t1) / (n2 - n1)
        estimate = t2 + slope * (args.per_week - n2)
        print(f"EXTRAPOLATED (linear through the two runs above, not measured): {args.weeks} weeks x "
              f"{args.per_week:,}/week ≈ {estimate:.0f} s ({estimate / 60:.1f} min; target ≤ 10 min)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS of the whole run: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
