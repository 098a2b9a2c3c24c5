"""Model quality on data nobody here wrote: the public Korean declarations (../shared).

Time split as the project is judged: train on 2020 (df_syn_train_eng.csv), evaluate on 2021-Q1
(df_syn_valid_eng.csv) through the model's own feature snapshot (no 2021 labels known, as for the
withheld quarter). Beside it, in the same run, the plain baseline the issue quotes: LightGBM on
label-encoded columns and a few value features. Prints precision at 1/2/5/10 % and AUC.

    .venv/bin/python benchmarks/kr_quality.py [--shared ../shared] [--labels fraud,critical_fraud]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.registry import LoadedModel
from training.data import load_training_set
from training.lifecycle import evaluate_model
from training.metrics import ranking_metrics
from training.train import fit_model

REPO = Path(__file__).resolve().parents[1]
RAW_LABELS = {"fraud": ("Fraud", 1), "critical_fraud": ("Critical Fraud", 2)}


def plain_baseline(train_csv: Path, test_csv: Path, label: str, threads: int) -> dict:
    tr, te = pd.read_csv(train_csv), pd.read_csv(test_csv)
    both = pd.concat([tr, te], ignore_index=True)
    cats = ["Office ID", "Process Type", "Import Type", "Import Use", "Payment Type", "Mode of Transport",
            "Declarant ID", "Importer ID", "Seller ID", "Courier ID", "HS6 Code", "Country of Departure",
            "Country of Origin", "Tax Type", "Country of Origin Indicator"]
    X = pd.DataFrame({c: both[c].astype(str).astype("category").cat.codes for c in cats})
    for c in ("Tax Rate", "Net Mass", "Item Price"):
        X[c] = both[c]
    X["value_per_kg"] = np.log1p(both["Item Price"]) - np.log1p(both["Net Mass"])
    col, val = RAW_LABELS[label]
    y = (both[col] == val).to_numpy()
    n = len(tr)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": threads, "seed": 0},
                        lgb.Dataset(X.iloc[:n], y[:n]), 300)
    return ranking_metrics(y[n:], booster.predict(X.iloc[n:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--labels", default="fraud,critical_fraud")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--outcome-delay", type=int, default=45, help="the second riskprof run's outcome delay")
    ap.add_argument("--delays", default=None,
                    help="comma-separated outcome delays to train riskprof with (default: 0 and --outcome-delay)")
    args = ap.parse_args()
    data = Path(args.shared) / "data" / "kr-customs-declarations"
    train_csv, test_csv = data / "df_syn_train_eng.csv", data / "df_syn_valid_eng.csv"
    mapping = REPO / "examples" / "kr-customs" / "mapping.yaml"
    delays = [int(v) for v in args.delays.split(",")] if args.delays else [0, args.outcome_delay]
    rows = []
    for label in args.labels.split(","):
        t0 = time.perf_counter()
        base = plain_baseline(train_csv, test_csv, label, args.threads)
        t_base = time.perf_counter() - t0
        held_out = load_training_set([test_csv], mapping=mapping, label=label)
        runs = [("plain LightGBM (label-encoded)", base, t_base)]
        for delay in delays:
            ts = load_training_set([train_csv], mapping=mapping, label=label)
            ts.outcome_delay_days = delay
            t0 = time.perf_counter()
            result = fit_model(ts, seed=0, num_threads=args.threads)
            print(f"{label} --outcome-delay {delay}: feature groups left out on validation: "
                  f"{result.model.metadata['dropped_feature_groups']}", flush=True)
            secs = time.perf_counter() - t0
            ours = evaluate_model(LoadedModel(result.model, "kr", "-", None, "in-process", None), held_out)
            runs.append((f"riskprof --outcome-delay {delay}", ours, secs))
        for name, m, secs in runs:
            rows.append({"label": label, "model": name, **{f"P@{k}%": m["precision_at"][k] for k in ("1", "2", "5", "10")},
                         "AUC": m["auc"], "seconds": secs})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for label in table["label"].unique():
        t = table[table["label"] == label].set_index("model")
        for name in t.index:
            if name.startswith("riskprof"):
                ratio = t.loc[name, "P@5%"] / t.loc["plain LightGBM (label-encoded)", "P@5%"]
                print(f"{label}: {name} / plain precision@5% = {ratio:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
