"""Contract validation of a manifest: ``normalize_table`` against the pandas version it replaced.

    .venv/bin/python benchmarks/validation_speed.py [--rows 1000000] [--repeat 3] [--profile]

The declarations of the synthetic data set, repeated with fresh sequential ids up to ``--rows``,
validated as batch scoring receives them:

* ``parquet``: read from a Parquet file (dates and numbers typed, text Arrow-backed); the same rows
  in shuffled order (ids unordered: the key check sorts); and with 0.1 % of the rows given a fault
  (blank id, unknown country, bad HS code, negative quantity…), which builds a problem per bad row;
* ``csv``: every cell text, read the way batch reads a CSV (``dtype=str``).

Each variant runs the current implementation and the reference (``_reference_normalize_table``) on
the same frame, best of ``--repeat``; both CPU time (this process, all threads) and wall-clock time
are shown, since the 2-core machine is shared. The outputs of the two are compared in the run.
``--profile`` adds where the time goes per field kind (CPU, current implementation, parquet input).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from features import contracts  # noqa: E402
from features.contracts import DECLARATION, ValidationReport, normalize_table  # noqa: E402

MAX_DATE = pd.Timestamp("2030-01-01")


def manifest(rows: int, work: Path) -> pd.DataFrame:
    """The generated declarations repeated to ``rows`` rows with fresh ids, written and read as Parquet."""
    from synthetic import generate

    paths = generate(work, seed=0, n_declarations=min(rows, 200_000))
    base = pd.read_parquet(paths["declarations"])
    df = pd.concat([base] * -(-rows // len(base)), ignore_index=True).head(rows)
    df["declaration_id"] = pd.Series([f"B{i:09d}" for i in range(rows)], dtype="str")
    path = work / "manifest.parquet"
    df.to_parquet(path, index=False)
    return pd.read_parquet(path)


def with_faults(df: pd.DataFrame, share: float, seed: int = 0) -> pd.DataFrame:
    """``share`` of the rows given one fault each, in a column chosen at random."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    rows = np.flatnonzero(rng.random(len(df)) < share)
    faults: list[tuple[str, object]] = [("declaration_id", None), ("origin_country", "XX"), ("hs_code", "82O600"),
                                        ("quantity", -1.0), ("transit_countries", "CN|ZZ"),
                                        ("goods_description", "x" * 1200), ("declaration_date", pd.NaT)]
    which = rng.integers(0, len(faults), len(rows))
    for k, (column, value) in enumerate(faults):
        out.loc[rows[which == k], column] = value
    return out


def as_csv(df: pd.DataFrame, work: Path) -> pd.DataFrame:
    path = work / "manifest.csv"
    df.to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Best CPU and best wall-clock seconds over ``repeat`` runs, and the last result."""
    cpu, wall, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall, result


def same(a: tuple[pd.DataFrame, ValidationReport], b: tuple[pd.DataFrame, ValidationReport]) -> bool:
    pd.testing.assert_frame_equal(a[0], b[0])
    return a[1].problems == b[1].problems and a[1].unknown_values == b[1].unknown_values


def profile(df: pd.DataFrame, repeat: int) -> None:
    """CPU per field kind of the current implementation (columns parsed one by one, then the key check)."""
    n = len(df)
    check = contracts._Check(ValidationReport("declaration", "bench", rows=n), np.arange(1, n + 1), MAX_DATE,
                             contracts.country_codes())
    by_kind: dict[str, float] = defaultdict(float)
    for spec in DECLARATION.fields:
        cpu, _, _ = best(lambda spec=spec: contracts._parse_column(df[spec.name], spec, check), repeat)
        by_kind[f"{spec.kind} ({spec.name})" if spec.kind in ("id", "date", "hs", "countries") else spec.kind] += cpu
    out, _ = normalize_table(df, DECLARATION, max_date=MAX_DATE)
    by_kind["unique key"], _, _ = best(lambda: contracts._duplicates(out["declaration_id"]), repeat)
    total, _, _ = best(lambda: normalize_table(df, DECLARATION, max_date=MAX_DATE), 2 * repeat)
    by_kind["rest: frame, sort (total - parts, ± noise)"] = max(total - sum(by_kind.values()), 0.0)
    print(f"\nwhere the time goes (CPU, parquet input, {n:,} rows, total {total * 1000:.0f} ms):")
    for kind, cpu in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:44s} {cpu * 1000:7.1f} ms  {cpu / total:6.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parquet = manifest(args.rows, work)
        variants = {
            "parquet": parquet,
            "parquet, shuffled rows": parquet.sample(frac=1.0, random_state=0).reset_index(drop=True),
            "parquet, 0.1 % rows faulty": with_faults(parquet, 0.001),
            "csv (all text)": as_csv(parquet, work),
        }
    n = args.rows
    for warm in (normalize_table, contracts._reference_normalize_table):  # first calls load code lists, regexes
        warm(variants["csv (all text)"].head(1000), DECLARATION, max_date=MAX_DATE)
    print(f"{n:,} declarations, best of {args.repeat}; rows/s by CPU time (wall-clock in brackets)")
    print(f"{'input':28s} {'current':>24s} {'reference (pandas)':>24s} {'ratio':>7s} {'problems':>9s}  same")
    for name, df in variants.items():
        cpu, wall, new = best(lambda df=df: normalize_table(df, DECLARATION, max_date=MAX_DATE), args.repeat)
        ref_cpu, ref_wall, ref = best(lambda df=df: contracts._reference_normalize_table(df, DECLARATION,
                                                                                         max_date=MAX_DATE),
                                      args.repeat)
        ok = same(new, ref)  # type: ignore[arg-type]
        print(f"{name:28s} {n / cpu:11,.0f} ({n / wall:10,.0f}) {n / ref_cpu:11,.0f} ({n / ref_wall:10,.0f}) "
              f"{ref_cpu / cpu:6.2f}x {len(new[1].problems):9,}  {'yes' if ok else 'NO'}")  # type: ignore[index]
        if name == "parquet":
            parquet_line = (f"validation rows/s: {n / cpu:,.0f} (CPU; wall {n / wall:,.0f}), reference "
                            f"{n / ref_cpu:,.0f} -> {ref_cpu / cpu:.2f}x; goal 2,000,000")
    print(parquet_line)
    if args.profile:
        profile(parquet, args.repeat)


if __name__ == "__main__":
    main()
