"""``riskprof retrain``: the weekly job (a thin wrapper over :func:`serving.retrain.retrain_from_files`).

Exit codes: 0 the job ran (the challenger promoted, refused by the gate, or a dry run; or nothing new since
the champion was trained, so nothing trained; the output says which); 3 refused with ``--fail-on-refusal``; 2 bad input (files, options, an unreadable store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from riskprof.cli_data import check_model_name, check_rate, fail, stops_on_sigterm

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

EXIT_REFUSED = 3


def retrain(
    declarations: list[Path] = typer.Option(..., "--declarations", help="All declaration files or folders known now."),
    seizures: Path | None = typer.Option(None, "--seizures", help="Seizure records (history for route/cover features)."),
    outcomes: list[Path] = typer.Option([], "--outcomes", help="Outcome files (repeatable); the serving store's "
                                        "outcomes are added unless --no-store."),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="Also read outcomes recorded through the API (POST /v1/outcomes)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML for your own declarations."),
    label: str | None = typer.Option(None, "--label", help="A label defined by the mapping (its labels come from "
                                     "the declarations; outcome files and the store are then not read)."),
    name: str | None = typer.Option(None, "--name", help="Registered model name (default: settings.model_name)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed of the fit."),
    holdout_weeks: int = typer.Option(4, "--holdout-weeks", min=1,
                                      help="The most recent labelled weeks kept out of the challenger's training, "
                                           "so that the gate can compare it with the champion on them."),
    rate: float | None = typer.Option(None, "--rate", help="Inspection rate compared, in per cent: 5 for 5 % (default: RISKPROF_INSPECTION_RATE, a fraction, × 100)."),
    rounds: int = typer.Option(1000, "--rounds", min=1, help="Maximum boosting rounds (early stopping on validation)."),
    num_threads: int | None = typer.Option(None, "--num-threads", min=1, help="LightGBM threads (default: settings)."),
    select: bool = typer.Option(True, "--select/--no-select", help="Feature-group selection, as in train."),
    dry_run: bool = typer.Option(False, "--dry-run", "--no-promote",
                                 help="Train and register the challenger and show what the gate would decide, "
                                      "but leave the champion alias alone and record no decision."),
    even_if_unchanged: bool = typer.Option(False, "--even-if-unchanged",
                                           help="Train (and put through the gate) a new version even when the "
                                                "declarations, outcomes and seizures are exactly those the "
                                                "champion learned from (default: say so, train nothing)."),
    new_model: bool = typer.Option(False, "--new-model",
                                   help="Register --name as a new model if none is registered under it (its first "
                                        "version, promoted: there is no champion to beat). Without it such a name "
                                        "is refused, as a typo would register a second model."),
    fail_on_refusal: bool = typer.Option(False, "--fail-on-refusal",
                                         help=f"Exit {EXIT_REFUSED} when the gate refuses the challenger (default: 0, "
                                              "a refusal is a normal outcome of the job)."),
) -> None:
    """Weekly retraining: train a challenger on every declaration and outcome known now except the last
    --holdout-weeks labelled weeks, compare it with the champion through the promotion gate (the one
    `riskprof promote` uses) on rows neither trained on, promote it if it is at least as good; all in MLflow."""
    from riskprof.cli_model import _friendly_errors
    from serving.retrain import StoreReadError, retrain_from_files
    from settings import get_settings
    from training.retrain import NothingNew

    settings = get_settings()
    model_name = name or settings.model_name
    check_model_name(name)
    check_rate(rate)
    try:
        result = retrain_from_files(
            declarations, model_name, seizures=seizures, outcome_files=outcomes, mapping=mapping, label=label,
            from_store=from_store, holdout_weeks=holdout_weeks, seed=seed,
            num_threads=num_threads or settings.num_threads, rate=rate or settings.inspection_rate * 100,
            apply=not dry_run, num_boost_round=rounds, select=select, even_if_unchanged=even_if_unchanged,
            new_model=new_model)
    except NothingNew as nothing:  # the job ran and found nothing to learn: exit 0
        out.print(str(nothing), highlight=False)
        return
    except (*_friendly_errors(), StoreReadError) as exc:
        fail(str(exc))
        return
    except Exception as exc:  # MLflow: registry or tracking store refused
        if type(exc).__name__ in ("RestException", "MlflowException"):
            fail(f"cannot retrain {model_name}: {str(exc).splitlines()[0]}")
        raise
    _print_result(result, model_name)
    if fail_on_refusal and not result.decision.promoted:
        raise typer.Exit(EXIT_REFUSED)


def _print_result(r: Any, model_name: str) -> None:
    """What was trained on, the rows compared, both figures and the decision."""
    t, h, d = r.training, r.holdout, r.decision
    store = r.data.get("store_outcomes")
    out.print(f"data: {r.data['declarations']:,} declarations, {r.data['outcomes']:,} outcomes "
              f"({'serving store not read' if store is None else f'{store:,} from the serving store'}), "
              f"{r.data['labelled']:,} labelled rows", highlight=False)
    out.print(f"held back: the last {h.weeks} week(s) {h.start} .. {h.end}: {h.rows:,} labelled rows, "
              f"{h.positives:,} positives; the challenger trained on the {h.training_rows:,} labelled rows "
              f"before {h.start}", highlight=False)
    out.print(f"trained: {model_name} version {t.version} (alias challenger), run {t.run_id}; its own test period "
              f"{t.model.metadata['test_period'][0]} .. {t.model.metadata['test_period'][1]} precision@5% "
              f"{t.metrics['precision_at']['5']:.3f}", highlight=False)
    for line in d.details():
        out.print(line, highlight=False)
    key = f"{d.rate:g}"
    if d.challenger_precision is not None and d.champion_precision is not None:
        out.print(f"precision@{key}%: challenger v{d.challenger_version} {d.challenger_precision:.4f}, "
                  f"champion v{d.champion_version} {d.champion_precision:.4f}", highlight=False)
    out.print(("dry run, nothing promoted; the gate would say: " if not r.applied else "") + d.message,
              highlight=False)
    if not d.promoted:  # the gate's message says "use --force", which retrain (dry run or not) does not take
        out.print(f"(--force is not a retrain option: overriding the gate is a person's decision, "
                  f"`riskprof promote --name {model_name} --force`, recorded as such)", highlight=False)
    out.print(f"decision: {r.outcome}; the job is recorded in MLflow run {r.run_id} (retrain-{model_name}-v{t.version})",
              highlight=False)


def register(app: typer.Typer) -> None:
    app.command("retrain")(stops_on_sigterm(retrain))  # a stopped job's MLflow run ends FAILED
