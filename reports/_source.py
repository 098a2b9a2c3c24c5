"""Seizure input for the reports: validate through the SEIZURE contract, expose it to DuckDB.

Files are validated in chunks (``normalize_table`` with a row offset, so problems keep their file
row numbers) and the canonical chunks are streamed into a temporary Parquet file that DuckDB then
queries. Memory therefore depends on the chunk size, not on the number of rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contracts import SEIZURE, ContractError, Problem, ValidationReport, normalize_table
from features.io import LoadError, csv_chunks, csv_format, expand_paths
from features.mapping import ColumnMapping
from features.reference import countries

CHUNK_ROWS = 500_000
SeizureInput = pd.DataFrame | str | Path | Sequence[str | Path]

_ARROW_TYPES = {
    "date": pa.timestamp("ns"),
    "float": pa.float64(),
    "int": pa.float64(),
    "bool": pa.bool_(),
}


def _arrow_schema() -> pa.Schema:
    return pa.schema([(f.name, _ARROW_TYPES.get(f.kind, pa.string())) for f in SEIZURE.fields])


def _iter_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Raw chunks of one file, read as :func:`features.io.read_raw` reads whole files."""
    try:
        if path.name.endswith((".parquet", ".pq")):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        elif path.name.endswith((".csv", ".csv.gz")):
            # read_raw's options and checks (a delimiter sniffed from the header, a row ending in a delimiter
            # not shifting every column, a value past the header refused): pandas' defaults did neither
            yield from csv_chunks(path, rows, *csv_format(path, None, None))
        else:
            raise LoadError(f"{path}: unsupported file type (use .csv or .parquet)")
    except LoadError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})") from exc


def _as_paths(seizures: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(seizures, str | Path):
        return expand_paths(seizures)
    return expand_paths(list(seizures))


def validate_files(paths: Iterable[Path], out: Path, mapping: ColumnMapping | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> int:
    """Validate seizure files chunk by chunk into one canonical Parquet file; return the row count.

    Raises :class:`ContractError` listing every problem of every file.
    """
    schema = _arrow_schema()
    columns = [f.name for f in SEIZURE.fields]
    reports: list[ValidationReport] = []
    total = 0
    with pq.ParquetWriter(out, schema) as writer:
        for path in paths:
            file_report = ValidationReport(SEIZURE.name, str(path))
            offset = 0
            for raw in _iter_chunks(path, chunk_rows):
                if mapping is not None:
                    raw = mapping.apply(raw)
                frame, report = normalize_table(raw, SEIZURE, source=str(path), row_offset=offset)
                offset += len(raw)
                file_report.problems.extend(report.problems)
                if file_report.ok:  # stop writing once invalid, but keep collecting problems
                    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
                    writer.write_table(table.cast(schema))
            file_report.rows = offset
            total += offset
            reports.append(file_report)
    problems = [p for r in reports for p in r.problems]
    if not problems:
        with duckdb.connect() as con:
            dups = con.execute(
                f"SELECT seizure_id FROM read_parquet('{_sql_path(out)}') "
                "GROUP BY seizure_id HAVING count(*) > 1 ORDER BY seizure_id LIMIT 50"
            ).fetchall()
        if dups:
            reports[-1].problems.extend(
                Problem(None, SEIZURE.key, d[0], "keys unique across all input rows", "all files") for d in dups
            )
    if any(not r.ok for r in reports):
        if len(reports) == 1:
            raise ContractError(reports[0])
        merged = ValidationReport(SEIZURE.name, ", ".join(r.source for r in reports), rows=total)
        for r in reports:
            merged.problems.extend(r.problems)
        raise ContractError(merged)
    return total


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(f"'{_sql_path(p)}'" for p in paths) + "]"


@contextmanager
def seizure_relation(seizures: SeizureInput, mapping: ColumnMapping | None = None,
                     validate: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection holding the view ``raw_seizures`` (canonical columns) and ``country_regions``.

    ``validate=False`` trusts files already in canonical form (e.g. written by the generator) and
    queries them directly; data frames are always validated.
    """
    con = duckdb.connect()
    ref = countries()[["alpha2", "region"]]
    con.register("_country_regions_df", ref)
    con.execute("CREATE TABLE country_regions AS SELECT alpha2, region FROM _country_regions_df")
    con.unregister("_country_regions_df")
    try:
        if isinstance(seizures, pd.DataFrame):
            frame, report = normalize_table(seizures, SEIZURE, source="seizures")
            if not report.ok:
                raise ContractError(report)
            con.register("raw_seizures", frame)
            yield con
            return
        paths = _as_paths(seizures)
        if not validate:
            parquet = [p for p in paths if p.name.endswith((".parquet", ".pq"))]
            csv = [p for p in paths if p not in parquet]
            parts = []
            if parquet:
                parts.append(f"SELECT * FROM read_parquet({_sql_list(parquet)}, union_by_name=true)")
            if csv:
                parts.append(f"SELECT * FROM read_csv({_sql_list(csv)}, header=true, union_by_name=true)")
            con.execute("CREATE VIEW raw_seizures AS " + " UNION ALL BY NAME ".join(parts))
            yield con
            return
        with tempfile.TemporaryDirectory(prefix="riskprof-report-") as tmp:
            canonical = Path(tmp) / "seizures.parquet"
            validate_files(paths, canonical, mapping)
            con.execute(f"CREATE VIEW raw_seizures AS SELECT * FROM read_parquet('{_sql_path(canonical)}')")
            yield con
            con.close()
    finally:
        con.close()
