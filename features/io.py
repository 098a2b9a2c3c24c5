"""Reading contract tables from CSV / Parquet files or folders, with an optional column mapping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.contracts import Contract, ContractError, ValidationReport, normalize_table
from features.mapping import ColumnMapping

SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")


class LoadError(ValueError):
    """A file cannot be read (missing, corrupt, unsupported)."""


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files and folders → sorted list of data files."""
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(SUFFIXES))
            if not files:
                raise LoadError(f"folder {p} holds no .csv or .parquet files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise LoadError(f"no such file or folder: {p}")
    return out


def read_raw(path: Path) -> pd.DataFrame:
    """One file as it is (CSV cells as strings so codes keep leading zeros)."""
    try:
        if path.name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if path.name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})") from exc
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})") from exc
    raise LoadError(f"{path}: unsupported file type (use .csv or .parquet)")


@dataclass
class LoadedTable:
    frame: pd.DataFrame
    reports: list[ValidationReport]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def summary(self) -> str:
        return "\n".join(r.summary() for r in self.reports)


def load_table(paths: str | Path | Iterable[str | Path], contract: Contract,
               mapping: ColumnMapping | None = None, strict: bool = True) -> LoadedTable:
    """Load, map and validate one or more files as one table.

    With ``strict`` a :class:`ContractError` listing every problem of every file is raised;
    otherwise problems stay in the reports for the caller to act on.
    """
    frames: list[pd.DataFrame] = []
    reports: list[ValidationReport] = []
    for path in expand_paths(paths):
        raw = read_raw(path)
        if mapping is not None:
            raw = mapping.apply(raw)
        labels = [c for c in raw.columns if c.startswith("label_")]
        frame, report = normalize_table(raw, contract, source=str(path))
        for c in labels:
            frame[c] = raw[c].astype(bool).to_numpy()
        frames.append(frame)
        reports.append(report)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    if contract.key in df.columns and len(frames) > 1:
        dup = df[contract.key].duplicated() & df[contract.key].notna()
        if dup.any():
            from features.contracts import Problem

            reports[-1].problems.extend(
                Problem(None, contract.key, v, "keys unique across all input files", "all files")
                for v in df.loc[dup, contract.key].head(50)
            )
    loaded = LoadedTable(df, reports)
    if strict and not loaded.ok:
        bad = next(r for r in reports if not r.ok)
        merged = ValidationReport(contract.name, ", ".join(r.source for r in reports), rows=len(df))
        for r in reports:
            merged.problems.extend(r.problems)
            merged.unknown_values.update(r.unknown_values)
        raise ContractError(merged if len(reports) > 1 else bad)
    return loaded
