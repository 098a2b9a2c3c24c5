"""Model quality on data nobody here wrote: the public Korean declarations (../shared).

Time splits as the project is judged: a model trained on everything before a quarter is evaluated
on that quarter through its own feature snapshot (no label of the quarter known, as for the
withheld quarter). By default two quarters: 2021-Q1 (trained on all of 2020, df_syn_train_eng.csv;
evaluated on df_syn_valid_eng.csv) and 2020-Q4 (trained on 2020-01..09). Beside it, in the same
run and on the same rows, a plain baseline to beat (what anyone would try first on this data):
LightGBM on label-encoded columns and a few value features. Prints precision at 1/2/5/10 % and AUC
per quarter, and the hits in the top 1 % summed over the quarters (one quarter of a rare label is a
few dozen positives).

The data repeat consignments with the same label, so every model is also reported on the quarter's
*seen* rows (the consignment profile, HS6 x origin x departure x value level, occurs in the labelled
rows before the quarter: a model can score them by memory) and its *novel* rows, each part ranked
on its own, with its share of the quarter's rows. For scale, a bare look-up is reported beside the
models: the last known label of the exact consignment (HS6, origin, departure, price, mass) before
the quarter; a consignment never seen scores the history's positive rate; ties stay in file order.

    .venv/bin/python benchmarks/kr_quality.py [--shared ../shared] [--labels fraud,critical_fraud]
        [--quarters 2021Q1,2020Q4] [--delays 45]   (--delays '': the look-up and plain baseline only)
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
from training import TrainingSet, fit_model, load_training_set
from training.lifecycle import evaluate_model
from training.novelty import seen_mask, split_metrics

REPO = Path(__file__).resolve().parents[1]
RAW_LABELS = {"fraud": ("Fraud", 1), "critical_fraud": ("Critical Fraud", 2)}
#: the exact consignment of the bare look-up (mapped columns: HS6, origin, departure, price, mass)
EXACT = ["hs_code", "origin_country", "departure_country", "customs_value", "gross_weight_kg"]
PARTS = ("all", "seen", "novel")


def quarter(name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """'2021Q1' → (first day, last day)."""
    p = pd.Period(name, freq="Q")
    return p.start_time.normalize(), p.end_time.normalize()


def plain_baseline(csvs: list[Path], q: tuple[pd.Timestamp, pd.Timestamp], label: str, threads: int) -> pd.Series:
    """The plain model's score of each row of the quarter, by declaration ID."""
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
    return pd.Series(np.asarray(booster.predict(X[is_test])), index=both.loc[is_test, "Declaration ID"].astype(str))


def last_label_lookup(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """The bare look-up: the last known label of each row's exact consignment in ``history``, else the
    history's positive rate (a consignment never seen sits between the known good and bad ones)."""
    def keys(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(pd.util.hash_pandas_object(frame[EXACT].astype(str), index=False).to_numpy(),
                         index=frame.index)

    last = (pd.DataFrame({"key": keys(history), "y": history["y"].astype(float),
                          "date": history["declaration_date"]})
            .sort_values("date", kind="stable").drop_duplicates("key", keep="last").set_index("key")["y"])
    found = keys(rows).map(last)
    return found.fillna(float(history["y"].mean())).to_numpy(dtype=np.float64)


def before(ts: TrainingSet, day: pd.Timestamp) -> TrainingSet:
    """The training set as it was known on ``day``: declarations and labels dated before it."""
    decl = ts.declarations[ts.declarations["declaration_date"] < day]
    return dataclasses.replace(ts, declarations=decl, labelled=ts.labelled[ts.labelled["declaration_date"] < day],
                               outcomes=ts.outcomes[ts.outcomes["declaration_id"].isin(decl["declaration_id"])])


def quarter_runs(every: TrainingSet, csvs: list[Path], label: str, qname: str, delays: list[int],
                 threads: int) -> list[dict]:
    """The look-up, the plain baseline and riskprof on one quarter: table rows for all, seen and novel."""
    q = quarter(qname)
    known = before(every, q[0]).labelled  # the history every model (and the look-up) may learn from
    dates = every.labelled["declaration_date"]
    rows = every.labelled[(dates >= q[0]) & (dates <= q[1])]
    seen = seen_mask(known, rows)
    y = rows["y"].to_numpy(dtype=bool)
    runs = [("bare look-up: last label of the exact consignment",
             split_metrics(y, last_label_lookup(known, rows), None, seen), 0.0)]
    t0 = time.perf_counter()
    plain = plain_baseline(csvs, q, label, threads).reindex(rows["declaration_id"].astype(str)).to_numpy()
    if np.isnan(plain).any():
        raise SystemExit(f"{int(np.isnan(plain).sum())} rows of {qname} have no plain-baseline score")
    runs.append(("plain LightGBM (label-encoded)", split_metrics(y, plain, None, seen), time.perf_counter() - t0))
    for delay in delays:
        ts = before(every, q[0])
        ts.outcome_delay_days = delay
        t0 = time.perf_counter()
        result = fit_model(ts, seed=0, num_threads=threads)
        secs = time.perf_counter() - t0
        print(f"{label} {qname} --outcome-delay {delay}: feature groups left out on validation: "
              f"{result.model.metadata['dropped_feature_groups']}", flush=True)
        ours = evaluate_model(LoadedModel(result.model, "kr", "-", None, "in-process", None), every,
                              period=(str(q[0].date()), str(q[1].date())), history=known)
        runs.append((f"riskprof --outcome-delay {delay}", ours, secs))
    return [table_row(label, qname, name, part, m, secs) for name, m, secs in runs for part in PARTS]


def table_row(label: str, qname: str, model: str, part: str, m: dict, secs: float) -> dict:
    """One line of the table: a model's figures on all, seen or novel rows of a quarter."""
    block = m if part == "all" else m[part]
    row = {"label": label, "quarter": qname, "model": model, "rows": part,
           "share": 1.0 if part == "all" else m["shares"][part], "n": 0 if block is None else block["n"]}
    if block is None:
        return {**row, **{f"P@{k}%": None for k in ("1", "2", "5", "10")}, "AUC": None, "positives": 0,
                "hits in top 1%": 0, "seconds": secs}
    return {**row, **{f"P@{k}%": block["precision_at"][k] for k in ("1", "2", "5", "10")}, "AUC": block["auc"],
            "positives": block["positives"], "hits in top 1%": round(block["recall_at"]["1"] * block["positives"]),
            "seconds": secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--labels", default="fraud,critical_fraud")
    ap.add_argument("--quarters", default="2021Q1,2020Q4", help="evaluation quarters, each trained on what precedes it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--delays", default="45", help="comma-separated outcome delays (days) to train riskprof with; empty: baselines only")
    args = ap.parse_args()
    data = Path(args.shared) / "data" / "kr-customs-declarations"
    csvs = [data / "df_syn_train_eng.csv", data / "df_syn_valid_eng.csv"]
    mapping = REPO / "examples" / "kr-customs" / "mapping.yaml"
    delays = [int(v) for v in args.delays.split(",") if v.strip()]
    rows = []
    for label in args.labels.split(","):
        every = load_training_set(csvs, mapping=mapping, label=label)
        for qname in args.quarters.split(","):
            rows += quarter_runs(every, csvs, label, qname, delays, args.threads)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for (lab, name, part), t in table.groupby(["label", "model", "rows"], sort=False):
        print(f"{lab}: {name}: {part} rows over {len(t)} quarters: {t['hits in top 1%'].sum()} hits in the top 1 % "
              f"({t['positives'].sum()} positives); mean P@5% {t['P@5%'].mean():.3f}, mean AUC {t['AUC'].mean():.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
