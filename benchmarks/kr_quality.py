"""Model quality on data nobody here wrote: the public Korean declarations (../shared).

Time splits as the project is judged: a model trained on everything before a quarter is evaluated
on that quarter through its own feature snapshot (no label of the quarter known, as for the
withheld quarter). By default two quarters: 2021-Q1 (trained on all of 2020, df_syn_train_eng.csv;
evaluated on df_syn_valid_eng.csv) and 2020-Q4 (trained on 2020-01..09). Beside it, in the same
run and on the same rows, a plain baseline to beat (what anyone would try first on this data):
LightGBM on label-encoded columns and a few value features. Prints precision at 1/2/5/10 % and AUC
per quarter, and the hits in the top 1 % summed over the quarters (one quarter of a rare label is a
few dozen positives).

    .venv/bin/python benchmarks/kr_quality.py [--shared ../shared] [--labels fraud,critical_fraud]
        [--quarters 2021Q1,2020Q4] [--delays 45]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.registry import LoadedModel
from training import TrainingSet, fit_model, load_training_set, ranking_metrics
from training.lifecycle import evaluate_model

REPO = Path(__file__).resolve().parents[1]
RAW_LABELS = {"fraud": ("Fraud", 1), "critical_fraud": ("Critical Fraud", 2)}


def quarter(name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """'2021Q1' → (first day, last day)."""
    p = pd.Period(name, freq="Q")
    return p.start_time.normalize(), p.end_time.normalize()


def plain_baseline(csvs: list[Path], q: tuple[pd.Timestamp, pd.Timestamp], label: str, threads: int) -> dict:
    both = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    date = pd.to_datetime(both["Date"])
    both = both[date <= q[1]].reset_index(drop=True)
    is_test = (pd.to_datetime(both["Date"]) >= q[0]).to_numpy()
    cats = ["Office ID", "Process Type", "Import Type", "Import Use", "Payment Type", "Mode of Transport",
            "Declarant ID", "Importer ID", "Seller ID", "Courier ID", "HS6 Code", "Country of Departure",
            "Country of Origin", "Tax Type", "Country of Origin Indicator"]
    X = pd.DataFrame({c: both[c].astype(str).astype("category").cat.codes for c in cats})
    for c in ("Tax Rate", "Net Mass", "Item Price"):
        X[c] = both[c]
    X["value_per_kg"] = np.log1p(both["Item Price"]) - np.log1p(both["Net Mass"])
    col, val = RAW_LABELS[label]
    y = (both[col] == val).to_numpy()
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": threads, "seed": 0},
                        lgb.Dataset(X[~is_test], y[~is_test]), 300)
    return ranking_metrics(y[is_test], np.asarray(booster.predict(X[is_test])))


def before(ts: TrainingSet, day: pd.Timestamp) -> TrainingSet:
    """The training set as it was known on ``day``: declarations and labels dated before it."""
    decl = ts.declarations[ts.declarations["declaration_date"] < day]
    return dataclasses.replace(ts, declarations=decl, labelled=ts.labelled[ts.labelled["declaration_date"] < day],
                               outcomes=ts.outcomes[ts.outcomes["declaration_id"].isin(decl["declaration_id"])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--labels", default="fraud,critical_fraud")
    ap.add_argument("--quarters", default="2021Q1,2020Q4", help="evaluation quarters, each trained on what precedes it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--delays", default="45", help="comma-separated outcome delays (days) to train riskprof with")
    args = ap.parse_args()
    data = Path(args.shared) / "data" / "kr-customs-declarations"
    csvs = [data / "df_syn_train_eng.csv", data / "df_syn_valid_eng.csv"]
    mapping = REPO / "examples" / "kr-customs" / "mapping.yaml"
    rows = []
    for label in args.labels.split(","):
        every = load_training_set(csvs, mapping=mapping, label=label)
        for qname in args.quarters.split(","):
            q = quarter(qname)
            t0 = time.perf_counter()
            base = plain_baseline(csvs, q, label, args.threads)
            runs = [("plain LightGBM (label-encoded)", base, time.perf_counter() - t0)]
            for delay in (int(v) for v in args.delays.split(",")):
                ts = before(every, q[0])
                ts.outcome_delay_days = delay
                t0 = time.perf_counter()
                result = fit_model(ts, seed=0, num_threads=args.threads)
                secs = time.perf_counter() - t0
                print(f"{label} {qname} --outcome-delay {delay}: feature groups left out on validation: "
                      f"{result.model.metadata['dropped_feature_groups']}", flush=True)
                ours = evaluate_model(LoadedModel(result.model, "kr", "-", None, "in-process", None), every,
                                      period=(str(q[0].date()), str(q[1].date())))
                runs.append((f"riskprof --outcome-delay {delay}", ours, secs))
            for name, m, secs in runs:
                rows.append({"label": label, "quarter": qname, "model": name,
                             **{f"P@{k}%": m["precision_at"][k] for k in ("1", "2", "5", "10")},
                             "AUC": m["auc"], "positives": m["positives"],
                             "hits in top 1%": round(m["recall_at"]["1"] * m["positives"]), "seconds": secs})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for (lab, name), t in table.groupby(["label", "model"], sort=False):
        print(f"{lab}: {name}: over {len(t)} quarters, {t['hits in top 1%'].sum()} hits in the top 1 % "
              f"({t['positives'].sum()} positives); mean P@5% {t['P@5%'].mean():.3f}, mean AUC {t['AUC'].mean():.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
