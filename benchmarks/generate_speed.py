"""How long generating the embedded default takes, against two baselines.

Run: ``.venv/bin/python benchmarks/generate_speed.py [--declarations N]``

* ``generate()`` at the default size (seizures + 200,000 declarations + outcomes, written as Parquet);
* baseline 1: ``generate()`` with 20,000 declarations (fixed costs: seizures, linking);
* baseline 2: writing the same three frames with ``DataFrame.to_parquet`` alone (I/O floor).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from synthetic import generate


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "warmup", seed=args.seed, n_declarations=2_000)  # imports, reference tables
        t_full, paths = _timed(lambda: generate(root / "full", seed=args.seed, n_declarations=args.declarations))
        t_small, _ = _timed(lambda: generate(root / "small", seed=args.seed, n_declarations=20_000))
        frames = {k: pd.read_parquet(p) for k, p in paths.items()}  # type: ignore[union-attr]
        (root / "io").mkdir()
        t_io, _ = _timed(lambda: [f.to_parquet(root / "io" / f"{k}.parquet", index=False)
                                  for k, f in frames.items()])
    rows = sum(len(f) for f in frames.values())
    print(f"rows written: {rows:,} (seizures {len(frames['seizures']):,}, declarations "
          f"{len(frames['declarations']):,}, outcomes {len(frames['outcomes']):,})")
    print(f"{'run':42s} {'seconds':>8s} {'rows/s':>12s} {'ratio':>7s}")
    print(f"{'generate() default size':42s} {t_full:8.2f} {rows / t_full:12,.0f} {1.0:7.2f}")
    print(f"{'baseline: generate() 20,000 declarations':42s} {t_small:8.2f} {'':>12s} {t_full / t_small:7.2f}")
    print(f"{'baseline: to_parquet of the same frames':42s} {t_io:8.2f} {rows / t_io:12,.0f} {t_full / t_io:7.2f}")


if __name__ == "__main__":
    main()
