"""Recording a batch output in the audit log (what ``riskprof score`` does after scoring, with a
serving store) against the floor: the same rows inserted by SQLite's own ``executemany`` into the
same (migrated, indexed, append-only) tables of a fresh store.

The output is ``--rows`` items with the columns a batch writes (no reasons, as ``--no-reasons``;
rule hits on ``--hit-share`` of them), made up with a fixed seed.

    .venv/bin/python benchmarks/audit_record_speed.py [--rows 400000] [--hit-share 0.2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_output(path: Path, rows: int, hit_share: float, seed: int = 0) -> None:
    from batch._chunk import RULE_HIT_TYPE

    rng = np.random.default_rng(seed)
    has_hit = rng.random(rows) < hit_share
    n_hits = np.where(has_hit, rng.integers(1, 3, rows), 0)
    offsets = np.concatenate(([0], np.cumsum(n_hits))).astype(np.int32)
    total = int(offsets[-1])
    hits = pa.StructArray.from_arrays(
        [pa.array(["profile"] * total), pa.array([f"P-{i}" for i in rng.integers(0, 1000, total)]),
         pa.array(rng.integers(1, 4, total)), pa.array(["a criterion"] * total)],
        fields=list(RULE_HIT_TYPE.value_type))
    table = pa.table({
        "declaration_id": pa.array([f"N{i:09d}" for i in range(rows)]),
        "risk_score": pa.array(rng.random(rows)),
        "lane": pa.array(np.array(["green", "yellow", "red"])[rng.integers(0, 3, rows)]),
        "selection": pa.array(np.array(["none", "model", "random"])[rng.integers(0, 3, rows)]),
        "selection_probability": pa.array(rng.random(rows)),
        "reasons": pa.nulls(rows, pa.string()),
        "rule_hits": pa.ListArray.from_arrays(pa.array(offsets), hits).cast(RULE_HIT_TYPE),
    })
    pq.write_table(table, path)


def floor_seconds(db: Path, output: Path) -> float:
    """The rows ``record_batch_output`` writes, as plain tuples through ``sqlite3.executemany``."""
    t = pq.read_table(output)
    ids = t.column("declaration_id").to_pylist()
    items = list(zip(["e" * 32] * t.num_rows, range(t.num_rows), ids, t.column("risk_score").to_pylist(),
                     t.column("lane").to_pylist(), t.column("selection").to_pylist(),
                     t.column("selection_probability").to_pylist(), ["null"] * t.num_rows, strict=True))
    hits = t.column("rule_hits").combine_chunks()
    flat = hits.flatten()
    parent = hits.value_parent_indices().to_pylist()
    hit_rows = list(zip(["e" * 32] * len(parent), parent, [ids[i] for i in parent],
                        flat.field("kind").to_pylist(), flat.field("id").to_pylist(),
                        flat.field("version").to_pylist(), strict=True))
    con = sqlite3.connect(db)
    start = time.perf_counter()
    con.execute("INSERT INTO audit_events (uid, created_at, key_name, role, endpoint, model_name, model_version, "
                "n_items, params) VALUES (?, '2026-12-02 00:00:00', 'cli', 'cli', 'batch', 'm', '1', ?, 'null')",
                ("e" * 32, t.num_rows))
    con.executemany("INSERT INTO audit_items (event_uid, item, declaration_id, risk_score, lane, selection, "
                    "selection_probability, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", items)
    con.executemany("INSERT INTO audit_rule_hits (event_uid, item, declaration_id, kind, rule_id, version) "
                    "VALUES (?, ?, ?, ?, ?, ?)", hit_rows)
    con.commit()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--hit-share", type=float, default=0.2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternated; the least time of each kept")
    args = ap.parse_args()
    from serving.batch_audit import record_batch_output
    from serving.store import Store

    with tempfile.TemporaryDirectory(prefix="riskprof-audit-") as tmp:
        root = Path(tmp)
        output = root / "scores.parquet"
        make_output(output, args.rows, args.hit_share)
        record, floor = [], []
        for k in range(args.repeat):
            for label in ("record", "floor"):
                db = root / f"{label}-{k}.db"
                store = Store.from_url(f"sqlite:///{db}")  # migrated: the same tables, indexes, triggers
                if label == "record":
                    start = time.perf_counter()
                    record_batch_output(store, output, "cli", {"name": "m", "version": "1"}, {"rows": args.rows})
                    record.append(time.perf_counter() - start)
                    store.dispose()
                else:
                    store.dispose()
                    floor.append(floor_seconds(db, output))
        best = {"record_batch_output": min(record), "sqlite_executemany": min(floor)}
        print(json.dumps({"rows": args.rows, "hit_share": args.hit_share, "seconds": best,
                          "runs": {"record_batch_output": record, "sqlite_executemany": floor},
                          "ratio": best["record_batch_output"] / best["sqlite_executemany"]}, indent=2))
        print(f"{args.rows:,} items: record_batch_output {best['record_batch_output']:.2f} s, the same rows by "
              f"sqlite3.executemany {best['sqlite_executemany']:.2f} s: ×{best['record_batch_output'] / best['sqlite_executemany']:.2f}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
