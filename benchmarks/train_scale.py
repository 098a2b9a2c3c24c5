"""Training at scale: 1 M synthetic declarations on 2 cores.

Reports, in one run: generation time; feature building rows/s (history look-ups fitted on all
1 M declarations, features for every declaration); LightGBM fit rows/s on the labelled rows;
end-to-end training time and peak RSS. Baseline in the same run: the bare LightGBM fit on the
already-built matrix, so the cost of the feature pipeline is visible as a ratio.

    .venv/bin/python benchmarks/train_scale.py [--declarations 1000000] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from synthetic import generate
from training import DEFAULT_PARAMS, fit_model, load_training_set


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--declarations", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = generate(Path(tmp), seed=0, n_declarations=args.declarations)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        ts = load_training_set([paths["declarations"]], seizures=paths["seizures"], outcomes=paths["outcomes"])
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = fit_model(ts, seed=0, num_threads=args.threads, refit="none")
        t_fit_all = time.perf_counter() - t0
        pipe = result.model.pipeline
        t0 = time.perf_counter()
        X_all = pipe.matrix(pipe.transform_columns(pipe.columns(ts.declarations)))
        t_feat_all = time.perf_counter() - t0
        X = pipe.matrix(pipe.transform_columns(pipe.columns(ts.labelled)))
        y = ts.labelled["y"].to_numpy()
        params = {**DEFAULT_PARAMS, "num_threads": args.threads, "seed": 0}
        rounds = int(result.metrics["best_iteration"])
        t0 = time.perf_counter()
        lgb.train(params, lgb.Dataset(X, label=y, categorical_feature=[pipe.feature_names_.index(c)
                                                                       for c in pipe.categorical_]), rounds)
        t_bare = time.perf_counter() - t0
    n_decl, n_lab = len(ts.declarations), len(ts.labelled)
    print(f"declarations {n_decl:,}  labelled (inspected) {n_lab:,}  features {X.shape[1]}  rounds {rounds}")
    print(f"generate                 {t_gen:8.1f} s")
    print(f"load + validate          {t_load:8.1f} s   {n_decl / t_load:12,.0f} rows/s")
    print(f"features, all decls      {t_feat_all:8.1f} s   {n_decl / t_feat_all:12,.0f} rows/s")
    print(f"features, labelled       {result.timings['features_s']:8.1f} s   "
          f"{result.timings['feature_rows_per_s']:12,.0f} rows/s (incl. fitting look-ups on all history)")
    print(f"LightGBM fit (early stop){result.timings['fit_s']:8.1f} s   {result.timings['fit_rows_per_s']:12,.0f} rows/s")
    print(f"fit_model end to end     {t_fit_all:8.1f} s   (features + fit + calibration + baselines + metrics)")
    print(f"bare lgb.train same rows {t_bare:8.1f} s   ratio end-to-end / bare fit = {t_fit_all / t_bare:.2f}")
    print(f"test precision@5% {result.metrics['precision_at']['5']:.3f}  AUC {result.metrics['auc']:.3f}")
    print(f"feature groups left out on validation: {result.model.metadata['dropped_feature_groups'] or 'none'}")
    print(f"peak RSS {peak_rss_mib():,.0f} MiB")
    _ = np.asarray(X_all).shape


if __name__ == "__main__":
    main()
