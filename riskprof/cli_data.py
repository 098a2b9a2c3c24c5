"""Data commands: ``generate`` (synthetic default data) and ``validate`` (contracts, mappings)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def encoding_option() -> Any:
    """``--encoding`` of every command that reads CSV files."""
    return typer.Option(None, "--encoding", help="Text encoding of CSV inputs (default UTF-8), e.g. latin-1 or cp1252.")


def delimiter_option() -> Any:
    """``--delimiter`` of every command that reads CSV files (parsed by ``features.io.parse_delimiter``)."""
    return typer.Option(None, "--delimiter", help="Column separator of CSV inputs: one character, e.g. ';', or "
                                                  "'tab' (default: detected from each header among , ; tab |).")


def stops_on_sigterm(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """``command`` with SIGTERM (``systemctl stop``, a unit's timeout, ``kill``) raised as ``SystemExit(143)``
    in the main thread while it runs: its ``with`` blocks end as on an error, so the MLflow run it has open is
    marked FAILED (a terminated train or retrain left its run RUNNING for ever) and its temporary files go.
    The exit code is the shell's for a SIGTERM (128 + 15)."""
    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if threading.current_thread() is not threading.main_thread():
            return command(*args, **kwargs)

        def terminated(signum: int, _frame: Any) -> None:
            sys.stderr.write(f"error: stopped by SIGTERM (signal {signum}): ended as failed\n")
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, terminated)
        try:
            return command(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return run


def fail(message: str, code: int = 2) -> None:
    """Print a clear error (no traceback) and exit non-zero."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def check_model_name(name: str | None, option: str = "--name") -> None:
    """A registered model's name as MLflow takes it, checked before any work (training found out at the end)."""
    if name is None:
        return
    if not name.strip():
        fail(f"{option} is empty: give a registered model name, or leave the option out for the default")
    if any(c in name for c in "/:") or ".." in name:
        fail(f"{option} {name!r}: a registered model name cannot contain '/', ':' or '..'")


def check_alias(alias: str | None, option: str = "--alias") -> None:
    """A model alias as MLflow takes it: letters, digits, '_' and '-' (not 'latest')."""
    if alias is not None and (not re.fullmatch(r"[\w-]+", alias) or alias.lower() == "latest"):
        fail(f"{option} {alias!r}: an alias is letters, digits, '_' and '-' (and not 'latest')")


def parse_day(value: str | None, option: str) -> dt.date | None:
    """A day option (YYYY-MM-DD), or a clear error naming the option."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD, e.g. 2023-06-01)")
        raise AssertionError("unreachable") from None  # fail() exits


#: the smallest ``--rate`` taken (per cent): below it the compared top holds a row or two of a week's
#: labelled rows, and the value is more likely RISKPROF_INSPECTION_RATE's fraction typed as a percentage
MIN_RATE_PERCENT = 0.1


def check_rate(rate: float | None) -> None:
    """``--rate`` of ``promote`` and ``retrain``: an inspection rate in per cent."""
    if rate is not None and not 0 < rate <= 100:  # NaN fails too
        fail(f"--rate must be a percentage in (0, 100], got {rate:g}")
    if rate is not None and rate < MIN_RATE_PERCENT:  # --rate 0.05 compared the top 0.05 %: a row or so
        fail(f"--rate {rate:g} is {rate:g} % of the rows: --rate is in per cent (5 for 5 %), where "
             f"RISKPROF_INSPECTION_RATE is a fraction (0.05); the smallest taken is {MIN_RATE_PERCENT:g}")


def refuse_overwriting(target: Path | None, inputs: Iterable[Path | None], option: str) -> None:
    """Fail (exit 2) before any work when ``target``, a file the command writes, is one of its input
    files (or a file of an input folder): writing it would destroy the input; or when it is a folder, or
    its folder does not exist (a mistyped path must not create folders)."""
    from features.io import input_at

    same = input_at(target, inputs)
    if same is not None:
        fail(f"{option} {target} is the input file {same}: writing it would destroy the input; choose another file")
    if target is not None:  # checked before the work, not found when writing after it
        if target.is_dir():
            fail(f"{option} {target} is a folder: name a file in it")
        check_output_folder(target, option)


def check_output_folder(target: Path, option: str) -> None:
    """The folder of an output file must exist already: a mistyped path must not create folders (e.g. at
    the root), nor be found only when writing after the work."""
    parent = target.expanduser().absolute().parent
    if not parent.is_dir():
        fail(f"{option} {target}: folder {parent} does not exist" if not parent.exists()
             else f"{option} {target}: {parent} is not a folder")


def check_model(model_uri: str) -> None:
    """Fail clearly (exit 2) unless ``model_uri`` names a registered version, before any work starts."""
    from scoring.registry import resolve_version

    try:
        resolve_version(model_uri)
    except ValueError as exc:  # not models:/NAME@alias or models:/NAME/VERSION
        fail(f"cannot load model {model_uri}: {exc}")
    except Exception as exc:  # the registry has no such model, alias or version
        if type(exc).__name__ in ("MlflowException", "RestException"):
            fail(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}")
        raise


def generate(
    out: Path = typer.Option(..., "--out", help="Folder to write seizures/declarations/outcomes Parquet files to."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed: same seed, identical bytes."),
    declarations: int = typer.Option(200_000, "--declarations", min=1000,
                                     help="Number of declaration items over 2022-2023."),
    drift: str = typer.Option("none", "--drift", help="New patterns from --drift-start: route, heading, weapon, "
                                                     "all or none (synthetic/_drift.py)."),
    drift_start: str = typer.Option("2023-07-01", "--drift-start", help="First day of the drift."),
) -> None:
    """Generate the embedded default: synthetic data calibrated to the WCO ITR 2023 figures."""
    import pandas as pd

    from synthetic import generate as run_generate
    from synthetic import generate_drifted, parse_drift

    try:
        kinds = parse_drift(drift)
        start = pd.Timestamp(drift_start)
    except ValueError as exc:
        fail(f"--drift/--drift-start: {exc}")
        return
    paths = (generate_drifted(out, seed=seed, n_declarations=declarations, kinds=kinds, start=start) if kinds
             else run_generate(out, seed=seed, n_declarations=declarations))
    for name, path in paths.items():
        console.print(f"wrote {name}: {path}")


def validate(
    files: list[Path] = typer.Argument(..., help="CSV/Parquet files or folders to check."),
    contract: str = typer.Option("declaration", "--contract", "-c",
                                 help="Contract to check against: seizure, declaration or outcome."),
    mapping: Path | None = typer.Option(None, "--mapping", "-m", help="Column mapping YAML (bring your own data)."),
    limit: int = typer.Option(50, "--limit", min=0, help="Problems to print per file (all are counted)."),
    encoding: str | None = encoding_option(),
    delimiter: str | None = delimiter_option(),
) -> None:
    """Check files against a data contract and report every problem (row, column, value, expected)."""
    from rich.markup import escape

    from features.contracts import CONTRACTS
    from features.io import LoadError, load_table, parse_delimiter
    from features.mapping import MappingError, load_mapping

    try:
        sep = parse_delimiter(delimiter)
        m = load_mapping(mapping) if mapping else None
        if m is not None:
            contract = m.contract.name
        if contract not in CONTRACTS:
            fail(f"--contract must be one of {sorted(CONTRACTS)}, got {contract!r}")
        if m is not None:
            _print_mapping_coverage(m, files, encoding, sep)
        loaded = load_table(files, CONTRACTS[contract], m, strict=False, encoding=encoding, delimiter=sep)
        _print_csv_formats(files, encoding, sep)
    except (LoadError, MappingError) as exc:
        fail(str(exc))
        return
    for report in loaded.reports:
        console.print(report.summary(limit=limit), highlight=False, markup=False)
        if report.missing_optional:
            console.print(f"  optional columns not provided: {report.missing_optional}", highlight=False)
        if report.extra_columns:
            console.print(f"  extra columns carried through: {report.extra_columns}", highlight=False)
    for warning in loaded.warnings:  # valid, so no problem, but most likely wrong (lost leading zeros)
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    n_problems = sum(len(r.problems) for r in loaded.reports)
    if n_problems:
        fail(f"{n_problems} problems in {len(loaded.reports)} file(s)", code=1)
    console.print(f"[green]ok[/]: {len(loaded.frame)} rows satisfy the {contract} contract")


def _print_csv_formats(files: list[Path], encoding: str | None, delimiter: str | None) -> None:
    """Say how CSV files other than UTF-8 with commas were read, so a detected delimiter is visible."""
    from features.io import csv_format, expand_paths

    for path in expand_paths(files):
        if path.name.lower().endswith((".csv", ".csv.gz")):
            enc, sep = csv_format(path, encoding, delimiter)
            if (enc, sep) != ("utf-8", ","):
                console.print(f"{path}: read as {enc}, columns separated by {sep!r}", highlight=False, markup=False)


def _print_mapping_coverage(m, files: list[Path], encoding: str | None = None, delimiter: str | None = None) -> None:
    from features.io import expand_paths, read_raw

    first = expand_paths(files)[0]
    available = list(read_raw(first, encoding, delimiter).columns)
    console.print(f"mapping {m.source} → {m.contract.name} contract", highlight=False)
    for target, src in m.columns.items():
        mark = "ok " if src in available else "MISSING"
        console.print(f"  {mark} {target:22s} ← {src}", highlight=False, markup=False)
    for target, value in m.constants.items():
        console.print(f"  const {target:20s} = {value!r}", highlight=False, markup=False)
    unmapped = [f.name for f in m.contract.fields if f.name not in m.columns and f.name not in m.constants]
    console.print(f"  not mapped (left empty): {unmapped}", highlight=False)
    for name, rule in m.labels.items():
        mark = "ok " if rule.column in available else "MISSING"
        console.print(f"  {mark} label {name} ← {rule.column}", highlight=False, markup=False)
    unused = [c for c in available if c not in m.source_columns]
    if unused:
        console.print(f"  source columns not used: {unused}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("validate")(validate)
