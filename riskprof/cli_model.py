"""Model commands: ``train``, ``evaluate``, ``promote``, ``refresh-features``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from riskprof.cli_data import (
    check_alias,
    check_model,
    check_model_name,
    check_rate,
    delimiter_option,
    encoding_option,
    fail,
    parse_day,
    refuse_overwriting,
    stops_on_sigterm,
)

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _friendly_errors():
    """Errors a user can act on → message + exit code 2 (never a traceback)."""
    from features.contracts import ContractError
    from features.io import LoadError
    from features.mapping import MappingError
    from scoring.registry import ModelLoadError
    from training.data import TrainingError

    return (ContractError, LoadError, MappingError, ModelLoadError, TrainingError)


def train(
    declarations: list[Path] = typer.Option(..., "--declarations", help="Declaration files or folders (CSV/Parquet)."),
    seizures: Path | None = typer.Option(None, "--seizures", help="Seizure records (history for route/cover features)."),
    outcomes: Path | None = typer.Option(None, "--outcomes", help="Inspection outcomes (labels: 'hit')."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML for your own declarations."),
    label: str | None = typer.Option(None, "--label", help="A label defined by the mapping (e.g. fraud)."),
    name: str | None = typer.Option(None, "--name", help="Registered model name (default: settings.model_name)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed of the fit."),
    num_threads: int | None = typer.Option(None, "--num-threads", min=1, help="LightGBM threads (default: settings)."),
    test_start: str | None = typer.Option(None, "--test-start", help="First day of the test period (YYYY-MM-DD)."),
    rounds: int = typer.Option(1000, "--rounds", min=1, help="Maximum boosting rounds (early stopping on validation)."),
    outcome_delay: int = typer.Option(0, "--outcome-delay", min=0,
                                      help="Days after inspection before an outcome counts in history features. "
                                           "Use the age of the snapshot at scoring time when it is not refreshed "
                                           "nightly (e.g. 45 for a quarter scored in one go)."),
    select: bool = typer.Option(True, "--select/--no-select",
                                help="Drop feature groups (families, extra columns) whose removal clearly raises "
                                     "validation AUC (paired bootstrap); the decision is logged to MLflow."),
    refit: str = typer.Option("all", "--refit", help="Deployed model fitted on: all | train+valid | none "
                              "(test metrics always come from a model that did not see the test period)."),
    encoding: str | None = encoding_option(),
    delimiter: str | None = delimiter_option(),
) -> None:
    """Train on a time split, log to MLflow, register the model and alias it `challenger`."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from features.io import parse_delimiter
    from settings import get_settings
    from training import train_and_log
    from training.data import load_training_set

    check_model_name(name)  # before the data are loaded and the model trained
    parse_day(test_start, "--test-start")
    settings = get_settings()
    model_name = name or settings.model_name
    if refit not in ("all", "train+valid", "none"):
        fail(f"--refit must be all, train+valid or none, got {refit!r}")
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task("loading and validating data", total=None)
            ts = load_training_set(declarations, seizures=seizures, outcomes=outcomes, mapping=mapping, label=label,
                                   encoding=encoding, delimiter=parse_delimiter(delimiter))
            ts.outcome_delay_days = outcome_delay
            for note in ts.notes:
                progress.console.print(f"note: {note}", highlight=False, markup=False)
            progress.update(task, description=f"training on {len(ts.labelled):,} labelled rows")
            result = train_and_log(ts, model_name, seed=seed, num_threads=num_threads or settings.num_threads,
                                   test_start=test_start, num_boost_round=rounds, refit=refit,
                                   select=select)
    except _friendly_errors() as exc:
        fail(str(exc))
        return
    _print_training_result(result, model_name)


def _print_training_result(result: Any, model_name: str) -> None:
    """Where the run and the model went, and the test-period figures against the baselines."""
    m = result.metrics
    out.print(f"run id: {result.run_id}")
    out.print(f"registered: {model_name} version {result.version} (alias challenger)")
    out.print(f"test period: {result.model.metadata['test_period'][0]} .. {result.model.metadata['test_period'][1]}"
              f"  rows {m['n']:,}  positives {m['positives']:,}")
    out.print("precision@1/2/5/10%: " + "  ".join(f"{m['precision_at'][k]:.3f}" for k in ("1", "2", "5", "10")))
    out.print("recall@1/2/5/10%:    " + "  ".join(f"{m['recall_at'][k]:.3f}" for k in ("1", "2", "5", "10")))
    out.print(f"AUC {m['auc']:.4f}  AP {m['average_precision']:.4f}  Brier {m['brier']:.4f}")
    _print_seen_novel(m)
    dropped = result.model.metadata["dropped_feature_groups"]
    out.print("feature groups left out (no help on validation): " + (", ".join(dropped) if dropped else "none"))
    for bname, b in result.baselines.items():
        out.print(f"baseline {bname}: precision@5% {b['precision_at']['5']:.3f}  AUC {b['auc'] or float('nan'):.4f}")
    sb = result.selection_bias
    if sb.get("random_ipw_hit_rate") is not None:
        out.print(f"hit rate: naive (all inspected) {sb['naive_hit_rate']:.4f}; random stratum IPW "
                  f"{sb['random_ipw_hit_rate']:.4f} ({sb['random_inspections']} random inspections)")


def _print_seen_novel(m: dict[str, Any]) -> None:
    """The test period's figures for all rows, rows whose consignment profile occurred before it (seen:
    a model can score them by memory) and the others (novel), each with its share of the rows."""
    nov = m["novelty"]
    out.print(f"seen: consignment profile ({nov['profile']}) in the {nov['history_rows']:,} labelled rows "
              "before the test period; novel: not")
    for part, block in (("all", m), ("seen", m["seen"]), ("novel", m["novel"])):
        share = "" if part == "all" else f" {m['shares'][part]:.1%} of rows,"
        if block is None:
            out.print(f"{part:>5}:{share} no rows")
            continue
        auc = "n/a" if block["auc"] is None else f"{block['auc']:.4f}"
        out.print(f"{part:>5}:{share} rows {block['n']:,}  positives {block['positives']:,}  precision@1/2/5/10%: "
                  + "  ".join(f"{block['precision_at'][k]:.3f}" for k in ("1", "2", "5", "10")) + f"  AUC {auc}")


def evaluate(
    model: str = typer.Option(..., "--model", help="MODEL_URI, e.g. models:/riskprof@challenger"),
    declarations: list[Path] = typer.Option(..., "--declarations", help="Labelled declaration files or folders."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML."),
    label: str | None = typer.Option(None, "--label", help="A label defined by the mapping."),
    outcomes: Path | None = typer.Option(None, "--outcomes", help="Outcomes file (labels) when there is no mapping."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    encoding: str | None = encoding_option(),
    delimiter: str | None = delimiter_option(),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="When the model's training rows are read again from its run's files: "
                                         "also read the outcomes recorded through the API, if it learned from "
                                         "them (riskprof retrain, refresh-features)."),
) -> None:
    """Score a labelled file with a registered model and report precision/recall at 1, 2, 5, 10 %: of all rows,
    of rows whose consignment profile occurs in the rows the model learned from (seen: its training rows, and
    for a refreshed snapshot the rows its refresh read) and of the others (novel)."""
    from features.io import parse_delimiter
    from scoring.registry import load_risk_model
    from serving.refresh import StoreReadError, store_outcomes
    from training.data import load_training_set
    from training.lifecycle import evaluate_model

    refuse_overwriting(json_out, [*declarations, outcomes, mapping], "--json")
    check_model(model)
    try:
        ts = load_training_set(declarations, outcomes=outcomes, mapping=mapping, label=label, encoding=encoding,
                               delimiter=parse_delimiter(delimiter))
        for note in ts.notes:  # what the loading left out (outcomes naming no declaration), as train says it
            console.print(f"note: {note}", highlight=False, markup=False)
        loaded = load_risk_model(model)
        metrics = evaluate_model(loaded, ts, store_outcomes=store_outcomes if from_store else None)
    except (*_friendly_errors(), StoreReadError) as exc:
        fail(str(exc))
        return
    except Exception as exc:  # MLflow: unknown model, alias or version
        if type(exc).__name__ in ("RestException", "MlflowException"):
            fail(f"cannot load model {model}: {str(exc).splitlines()[0]}")
        raise
    text = json.dumps(metrics, indent=1, default=float)
    if json_out:
        json_out.write_text(text)
        console.print(f"wrote {json_out}")
    m = metrics
    out.print(f"{loaded.name} v{loaded.version}: rows {m['n']:,}  positives {m['positives']:,}")
    nov = m["novelty"]
    out.print(f"seen: consignment profile ({nov['profile']}) in the {nov['history_rows']:,} labelled rows it learned "
              f"from (from {nov['history_source']}); novel: not", highlight=False)
    for part, block in (("all", m), ("seen", m["seen"]), ("novel", m["novel"])):
        share = "" if part == "all" else f" {m['shares'][part]:.1%} of rows,"
        if block is None:
            out.print(f"{part:>5}:{share} no rows")
            continue
        out.print(f"{part:>5}:{share} rows {block['n']:,}  positives {block['positives']:,}  precision@1/2/5/10%: "
                  + "  ".join(f"{block['precision_at'][k]:.3f}" for k in ("1", "2", "5", "10"))
                  + f"  AUC {block['auc'] if block['auc'] is None else round(block['auc'], 4)}")
    out.print(f"AUC {m['auc']}  AP {m['average_precision']}  Brier {m['brier']:.4f}")


def promote(
    name: str | None = typer.Option(None, "--name", help="Registered model name."),
    force: bool = typer.Option(False, "--force", help="Promote even if the challenger is worse or no fair "
                               "comparison exists (recorded as the model version tag promoted=forced)."),
    rate: float | None = typer.Option(None, "--rate", help="Inspection rate compared, in per cent: 5 for 5 % (default: RISKPROF_INSPECTION_RATE, a fraction, × 100)."),
    declarations: list[Path] = typer.Option([], "--declarations", help="Labelled declarations to compare on "
                                            "(default: the challenger's training files)."),
    seizures: Path | None = typer.Option(None, "--seizures", help="Seizure records, with --declarations."),
    outcomes: Path | None = typer.Option(None, "--outcomes", help="Outcomes (labels), with --declarations."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML, with --declarations."),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="Without --declarations: also read the outcomes recorded through the API "
                                         "when the challenger learned from them (riskprof retrain)."),
) -> None:
    """Make the challenger `champion` if it is at least as good as the current champion on labelled rows
    neither model trained on; prints and records (MLflow) the rows compared and each model's training cut-off."""
    from serving.refresh import StoreReadError, store_outcomes
    from settings import get_settings
    from training.lifecycle import promote as run_promote

    check_model_name(name)
    check_rate(rate)  # before the gate runs: it recorded a decision run for a rate of 0, -5 or nan
    settings = get_settings()
    try:
        decision = run_promote(name or settings.model_name,
                               rate=rate if rate is not None else settings.inspection_rate * 100, force=force,
                               declarations=declarations or None, seizures=seizures, outcomes=outcomes,
                               mapping=mapping, store_outcomes=store_outcomes if from_store else None)
    except (*_friendly_errors(), StoreReadError) as exc:
        fail(str(exc))
        return
    except Exception as exc:
        if type(exc).__name__ in ("RestException", "MlflowException"):
            fail(f"cannot promote {name or settings.model_name}: {str(exc).splitlines()[0]}")
        raise
    for line in decision.details():
        out.print(line, highlight=False)
    if decision.promoted:
        out.print(decision.message, highlight=False)
    else:
        fail(decision.message, code=1)


def refresh_features(
    model: str | None = typer.Option(None, "--model", help="MODEL_URI (default: models:/<name>@champion)."),
    declarations: list[Path] = typer.Option(..., "--declarations", help="All known declarations (history)."),
    seizures: Path | None = typer.Option(None, "--seizures", help="Seizure records."),
    outcomes: list[Path] = typer.Option([], "--outcomes", help="Outcome files (history labels)."),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="Also read outcomes recorded through the API (POST /v1/outcomes)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML for the declarations."),
    alias: str | None = typer.Option(None, "--alias", help="Alias to point at the refreshed version."),
) -> None:
    """Rebuild the feature snapshot (history aggregates) as new outcomes arrive; registers a new version."""
    from serving.refresh import StoreReadError, refresh_from_files
    from settings import get_settings

    check_alias(alias)  # a bad alias was found after the new version was registered
    uri = model or f"models:/{get_settings().model_name}@champion"
    check_model(uri)
    try:
        result = refresh_from_files(uri, declarations, seizures=seizures, outcome_files=outcomes, mapping=mapping,
                                    from_store=from_store, alias=alias)
    except (*_friendly_errors(), StoreReadError) as exc:
        fail(str(exc))
        return
    except Exception as exc:  # MLflow: unknown model, alias or version
        if type(exc).__name__ in ("RestException", "MlflowException"):
            fail(f"cannot load model {uri}: {str(exc).splitlines()[0]}")
        raise
    from_api = "" if result.store_outcomes is None else f" ({result.store_outcomes:,} from the serving store)"
    out.print(f"refreshed {uri}: new version {result.version} (run {result.run_id}), {result.outcomes:,} outcomes "
              f"in history{from_api}")


def register(app: typer.Typer) -> None:
    app.command("train")(stops_on_sigterm(train))  # a stopped job's MLflow run ends FAILED
    app.command("evaluate")(evaluate)
    app.command("promote")(promote)
    app.command("refresh-features")(stops_on_sigterm(refresh_features))  # a stopped job's MLflow run ends FAILED
