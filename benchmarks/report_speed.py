"""Report speed: the full trend report against the bare DuckDB group-by queries, same Parquet, same run.

    .venv/bin/python benchmarks/report_speed.py --rows 5000000

Generates N seizure rows in the SEIZURE contract's canonical columns with numpy, writes one
Parquet file, then runs each phase in a fresh child process so that its peak RSS is its own:

* ``bare``: the twelve GROUP BY queries, written plainly against the Parquet file;
* ``report``: ``reports.write_report(parquet, validate=False)`` (trusted canonical file:
  DuckDB tables + HTML + CSV + JSON);
* ``validated`` (unless ``--skip-validated``): ``reports.write_report(parquet)``, which first
  validates every row through the contract in chunks.

The goal is report ≤ 3 × bare (the contracts, DuckDB and the page may cost at most twice the
queries themselves), with memory independent of the row count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


def generate(rows: int, path: Path, seed: int = 0) -> None:
    """N seizure rows (≈ 2 seizures a case) in canonical form, written as Parquet."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features import contracts as c
    from features.reference import countries

    rng = np.random.default_rng(seed)
    ref = countries()
    codes = ref["alpha2"].to_numpy()
    region_of = dict(zip(ref["alpha2"], ref["region"], strict=True))
    n_cases = max(rows // 2, 1)
    case = np.sort(rng.integers(0, n_cases, rows))
    case_day = rng.integers(0, 730, n_cases)  # case-level attributes: same for all its seizures
    weights = rng.pareto(1.2, len(codes)) + 0.01
    reporter = rng.choice(len(codes), n_cases, p=weights / weights.sum())
    departure = rng.choice(len(codes), n_cases)
    destination = rng.choice(len(codes), n_cases)
    dep_known = rng.random(n_cases) > 0.49
    dst_known = rng.random(n_cases) > 0.10

    def pick(vocab: tuple[str, ...], n: int) -> np.ndarray:
        return rng.integers(0, len(vocab), n)

    def cat(vocab: tuple[str, ...], idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        indices = pa.array(idx.astype(np.int32), mask=None if mask is None else ~mask)
        return pa.DictionaryArray.from_arrays(indices, pa.array(list(vocab)))

    direction, conveyance = pick(c.DIRECTIONS, n_cases), pick(c.CONVEYANCES, n_cases)
    method, location = pick(c.DETECTION_METHODS, n_cases), pick(c.LOCATIONS, n_cases)
    category = pick(c.COMMODITY_CATEGORIES, rows)
    has_type = np.isin(category, [0, 1, 4])  # small arms, light weapons, other weapons
    # the contract lower-cases category values, so a vocabulary entry with capitals cannot pass
    # validation ("pepper / CS spray"); generate only the types a validated file can hold
    weapon_types = tuple(w for w in c.WEAPON_TYPES if w == w.lower())
    weapon = pick(weapon_types, rows)
    code_list = [str(x) for x in codes]
    region_list = [region_of[x] for x in code_list]
    ids = pa.array(case, pa.int64()).cast(pa.string())
    seq = pa.array(np.arange(rows), pa.int64()).cast(pa.string())
    dates = pd.Timestamp("2022-01-01").to_datetime64() + case_day[case].astype("timedelta64[D]")
    table = pa.table({
        "case_id": pc.binary_join_element_wise("C", ids, ""),
        "seizure_id": pc.binary_join_element_wise("S", seq, ""),
        "event_date": pa.array(dates.astype("datetime64[ns]")),
        "reported_date": pa.array(dates.astype("datetime64[ns]")),
        "reporting_country": cat(tuple(code_list), reporter[case]),
        "region": cat(tuple(region_list), reporter[case]),
        "direction": cat(c.DIRECTIONS, direction[case]),
        "departure_country": cat(tuple(code_list), departure[case], dep_known[case]),
        "destination_country": cat(tuple(code_list), destination[case], dst_known[case]),
        "transit_countries": pa.array(np.full(rows, ""), pa.string()),
        "conveyance": cat(c.CONVEYANCES, conveyance[case]),
        "detection_method": cat(c.DETECTION_METHODS, method[case]),
        "detection_location": cat(c.LOCATIONS, location[case]),
        "commodity_category": cat(c.COMMODITY_CATEGORIES, category),
        "weapon_type": cat(weapon_types, weapon, has_type),
        "quantity": pa.array(rng.geometric(0.3, rows).astype(np.float64)),
    })
    # region of the dictionary: region per country code, re-encoded as its own dictionary
    table = table.set_column(table.schema.get_field_index("region"), "region",
                             pc.cast(table["region"], pa.string()).dictionary_encode())
    pq.write_table(table, path, row_group_size=1_000_000)


def bare_queries(path: Path) -> int:
    """The twelve GROUP BYs, plainly; returns the number of result rows."""
    import duckdb

    from features.reference import countries

    con = duckdb.connect()
    con.register("cr", countries()[["alpha2", "region"]])
    src = f"read_parquet('{path}')"
    routes = (f"(SELECT s.case_id, coalesce(d.region, 'UNK') AS dep, coalesce(a.region, 'UNK') AS dst FROM {src} s "
              "LEFT JOIN cr d ON s.departure_country = d.alpha2 LEFT JOIN cr a ON s.destination_country = a.alpha2)")
    y = "year(event_date)"
    cs, sz, qt = "count(DISTINCT case_id)", "count(*)", "sum(quantity)"
    queries = [
        f"SELECT {y} y, {cs}, {sz}, {qt} FROM {src} GROUP BY y",
        f"SELECT region, {y} y, {cs}, {sz}, {qt} FROM {src} GROUP BY ALL",
        f"SELECT reporting_country, {y} y, {cs}, {sz}, {qt} FROM {src} GROUP BY ALL",
        f"SELECT weapon_type, {y} y, {sz}, {qt} FROM {src} WHERE weapon_type IS NOT NULL GROUP BY ALL",
        f"SELECT weapon_type, region, {y} y, {sz} FROM {src} WHERE weapon_type IS NOT NULL "
        "AND commodity_category IN ('small arms', 'light weapons', 'other weapons') GROUP BY ALL",
        f"SELECT detection_method, direction, {y} y, {cs} FROM {src} GROUP BY ALL",
        f"SELECT detection_location, direction, {y} y, {cs} FROM {src} GROUP BY ALL",
        f"SELECT conveyance, commodity_category, {y} y, {sz} FROM {src} GROUP BY ALL",
        f"SELECT {y} y, {sz}, {qt} FROM {src} WHERE commodity_category = 'ammunition' GROUP BY y",
        f"SELECT dep, dst, {cs} FROM {routes} GROUP BY ALL",
        f"SELECT 'departure', dep, {cs} FROM {routes} GROUP BY ALL "
        f"UNION ALL SELECT 'destination', dst, {cs} FROM {routes} GROUP BY ALL",
        f"SELECT {cs} FROM {routes}",
    ]
    return sum(len(con.execute(q).fetchall()) for q in queries)


def run_phase(phase: str, path: Path, out: Path) -> dict:
    start = time.perf_counter()
    if phase == "bare":
        rows = bare_queries(path)
    else:
        import reports

        written = reports.write_report(path, out, years=(2022, 2023), validate=phase == "validated")
        rows = len(written)
    seconds = time.perf_counter() - start
    return {"phase": phase, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_rss_mb()), "outputs": rows}


def peak_rss_mb() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss would include the parent's peak at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(phase: str, path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--phase", phase, "--parquet", str(path), "--out", str(out)],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--skip-validated", action="store_true", help="skip the contract validation pass")
    parser.add_argument("--repeat", type=int, default=1, help="runs of bare and report (best time kept)")
    parser.add_argument("--phase", choices=("bare", "report", "validated"), help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.parquet, args.out)))
        return
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        path = Path(tmp) / "seizures.parquet"
        t0 = time.perf_counter()
        generate(args.rows, path)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB Parquet)")
        results: dict[str, dict] = {}
        for _ in range(args.repeat):
            for phase in ("bare", "report"):
                r = child(phase, path, Path(tmp) / f"out-{phase}")
                if phase not in results or r["seconds"] < results[phase]["seconds"]:
                    results[phase] = r
        if not args.skip_validated:
            results["validated"] = child("validated", path, Path(tmp) / "out-validated")
        for r in results.values():
            print(f"{r['phase']:>10}: {r['seconds']:7.2f} s   peak RSS {r['peak_rss_mb']:6,} MB")
        ratio = results["report"]["seconds"] / results["bare"]["seconds"]
        print(f"report / bare = {ratio:.2f}x (goal <= 3x)")
        if "validated" in results:
            print(f"validated report / bare = {results['validated']['seconds'] / results['bare']['seconds']:.1f}x")


if __name__ == "__main__":
    main()
