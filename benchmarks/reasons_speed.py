"""Reasons per flagged item: family TreeSHAP tables against LightGBM's ``pred_contrib``, same rows, same run.

    .venv/bin/python benchmarks/reasons_speed.py --work /tmp/bb300      # a batch_throughput.py work folder
    .venv/bin/python benchmarks/reasons_speed.py --trees 300 --leaves 63  # trains that model first

For the red and yellow items of one manifest chunk (what ``riskprof score`` explains by default), the
time per item of ``RiskModel.explain`` (contributions + the plain-language text) with the family
tables (:mod:`scoring.family_shap`, today's path) and with the former path (``pred_contrib`` per
feature, summed by family), one LightGBM thread and two; the tables' one-off build per loaded model;
and one item at a time (the API's single declaration). The goal (issue 16): ≤ 2 ms per flagged item
end to end including the text, with the 300-tree × 63-leaf reference model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from batch_throughput import MODEL_NAME, _env, build_manifest, setup  # noqa: E402


def _old_explain(model, scored, rows):
    """The former path: per-feature pred_contrib summed by family, then the same text."""
    saved = model.__dict__.get("_family_shap_tables")
    model.__dict__["_family_shap_tables"] = False  # the fallback branch of family_contributions
    try:
        return model.explain(scored, rows)
    finally:
        if saved is None:
            model.__dict__.pop("_family_shap_tables", None)
        else:
            model.__dict__["_family_shap_tables"] = saved


def measure(model_uri: str, manifest: Path, chunk_rows: int, singles: int) -> dict:
    import pyarrow.parquet as pq

    from features.contracts import DECLARATION, normalize_table
    from scoring import LaneThresholds
    from scoring.registry import load_risk_model

    model = load_risk_model(model_uri).model
    raw = next(pq.ParquetFile(manifest).iter_batches(batch_size=chunk_rows)).to_pandas()
    frame, _ = normalize_table(raw, DECLARATION)
    model.num_threads = 2
    scored = model.score_batch(frame)
    th = LaneThresholds()
    flagged = np.flatnonzero(scored.risk >= th.yellow)
    res: dict = {"rows": len(frame), "flagged": len(flagged), "trees": model.booster.num_trees(),
                 "features": len(model.feature_names)}
    from scoring.family_shap import build_tables

    res["tables_in_artifact"] = "_family_shap_tables" in model.__dict__  # models logged since 2026-12-02
    fam_names, _, member = model._family_matrix()
    t0 = time.perf_counter()
    build_tables(model.booster, member.argmax(axis=1), len(fam_names))
    res["tables_build_seconds"] = time.perf_counter() - t0
    model.family_contributions(scored.X[:1])  # builds them on the model if its artifact had none
    for threads in (1, 2):
        model.num_threads = threads
        for label, fn in (("tables", model.explain), ("pred_contrib", lambda s, r: _old_explain(model, s, r))):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                fn(scored, flagged)
                best = min(best, time.perf_counter() - t0)
            res[f"{label}_{threads}_threads_ms_per_item"] = 1000 * best / max(len(flagged), 1)
    model.num_threads = 1
    one = flagged[:singles]
    for label, fn in (("tables", model.explain), ("pred_contrib", lambda s, r: _old_explain(model, s, r))):
        times = []
        for i in one:
            t0 = time.perf_counter()
            fn(scored, [i])
            times.append(time.perf_counter() - t0)
        res[f"{label}_single_p50_ms"] = 1000 * float(np.percentile(times, 50))
        res[f"{label}_single_p99_ms"] = 1000 * float(np.percentile(times, 99))
    new, old = model.explain(scored, flagged[:200]), _old_explain(model, scored, flagged[:200])
    res["same_top_family_share"] = float(np.mean([a[0].family == b[0].family for a, b in zip(new, old, strict=True)]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=None, help="a batch_throughput.py work folder (model + manifest)")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--leaves", type=int, default=63)
    ap.add_argument("--declarations", type=int, default=100_000)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--singles", type=int, default=300)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="riskprof-reasons-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update({k: v for k, v in _env(work).items()
                       if k in ("MLFLOW_TRACKING_URI", "RISKPROF_MODELS_DIR", "MLFLOW_DISABLE_TELEMETRY")})
    manifests = sorted(work.glob("manifest-*-after.parquet"))
    if (work / "models" / "mlflow.db").exists() and manifests:
        model_uri, manifest = f"models:/{MODEL_NAME}@challenger", manifests[0]
    else:
        model_uri, source = setup(work, a.declarations, a.trees, a.leaves)
        manifest = work / f"manifest-{a.chunk_rows}-after.parquet"
        build_manifest(Path(source), a.chunk_rows, manifest)
    res = measure(model_uri, manifest, a.chunk_rows, a.singles)
    print(f"{res['trees']} trees, {res['features']} features; {res['flagged']:,} red/yellow items of {res['rows']:,} "
          f"rows; tables built in {res['tables_build_seconds']:.2f} s (once per model: "
          f"{'at logging, in its artifact' if res['tables_in_artifact'] else 'at first use after loading'})",
          file=sys.stderr)
    for threads in (1, 2):
        t, p = res[f"tables_{threads}_threads_ms_per_item"], res[f"pred_contrib_{threads}_threads_ms_per_item"]
        print(f"  explain, {threads} LightGBM thread(s): tables {t:.3f} ms/item, pred_contrib {p:.3f} ms/item "
              f"-> {p / t:.1f}x", file=sys.stderr)
    print(f"  one item at a time: tables p50/p99 {res['tables_single_p50_ms']:.3f}/{res['tables_single_p99_ms']:.3f} "
          f"ms, pred_contrib {res['pred_contrib_single_p50_ms']:.3f}/{res['pred_contrib_single_p99_ms']:.3f} ms",
          file=sys.stderr)
    print(f"  same first reason family as the per-feature sum: {100 * res['same_top_family_share']:.0f} % of items",
          file=sys.stderr)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
