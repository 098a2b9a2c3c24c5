"""Reading contract tables from CSV / Parquet files or folders, with an optional column mapping."""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import gzip
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.contracts import Contract, ContractError, ValidationReport, normalize_table
from features.mapping import ColumnMapping

SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")
DELIMITERS = (",", ";", "\t", "|")  # what a header is sniffed for when no delimiter is given
SAMPLE_BYTES = 1 << 20  # how much of a CSV is checked to decode before it is read


class LoadError(ValueError):
    """A file cannot be read (missing, corrupt, unsupported)."""


class NotTextError(LoadError):
    """A CSV that is not text in the encoding it was read as: ``detail`` says which byte and where,
    ``hint`` what to do about it on the command line (a page says it its own way)."""

    def __init__(self, detail: str, hint: str):
        super().__init__(f"{detail}; {hint}")
        self.detail, self.hint = detail, hint


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


def input_at(target: Path | None, inputs: Iterable[Path | None]) -> Path | None:
    """The input file that ``target`` (a file about to be written) is, links and hard links followed;
    None when it is none of them. ``inputs``: files, or folders (their files as :func:`expand_paths`
    lists them); one that cannot be listed is left to the reading that reports it."""
    if target is None or not target.is_file():
        return None
    for given in inputs:
        if given is None:
            continue
        try:
            files = expand_paths(given)
        except LoadError:
            continue
        same = next((f for f in files if os.path.samefile(target, f)), None)
        if same is not None:
            return same
    return None


def open_bytes(path: Path) -> Any:
    """A CSV's bytes, gunzipped when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def not_text_error(path: Path, encoding: str, exc: UnicodeDecodeError, data: bytes, explicit: bool) -> NotTextError:
    """Name the first byte that is not ``encoding`` text, by line and column, and say what to pass."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    byte = data[exc.start]
    hint = ("check --encoding" if explicit
            else "pass its encoding, e.g. --encoding latin-1 (ISO-8859-1) or --encoding cp1252")
    return NotTextError(f"{path}: is not {encoding} text: byte 0x{byte:02x} at line {line}, column {column} "
                        f"({exc.reason})", hint)


def csv_header(path: Path, encoding: str, explicit: bool) -> str:
    """The header line, after checking that the file's first MiB decodes as ``encoding``.

    ``explicit`` says the encoding was chosen by the user (the hint then says to check it).
    """
    with open_bytes(path) as f:
        data = f.read(SAMPLE_BYTES)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4 or len(data) < SAMPLE_BYTES:  # not a character cut by the sample's end
            raise not_text_error(path, encoding, exc, data, explicit) from exc
        text = data[:exc.start].decode(encoding)
    return text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""


def check_delimiter(path: Path, header: str, sep: str, n_columns: int) -> None:
    """A header read as one column that holds another delimiter was split with the wrong one."""
    others = [d for d in DELIMITERS if d != sep and d in header]
    if n_columns == 1 and others:
        raise LoadError(f"{path}: with columns separated by {sep!r} its header is one column, but it contains "
                        f"{others[0]!r}: pass --delimiter {others[0]!r} (or leave --delimiter out to detect it)")


def sniff_delimiter(header: str) -> str:
    """The candidate found most often in the header; a comma when none is (a one-column file)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the first candidate, comma first
    return best if counts[best] else ","


def parse_delimiter(value: str | None) -> str | None:
    """A ``--delimiter`` option: one character, or the words ``tab``/``\\t`` for a tab."""
    if value is None or value == "":
        return None
    if value.lower() in ("tab", "\\t"):
        return "\t"
    if len(value) != 1:
        raise LoadError(f"--delimiter must be one character or 'tab', got {value!r}")
    return value


def csv_format(path: Path, encoding: str | None = None, delimiter: str | None = None) -> tuple[str, str]:
    """``(encoding, delimiter)`` to read the CSV ``path`` with: UTF-8 and the sniffed delimiter by default.

    Raises :class:`LoadError` naming the first byte that is not ``encoding`` text, or the delimiter the
    header holds when it splits into one column with ``delimiter``; pandas errors (an empty file) pass.
    """
    enc = encoding or "utf-8"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise LoadError(f"unknown encoding {enc!r} (--encoding; e.g. utf-8, latin-1, cp1252)") from None
    header = csv_header(path, enc, explicit=encoding is not None)
    sep = delimiter or sniff_delimiter(header)
    columns = pd.read_csv(path, dtype=str, nrows=0, encoding=enc, sep=sep).columns
    check_delimiter(path, header, sep, len(columns))
    check_unique_columns(path, next(csv.reader([header], delimiter=sep), []))
    return enc, sep


def check_unique_columns(path: Path, names: Iterable[str]) -> None:
    """Raise :class:`LoadError` if a column name appears twice: a CSV reader renamed the second
    ``customs_value`` to ``customs_value.1`` and the first one won, without a word (Parquet: a traceback)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        key = str(name).strip()
        if key in seen:
            raise LoadError(f"{path}: column {key!r} appears twice (columns {seen[key]} and {i}): keep one")
        seen[key] = i


def parquet_columns(path: Path) -> list[str]:
    """A Parquet file's column names (checked unique, :func:`check_unique_columns`)."""
    import pyarrow.parquet as pq

    names = list(pq.read_schema(path).names)
    check_unique_columns(path, names)
    return names


#: how every CSV is read (validate, train, evaluate, score's chunks, the pages): cells as strings, so codes
#: keep their leading zeros; only an empty cell is missing. index_col=False: rows with one field more than
#: the header (a delimiter at the end of each row) made pandas take the first column as the index and shift
#: every column by one; an empty last field is dropped, one holding data is an error
#: (:func:`fields_past_header_refused`, as pandas only warns of the loss)
CSV_READ_OPTIONS: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""], "index_col": False}


@contextlib.contextmanager
def fields_past_header_refused(path: Path) -> Iterator[None]:
    """Around a ``pd.read_csv`` with :data:`CSV_READ_OPTIONS`: a row holding a value past the header's last
    column is a :class:`LoadError` (pandas drops the value with a ``ParserWarning``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            yield
        except pd.errors.ParserWarning:
            raise LoadError(f"{path}: rows hold more fields than the header names (a value past the last "
                            "column, or a delimiter inside an unquoted value)") from None


def csv_chunks(path: Path, rows: int, encoding: str, delimiter: str) -> Iterator[pd.DataFrame]:
    """A CSV file in chunks of ``rows``, read with :data:`CSV_READ_OPTIONS` and their checks, as
    :func:`read_raw` reads a whole file (batch scoring and the trend report read files this way)."""
    with pd.read_csv(path, chunksize=rows, encoding=encoding, sep=delimiter, **CSV_READ_OPTIONS) as reader:
        while True:
            with fields_past_header_refused(path):
                chunk = next(reader, None)
            if chunk is None:
                return
            yield chunk


def read_raw(path: Path, encoding: str | None = None, delimiter: str | None = None) -> pd.DataFrame:
    """One file as it is (CSV cells as strings so codes keep leading zeros).

    CSV files are read as ``encoding`` (default UTF-8) with ``delimiter`` (default: sniffed from the
    header among ``, ; tab |``), see :func:`csv_format`.
    """
    try:
        if path.name.endswith((".parquet", ".pq")):
            parquet_columns(path)
            return pd.read_parquet(path)
        if path.name.endswith((".csv", ".csv.gz")):
            enc, sep = csv_format(path, encoding, delimiter)
            with fields_past_header_refused(path):
                return pd.read_csv(path, encoding=enc, sep=sep, **CSV_READ_OPTIONS)
    except LoadError:
        raise
    except UnicodeDecodeError as exc:  # past the part csv_format checks
        raise NotTextError(f"{path}: is not {encoding or 'utf-8'} text past its first MiB ({str(exc)[:300]})",
                           "pass its encoding with --encoding") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})") from exc
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})") from exc
    raise LoadError(f"{path}: unsupported file type (use .csv or .parquet)")


@dataclass
class LoadedTable:
    frame: pd.DataFrame
    reports: list[ValidationReport]
    warnings: list[str] = dataclasses.field(default_factory=list)  # valid but most likely wrong (ColumnMapping.warnings)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def summary(self) -> str:
        return "\n".join(r.summary() for r in self.reports)


def load_table(paths: str | Path | Iterable[str | Path], contract: Contract,
               mapping: ColumnMapping | None = None, strict: bool = True, encoding: str | None = None,
               delimiter: str | None = None) -> LoadedTable:
    """Load, map and validate one or more files as one table (CSV ``encoding``/``delimiter``: :func:`read_raw`).

    With ``strict`` a :class:`ContractError` listing every problem of every file is raised;
    otherwise problems stay in the reports for the caller to act on. ``warnings``: what the mapping
    finds valid but most likely wrong, for the caller to print.
    """
    frames: list[pd.DataFrame] = []
    reports: list[ValidationReport] = []
    doubts: list[str] = []
    for path in expand_paths(paths):
        raw = read_raw(path, encoding, delimiter)
        if mapping is not None:
            raw = mapping.apply(raw)
            doubts += mapping.warnings(raw, source=str(path))
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
    loaded = LoadedTable(df, reports, doubts)
    if strict and not loaded.ok:
        bad = next(r for r in reports if not r.ok)
        merged = ValidationReport(contract.name, ", ".join(r.source for r in reports), rows=len(df))
        for r in reports:
            merged.problems.extend(r.problems)
            merged.unknown_values.update(r.unknown_values)
        raise ContractError(merged if len(reports) > 1 else bad)
    return loaded


#: a cell a spreadsheet (Excel, LibreOffice, Sheets) would run as a formula starts with one of these
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^([" + "".join(re.escape(c) for c in FORMULA_PREFIXES) + "])"


def spreadsheet_text(value: Any) -> Any:
    """A text cell of a CSV written for people: one a spreadsheet would run as a formula (``=HYPERLINK(…)``,
    ``@SUM(…)``, ``+cmd|…``) is written with a leading ``'``, shown as the text it is. Numbers and
    other values pass unchanged (a negative number is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_table(table: Any) -> Any:
    """:func:`spreadsheet_text` on every text column of a ``pyarrow.Table`` (same schema, for a CSV writer)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = pc.replace_substring_regex(column, _FORMULA_PATTERN, r"'\1")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)


def spreadsheet_frame(frame: Any) -> Any:
    """:func:`spreadsheet_text` on every text cell of a ``pandas.DataFrame`` (a copy, for ``to_csv``)."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object or str(out[name].dtype) in ("string", "str"):
            out[name] = out[name].map(spreadsheet_text)
    return out
