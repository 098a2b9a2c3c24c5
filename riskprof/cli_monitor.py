"""Learning-loop commands: ``monitor`` (figures from recorded selections and outcomes) and ``simulate``
(exploration strategies on a synthetic stream with drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from riskprof.cli_data import console, fail


def _date(value: str | None, option: str) -> Any:
    """A day option in YYYY-MM-DD, as every other command and ``GET /v1/monitoring`` take it (pandas' own
    parser read '11/12/2023' as 12 November, month first, and 'now' or '2023' as days)."""
    import pandas as pd

    from riskprof.cli_data import parse_day

    day = parse_day(value, option)
    return None if day is None else pd.Timestamp(day)


def _store_frames(url: str) -> tuple[Any, Any]:
    """Outcomes and audit-log selections from the serving store (empty when it holds none yet)."""
    from riskprof.cli_db import checked_url
    from serving.monitoring import store_frames
    from serving.store import Store

    store = Store.from_url(checked_url(url), create=False)
    try:
        return store_frames(store)
    finally:
        store.dispose()


def _check_sqlite_file_exists(url: str) -> None:
    """A report reads the store it is given: a SQLite file that is not there is a mistyped URL, not an empty
    store (opening it would create the file and its folders, and report nothing)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        fail(f"--database-url: {exc}")
        return
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_file():
            fail(f"--database-url: no serving store at {path} (that SQLite file does not exist)")


def _batch_files(paths: list[Path]) -> list[Path]:
    """The batch outputs named, and those of the folders named. A folder's other Parquet files (the manifest
    a run read, beside its output) are skipped with a note; a file named that is no output is an error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitoring.inputs import BATCH_COLUMNS

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            skipped: list[Path] = []
            for f in sorted(f for f in p.glob("*.parquet") if not f.name.startswith(".")):
                try:
                    names = set(pq.read_schema(f).names)
                except (pa.ArrowException, OSError):
                    names = set()
                (files if names.issuperset(BATCH_COLUMNS) else skipped).append(f)
            if skipped:
                console.print(f"--batch {p}: skipped {len(skipped)} Parquet file(s) that are no batch scoring "
                              f"output: {', '.join(f.name for f in skipped[:5])}{' …' if len(skipped) > 5 else ''}",
                              highlight=False, markup=False)
        elif p.exists():
            files.append(p)
        else:
            fail(f"--batch: {p} does not exist")
    return files


def _drift_frames(declarations: list[Path], mapping: Path | None, reference_until: Any) -> tuple[Any, Any]:
    from features.contracts import DECLARATION
    from features.io import load_table
    from features.mapping import load_mapping
    from monitoring import declaration_features, split_by_date

    decl = load_table(declarations, DECLARATION, load_mapping(mapping) if mapping else None).frame
    reference, recent = split_by_date(decl, reference_until)
    if not len(reference) or not len(recent):
        fail(f"--declarations: {len(reference):,} rows before {reference_until.date()} and {len(recent):,} from "
             f"it on; drift needs both (set --reference-until)")
    return declaration_features(reference), declaration_features(recent)


def monitor(
    since: str | None = typer.Option(None, "--since", help="First day to report (default: all recorded)."),
    out: Path = typer.Option(Path("out/monitoring"), "--out", help="Folder for monitoring.html and monitoring.json."),
    batch: list[Path] = typer.Option([], "--batch", help="Batch scoring outputs (*.parquet or a folder), repeatable."),
    outcomes: list[Path] = typer.Option([], "--outcomes", help="Outcome files besides the serving store."),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="Read outcomes and audit-log selections from the serving store."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="Serving store URL (default: RISKPROF_DATABASE_URL)."),
    declarations: list[Path] = typer.Option([], "--declarations",
                                            help="Declarations covering training period and recent traffic (drift)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Column mapping YAML for --declarations."),
    reference_until: str | None = typer.Option(None, "--reference-until",
                                               help="End of the training period for drift (default: --since)."),
    inspection_rate: float | None = typer.Option(None, "--inspection-rate", min=0.0, max=1.0,
                                                 help="Rate for precision (default: RISKPROF_INSPECTION_RATE)."),
) -> None:
    """Weekly hit rates by selection source, IPW overall rate, precision, calibration, drift and lanes."""
    from monitoring import build_monitoring, write_monitoring

    start = _date(since, "--since")
    ref_until = _date(reference_until, "--reference-until") if reference_until else start
    if declarations and ref_until is None:
        fail("--declarations needs --reference-until or --since: the day the training period ends")
    selections, outcome_frame, reference, recent = _gather_inputs(
        outcomes, batch, from_store, database_url, declarations, mapping, ref_until)
    result = build_monitoring(selections, outcome_frame, reference, recent, since=start, inspection_rate=inspection_rate)
    paths = write_monitoring(result, out)
    if result["rescored_records"]:
        console.print(f"{result['rescored_records']:,} selection record(s) of declarations scored more than once "
                      "(several outputs, or a batch run and the API) counted once, the latest", highlight=False)
    for line in result["warnings"]:
        console.print(line, highlight=False, markup=False)
    o = result["overall"]
    ipw = o["ipw_overall"]["estimate"]
    console.print(f"{len(result['weeks'])} week(s), {o['inspections']:,} outcomes, {o['hits']:,} hits; overall rate "
                  f"(IPW) {'–' if ipw is None else f'{ipw:.4f}'}; wrote {paths['html']} and {paths['json']}",
                  highlight=False)


def _gather_inputs(outcomes: list[Path], batch: list[Path], from_store: bool, database_url: str | None,
                   declarations: list[Path], mapping: Path | None, ref_until: Any) -> tuple[Any, Any, Any, Any]:
    """(selections or None, outcomes, reference features, recent features) from files and the store
    (the store only if ``from_store``); every input problem is a message and a non-zero exit."""
    import pandas as pd
    from sqlalchemy.exc import SQLAlchemyError

    from features.contracts import OUTCOME, ContractError
    from features.io import LoadError, load_table
    from features.mapping import MappingError
    from monitoring import selections_from_batch
    from serving.store import StoreUnavailable

    try:
        out_frames = [load_table(p, OUTCOME).frame for p in outcomes]
        selections = [selections_from_batch(_batch_files(batch))] if batch else []
        if from_store:
            from serving.settings import get_serving_settings

            if database_url:
                _check_sqlite_file_exists(database_url)
            store_out, store_sel = _store_frames(database_url or get_serving_settings().resolved_database_url)
            out_frames.append(store_out)
            selections.append(store_sel)
        reference, recent = _drift_frames(declarations, mapping, ref_until) if declarations else (None, None)
    except ContractError as exc:
        console.print(exc.report.summary(limit=30), highlight=False, markup=False)
        fail("problems in the outcome or declaration input; nothing written", code=1)
    except (LoadError, MappingError, ValueError, StoreUnavailable) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the serving store: {str(exc).splitlines()[0]}")
    if not out_frames:
        fail("no outcomes: give --outcomes files or read the serving store (--from-store)")
    outcome_frame = pd.concat(out_frames, ignore_index=True).drop_duplicates("declaration_id", keep="first")
    kept = [s for s in selections if len(s)]
    return (pd.concat(kept, ignore_index=True) if kept else None), outcome_frame, reference, recent


def simulate(
    out: Path = typer.Option(Path("out/simulation"), "--out", help="Folder for simulation.html and simulation.json."),
    weeks: int = typer.Option(26, "--weeks", min=2, help="Weeks to replay."),
    per_week: int = typer.Option(20_000, "--per-week", min=100, help="Declarations per week."),
    capacity: float = typer.Option(0.05, "--capacity", help="Share of each week's declarations inspected."),
    explore_share: float = typer.Option(0.1, "--explore-share", help="Share of the capacity for exploring."),
    strategies: str = typer.Option("exploit,random,ucb", "--strategies", help="Comma-separated: exploit, random, ucb."),
    drift: str = typer.Option("all", "--drift", help="Drift scenarios: route, heading, weapon, all or none."),
    drift_week: int | None = typer.Option(None, "--drift-week", help="Week the drift starts (default: half-way)."),
    warmup_weeks: int = typer.Option(2, "--warmup-weeks", help="First weeks inspected at random (first model)."),
    rounds: int = typer.Option(40, "--rounds", min=1, help="LightGBM rounds of each weekly refit."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same JSON."),
    discovery_recall: float = typer.Option(0.3, "--discovery-recall", min=0.0, max=1.0,
                                           help="New-pattern recall from which it counts as found."),
) -> None:
    """Compare exploitation, a random share and optimistic (UCB) exploration on a synthetic stream with drift."""
    import time

    from monitoring import SimulationConfig, run_simulation, write_simulation
    from synthetic import parse_drift

    try:
        cfg = SimulationConfig(weeks=weeks, per_week=per_week, capacity=capacity, explore_share=explore_share,
                               strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
                               drift=parse_drift(drift), drift_week=drift_week, warmup_weeks=warmup_weeks,
                               rounds=rounds, seed=seed, discovery_recall=discovery_recall)
        cfg.check()
    except ValueError as exc:
        fail(str(exc))
        return
    started = time.perf_counter()
    result = run_simulation(cfg)
    paths = write_simulation(result, out)
    for name, s in result["summary"].items():
        found = "never" if s["new_pattern_found_week"] is None else f"week {s['new_pattern_found_week']}"
        recall = s["new_pattern_recall_after_drift"]
        console.print(f"{name:8s} hits {s['hits']:6,d}  hit rate {s['hit_rate']:.4f}  cost {s['cost_in_hits']}  "
                      f"new pattern found {found}, recall {'–' if recall is None else f'{recall:.3f}'}",
                      highlight=False)
    console.print(f"simulated in {time.perf_counter() - started:.1f} s; wrote {paths['html']} and {paths['json']}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.command("simulate")(simulate)
