"""``riskprof score``: nightly batch scoring of a manifest (a thin wrapper over :mod:`batch`)."""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from riskprof.cli_data import (
    check_model,
    check_output_folder,
    console,
    delimiter_option,
    encoding_option,
    fail,
)


class _RichProgress:
    """Rows, rows/s and ETA on a terminal; silent otherwise."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("scoring"), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
            TextColumn("rows · {task.fields[rate]} rows/s"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, transient=False)
        self.task: Any = None

    def start(self, total: int | None, completed: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("score", total=total, completed=completed, rate="-")

    def advance(self, rows: int) -> None:
        self.progress.advance(self.task, rows)
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, rate=f"{speed:,.0f}" if speed else "-")

    def stop(self) -> None:
        self.progress.stop()


def _capacity_option(value: str) -> str:
    from scoring import capacity_count

    try:
        capacity_count(100, value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; give a count (120), a fraction below 1 (0.05) or a percentage (5%)") from None
    return value


def _check_output(out: Path) -> None:
    """The output's folder must exist: a mistyped path must not create folders (e.g. at the root). Its
    name ends in .parquet: ``--out scores.csv`` wrote Parquet bytes under a CSV name (and the CSV copy
    of ``--csv`` to scores.csv.csv)."""
    if out.is_dir():
        fail(f"--out {out} is a folder: name the output file in it, e.g. {out / 'scores.parquet'}")
    if out.suffix.lower() not in (".parquet", ".pq"):
        fail(f"--out {out}: the scores are written as Parquet, so name the file .parquet "
             "(--csv writes a CSV copy beside it)")
    check_output_folder(out, "--out")


def pinned_from_store(store: Any) -> Any:
    """The set a run pins from the serving store (``serving.profile_store.ProfileStore``): the latest
    version of each active profile and of each watch list, as the API applies them. Stored versions
    never change, so a checkpoint keeps only the pins and a resumed run reads those versions back."""
    from batch import PinnedRules
    from profiles import pinned_profiles

    def reload(pins: Any) -> Any:
        profiles, lists = store.versions(pins)
        return PinnedRules.of(profiles, lists, store.extra_columns, "store", reload)

    return PinnedRules.of(pinned_profiles(store.profiles()), store.watchlists(), store.extra_columns, "store", reload)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Around a run's start-up (pinning its profiles): the cyclic garbage collector paused, then every
    object alive moved out of its reach. 100,000 watch-list entries are some 300,000 objects it tracks,
    none of them garbage: it would walk them all again as they age (~0.1 s of a run). For a one-shot
    command: frozen objects are never collected."""
    from serving.profile_store import gc_paused

    with gc_paused():
        yield
        gc.freeze()


def _sqlite_file_missing(url: str) -> bool:
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    db = u.database
    return u.get_backend_name() == "sqlite" and db not in (None, "", ":memory:") and not Path(str(db)).exists()


def _check_profiles_path(path: Path | None) -> None:
    if path is not None and not path.is_file():
        fail(f"--profiles {path}: a folder, not a YAML file" if path.is_dir() else f"--profiles {path}: no such file")


def _profiles_from_file(path: Path) -> Any:
    from batch import PinnedRules
    from profiles import ProfileError, load_profiles, pinned_profiles
    from serving.profile_store import extra_columns_from_env

    _check_profiles_path(path)
    extra = extra_columns_from_env()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()  # pins what versions do not: the file's rules
        found, lists = load_profiles(path, extra)
    except ProfileError as exc:
        for p in exc.problems:
            console.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
        fail(f"--profiles {path}: {len(exc.problems)} problem(s)")
    except UnicodeDecodeError as exc:
        fail(f"--profiles {path}: not a UTF-8 text file ({exc.reason})")
    return PinnedRules.of(pinned_profiles(found), lists, extra, f"file {path.resolve()}",
                          sha256=digest)


def _load_profiles(profiles_file: Path | None, no_profiles: bool) -> tuple[Any, Any, list[str]]:
    """(pinned set or None, the store to raise alerts in or None, notes)."""
    if no_profiles:
        if profiles_file is not None:
            fail("give either --profiles FILE or --no-profiles, not both")
        return None, None, []
    if profiles_file is not None:
        return _profiles_from_file(profiles_file), None, ["alerts are raised only for profiles from the serving store"]
    from riskprof.cli_db import open_store
    from serving.profile_store import ProfileStore
    from serving.settings import get_serving_settings

    url = get_serving_settings().resolved_database_url
    if _sqlite_file_missing(url):
        return None, None, [f"no serving store at {url}: no risk profiles applied"]
    store = ProfileStore(open_store(url).engine)
    return pinned_from_store(store), store, []


def score(
    manifest: list[Path] = typer.Option(..., "--manifest", help="CSV/Parquet file or folder of files (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output Parquet file; siblings: .rejects.csv, .meta.json, .csv."),
    model: str | None = typer.Option(None, "--model",
                                     help="Model URI (default models:/<RISKPROF_MODEL_NAME>@champion); the "
                                          "version it points to at start is pinned for the whole run."),
    capacity: str = typer.Option("5%", "--capacity", callback=_capacity_option,
                                 help="Items to select for inspection: a count N, a fraction below 1 or P%."),
    random_share: float = typer.Option(0.0, "--random-share", min=0.0, max=1.0,
                                       help="Share of the capacity drawn at random among the rest."),
    reasons: bool = typer.Option(True, "--reasons/--no-reasons",
                                 help="Reasons (TreeSHAP) for red and yellow items; --no-reasons skips them."),
    all_reasons: bool = typer.Option(False, "--all-reasons", help="Reasons for every item, green too (slow)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", min=1, help="Rows per chunk (bounds memory)."),
    engine: str = typer.Option("local", "--engine", help="local or spark."),
    mapping: Path | None = typer.Option(None, "--mapping", "-m", help="Column mapping YAML (bring your own data)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the output as CSV."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random share's draw."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Local engine: processes scoring chunks in parallel (one per core)."),
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline",
                                  help="Local engine, one process: score two chunks at once on threads (one "
                                       "builds features while the other is in LightGBM). Same output."),
    encoding: str | None = encoding_option(),
    delimiter: str | None = delimiter_option(),
    profiles_file: Path | None = typer.Option(None, "--profiles",
                                              help="Risk profiles and watch lists (YAML, as `riskprof profiles "
                                                   "export` writes) to apply instead of the serving store's."),
    no_profiles: bool = typer.Option(False, "--no-profiles", help="Apply no risk profiles: the model alone."),
    audit: bool = typer.Option(True, "--audit/--no-audit",
                               help="With the serving store's profiles: record every scored item (score, lane, "
                                    "selection, reasons, rule hits) in its audit log as one event, as the API "
                                    "records its calls (profile effectiveness and monitoring read it)."),
) -> None:
    """Score a manifest: risk score, rank, lane, selection and reasons per item, resumable after a crash.

    The serving store's active risk profiles and watch lists apply as in the API (pinned at the start;
    rule selections fill the capacity first; rule_hits per item; alerts raised once)."""
    from features.io import LoadError, parse_delimiter
    from scoring import ReasonsFor
    from settings import get_settings

    if engine not in ("local", "spark"):
        fail(f"--engine must be local or spark, got {engine!r}")
    if all_reasons and not reasons:
        fail("--all-reasons and --no-reasons contradict each other: give one")
    if model is not None and not model.strip():
        fail("--model is empty: give a model URI, or leave the option out for the champion")
    model_uri = model or f"models:/{get_settings().model_name}@champion"
    _check_output(out)
    with _output_locked(out):  # before any work: a second run into the same --out stops at once
        _check_profiles_path(profiles_file)  # before the model is looked up
        check_model(model_uri)
        reasons_for: ReasonsFor = "all" if all_reasons else ("flagged" if reasons else "none")
        try:  # the same parsing as validate, train and evaluate
            sep = parse_delimiter(delimiter)
        except LoadError as exc:
            fail(str(exc))
        options = _batch_options(capacity=capacity, random_share=random_share, seed=seed, reasons_for=reasons_for,
                                 chunk_rows=chunk_rows, engine=engine, write_csv=csv, workers=workers,
                                 pipelined=pipeline, encoding=encoding, delimiter=sep)
        with frozen_heap():
            pinned, store, notes = _load_profiles(profiles_file, no_profiles)
        for note in notes:
            console.print(f"note: {note}", highlight=False, markup=False)
        _run_and_report(manifest, out, model_uri, options, mapping, pinned, store, audit)


@contextlib.contextmanager
def _output_locked(out: Path) -> Iterator[None]:
    """``<out>.lock`` held for the whole command, the store's alerts and audit event included (the run's
    ``score_manifest`` takes the same lock again, re-entrantly); exit 2 if another run holds it."""
    from batch import OutputBusyError, output_lock

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(output_lock(out))
    except OutputBusyError as exc:
        fail(str(exc))
    except OSError as exc:  # a read-only or protected folder: nothing could be written there
        fail(f"--out {out}: cannot write in its folder ({exc.strerror or exc}: {exc.filename})")
    with stack:
        yield


def _batch_options(**given: Any) -> Any:
    """The run's options with the API's lane policy (the same environment variables); a bad value exits 2."""
    from batch import BatchOptions
    from scoring import LaneSettings
    from settings import get_settings

    try:
        lanes = LaneSettings().lanes
        options = BatchOptions(thresholds=lanes.fixed, lane_shares=lanes.shares,
                               num_threads=get_settings().num_threads, **given)
        options.check()
    except ValueError as exc:
        fail(str(exc))
    return options


def _run_and_report(manifest: list[Path], out: Path, model_uri: str, options: Any,
                    mapping: Path | None, pinned: Any = None, store: Any = None, audit: bool = True) -> None:
    """Score, then print the summary and raise the run's alerts in the store (once per declaration and
    rule version, however often it is scored); errors a user can act on end in a message and exit 2."""
    from batch import BatchWriteError, CheckpointError, ManifestError, OutputBusyError, score_manifest
    from features.io import LoadError
    from features.mapping import MappingError
    from scoring.registry import ModelLoadError

    def after_publish(summary: Any) -> None:  # before the checkpoint goes: a failure here keeps it
        _print_summary(summary)
        if store is not None:
            _record_in_store(store, summary, audit)

    progress = _RichProgress() if console.is_terminal else None
    try:
        summary = score_manifest(manifest, out, model_uri, options, mapping=mapping, progress=progress,
                                 profiles=pinned, after_publish=after_publish)
    except (LoadError, MappingError, ManifestError, BatchWriteError, CheckpointError, OutputBusyError) as exc:
        fail(str(exc))
        return
    except ModelLoadError as exc:  # a registered version whose artifact is missing or does not unpickle
        fail(f"cannot load model {model_uri}: {exc}")
        return
    except Exception as exc:  # registry errors (no such model/alias) come as MLflow exceptions
        if type(exc).__name__ in ("MlflowException", "RestException"):
            fail(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}")
        raise
    if summary.counts.rows_scored == 0 and summary.counts.rows_rejected == 0:
        fail("nothing was scored: the manifest holds no rows (a header only, or an empty file); an earlier "
             f"output at {summary.paths.out}, if any, is left as it was", code=1)
    if summary.counts.rows_scored == 0:
        fail(f"nothing was scored: {summary.counts.rows_rejected:,} row(s) rejected "
             f"(see {summary.paths.rejects}); an earlier output at {summary.paths.out}, if any, is left as it was",
             code=1)


def _record_in_store(store: Any, summary: Any, audit: bool) -> None:
    """The run's alerts, then its audit event. A store that cannot be reached ended in a traceback after
    the scores were published (exit 1, alerts and audit event missing, nothing said about them); now
    exit 2 saying what is written and what is not, the checkpoint kept for the same command to retry
    (alerts are raised once per declaration and rule version, and the audit event is written whole or
    not at all, so a retry records each exactly once)."""
    import sqlalchemy as sa

    from serving.store import StoreUnavailable

    alerts = summary.counts.alert_table
    alerts_done = False
    try:
        if alerts.num_rows:
            created = store.create_alerts(alerts)
            console.print(f"alerts: {created:,} raised ({alerts.num_rows - created:,} raised before)",
                          highlight=False, markup=False)
        alerts_done = True
        if audit and summary.counts.rows_scored:
            _record_in_audit_log(store, summary)
    except (StoreUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        paths = summary.paths
        missing = ("the audit event was" if alerts_done
                   else f"the {alerts.num_rows:,} alert(s) and the audit event were" if audit
                   else f"the {alerts.num_rows:,} alert(s) were")
        fail(f"the scores were written at {paths.out} (with {paths.rejects.name} and {paths.meta.name}), but "
             f"{missing} not recorded: the serving store cannot be reached ({detail}). The checkpoint "
             f"{paths.checkpoint} is kept: once the store is back, run the same command again; it publishes the "
             "same output from the checkpoint without scoring again, then records them (an alert already "
             "raised is not raised twice). Removing the checkpoint instead gives them up.")


def _record_in_audit_log(profile_store: Any, summary: Any) -> None:
    from serving.batch_audit import record_batch_output
    from serving.profile_store import Actor
    from serving.store import Store

    d = summary.as_dict()
    n = record_batch_output(Store(profile_store.engine), summary.paths.out.absolute(), Actor.cli().name, d["model"],
                            {"rows_scored": d["rows_scored"], "selection": d["selection"]})
    console.print(f"audit log: {n:,} item(s) recorded (endpoint batch)", highlight=False, markup=False)


def _print_summary(summary: Any) -> None:
    d = summary.as_dict()
    for note in d["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False)
    m = d["model"]
    console.print(f"model {m['name']} version {m['version']}"
                  f"{' (alias ' + m['alias'] + ')' if m['alias'] else ''}", highlight=False, markup=False)
    console.print(f"scored {d['rows_scored']:,} rows, rejected {d['rows_rejected']:,} "
                  f"({d['problems']:,} problems{', ' + str(d['duplicates']) + ' duplicate ids' if d['duplicates'] else ''})"
                  f" in {d['seconds']:.1f} s", highlight=False, markup=False)
    console.print("lanes: " + ", ".join(f"{k} {v:,}" for k, v in d["lanes"].items()), highlight=False, markup=False)
    console.print("selection: " + ", ".join(f"{k} {v:,}" for k, v in d["selection"].items()), highlight=False,
                  markup=False)
    console.print(f"reasons: {d['reasons_note']}", highlight=False, markup=False)
    if "profiles" in d:
        pins = d["profiles"]
        console.print(f"profiles: {len(pins['profiles'])} profile version(s), {len(pins['watch_lists'])} watch "
                      f"list(s) pinned from the {pins['source']}; {d['rule_hit_items']:,} item(s) matched",
                      highlight=False, markup=False)
    console.print(f"wrote {d['output']} (+ {Path(d['rejects_file']).name}, {Path(d['meta_file']).name})",
                  highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
