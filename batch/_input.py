"""Reading a manifest in fixed-size chunks: CSV or Parquet files, a file or a folder of them.

Chunk ``c`` of a file always holds its data rows ``c * chunk_rows + 1 .. (c + 1) * chunk_rows``
(1-based, header excluded), whatever the reader's own batching, so a resumed run cuts the input
exactly where the first run did.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import DICTIONARY_COLUMNS, keep_dictionaries
from features.io import LoadError, csv_chunks, csv_format, expand_paths, parquet_columns

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class InputFile:
    """One file of the manifest, checked at start (readable, rows known for Parquet)."""

    index: int
    path: Path
    kind: str  # "csv" | "parquet"
    size: int
    sha256: str
    rows: int | None  # known up front for Parquet only
    rows_estimate: int | None = None  # CSV: file size / bytes per line of the first lines (for the ETA)
    encoding: str = "utf-8"  # CSV only
    delimiter: str = ","  # CSV only

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": str(self.path), "kind": self.kind, "bytes": self.size, "sha256": self.sha256,
                               "rows": self.rows}
        if self.kind == "csv":
            doc.update(encoding=self.encoding, delimiter=self.delimiter)
        return doc


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise LoadError(f"{path}: unsupported file type (use .csv, .csv.gz or .parquet)")


def sha256_file(path: Path, block: int = 8 << 20) -> str:
    """The file's SHA-256, read in large blocks into one buffer: reading and hashing release the GIL, and
    each block is one hand-over (with 1 MiB blocks a run's model loading on its thread took the GIL
    back 50 times per 25 MiB manifest, and the digest took 0.15 s instead of 0.02 s)."""
    h = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _cannot_read(path: Path, exc: BaseException, what: str = "cannot be read") -> LoadError:
    msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return LoadError(f"{path}: {what} ({type(exc).__name__}: {msg})")


def inspect_manifest(paths: str | Path | list[str | Path] | list[Path], encoding: str | None = None,
                     delimiter: str | None = None) -> list[InputFile]:
    """Expand files/folders, check each file opens, and digest it (sha256 of its bytes).

    CSV files are read as ``encoding`` (default UTF-8) with ``delimiter`` (default: sniffed from
    the header among ``, ; tab |``); a file in another encoding is named with the offending byte.

    Paths are made absolute (not resolved: a link stays the name given): the output records them, and
    the workbench reads the declarations back from its own working folder (``--manifest in/…`` from the
    nightly job's folder was "no longer at in/…" there).
    """
    files = [p.absolute() for p in expand_paths(paths)]
    out: list[InputFile] = []
    for i, path in enumerate(files):
        kind = file_kind(path)
        rows: int | None = None
        enc, sep = encoding or "utf-8", delimiter or ","
        try:
            if kind == "parquet":
                parquet_columns(path)
                rows = pq.ParquetFile(path).metadata.num_rows
            else:
                enc, sep = csv_format(path, encoding, delimiter)
                cut = _cut_off_last_line(path, enc, sep)
                if cut is not None:
                    raise LoadError(f"{path}: {cut}")
        except LoadError:
            raise
        except Exception as exc:  # pyarrow/pandas raise many types for corrupt files
            raise _cannot_read(path, exc, "is corrupt or truncated and cannot be read") from exc
        size = path.stat().st_size
        est = rows if rows is not None else _estimate_csv_rows(path, size)
        out.append(InputFile(i, path, kind, size, sha256_file(path), rows, est, enc, sep))
    return out


def _cut_off_last_line(path: Path, encoding: str, delimiter: str, tail: int = 1 << 16) -> str | None:
    """Why a CSV file looks cut off, or None: it ends without a line break (allowed) *and* its last line
    holds fewer fields than the header. A manifest still being copied was scored with exit 0, its last
    row with the fields it happened to have and the rows not yet copied silently absent. A cut inside the
    last field, or a last line with a quote (its row may begin lines earlier), is not judged here."""
    if path.name.lower().endswith(".gz"):  # a cut gzip stream fails while it is read
        return None
    if not "\n,;|\t".encode(encoding).endswith(b"\n,;|\t"):  # not ASCII-compatible (UTF-16): not judged
        return None
    with path.open("rb") as f:
        header = f.readline()
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - tail))
        end = f.read()
    if not end or end.endswith((b"\n", b"\r")):
        return None
    start = end.rfind(b"\n")
    if start < 0 and size > tail:  # a last line longer than what was read
        return None
    last = end[start + 1:].decode(encoding, errors="replace")
    if '"' in last or start < 0:  # start < 0: the header is the only line
        return None
    fields = len(next(csv.reader([header.decode(encoding, errors="replace").rstrip("\r\n")], delimiter=delimiter)))
    found = len(last.split(delimiter))
    if found >= fields:
        return None
    return (f"ends without a line break, its last line holding {found} of the header's {fields} fields: the file "
            "looks cut off (still being copied?); score it once it is whole")


def header_names(file: InputFile) -> list[str]:
    """The column names of a manifest file as written (a CSV's header line, a Parquet file's schema)."""
    if file.kind == "parquet":
        return list(pq.read_schema(file.path).names)
    header = pd.read_csv(file.path, nrows=0, encoding=file.encoding, sep=file.delimiter)
    return [str(c) for c in header.columns]


def _estimate_csv_rows(path: Path, size: int, sample: int = 2000) -> int | None:
    if path.name.lower().endswith(".gz"):
        return None
    with path.open("rb") as f:
        f.readline()
        header = f.tell()
        lines = [f.readline() for _ in range(sample)]
    lines = [x for x in lines if x]
    if not lines:
        return 0
    per_row = sum(len(x) for x in lines) / len(lines)
    return max(len(lines), round((size - header) / per_row))


def manifest_digest(files: list[InputFile]) -> str:
    """One sha256 over the files' digests, in manifest order."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.path.name}\0{f.sha256}\n".encode())
    return h.hexdigest()


def iter_chunks(file: InputFile, chunk_rows: int, skip: set[int] | frozenset[int] = frozenset(),
                first_chunk: int = 0, last_chunk: int | None = None) -> Iterator[tuple[int, int, pd.DataFrame]]:
    """Yield ``(chunk_index, row_offset, frame)`` for chunks not in ``skip`` within the range.

    ``row_offset`` is the number of data rows before the chunk (row numbers are offset + 1, 2, …).
    Read errors (a file corrupted past its header, a malformed CSV line) become :class:`LoadError`.
    """
    reader = _iter_parquet if file.kind == "parquet" else _iter_csv
    try:
        yield from reader(file, chunk_rows, skip, first_chunk, last_chunk)
    except LoadError:
        raise
    except UnicodeDecodeError as exc:  # past the first MiB checked at start
        raise _cannot_read(file.path, exc, f"is not {file.encoding} text (further in than the part checked at "
                                           "start); pass its encoding with --encoding") from exc
    except pd.errors.ParserError as exc:
        raise _cannot_read(file.path, exc, f"is not a well-formed CSV with columns separated by "
                                           f"{file.delimiter!r} (--delimiter)") from exc
    except Exception as exc:
        raise _cannot_read(file.path, exc, "is corrupt or truncated (failed while reading)") from exc


def _iter_csv(file: InputFile, chunk_rows: int, skip: set[int] | frozenset[int], first_chunk: int,
              last_chunk: int | None) -> Iterator[tuple[int, int, pd.DataFrame]]:
    # read as validate and train read it (a delimiter ending every row shifted every column by one here only)
    for c, frame in enumerate(csv_chunks(file.path, chunk_rows, file.encoding, file.delimiter)):
        if last_chunk is not None and c > last_chunk:
            return
        if c < first_chunk or c in skip:
            continue
        yield c, c * chunk_rows, frame.reset_index(drop=True)


def _iter_parquet(file: InputFile, chunk_rows: int, skip: set[int] | frozenset[int], first_chunk: int,
                  last_chunk: int | None) -> Iterator[tuple[int, int, pd.DataFrame]]:
    # the key text columns come as Parquet's own dictionaries (no hashing of the values here, nor again
    # in the features, which keep them: features.keep_dictionaries); the frame gets them decoded
    schema = pq.read_schema(file.path)
    dictionary = [f.name for f in schema if f.name in DICTIONARY_COLUMNS
                  and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    pf = pq.ParquetFile(file.path, read_dictionary=dictionary or None)
    meta = pf.metadata
    n = meta.num_rows
    n_chunks = -(-n // chunk_rows)
    last = n_chunks - 1 if last_chunk is None else min(last_chunk, n_chunks - 1)
    wanted = [c for c in range(first_chunk, last + 1) if c not in skip]
    if not wanted:
        return
    # start at the row group holding the first wanted chunk: done chunks before it are not even read
    start_row = wanted[0] * chunk_rows
    rg_first, rg_start = 0, 0
    for g in range(meta.num_row_groups):
        g_rows = meta.row_group(g).num_rows
        if rg_start + g_rows > start_row:
            rg_first = g
            break
        rg_start += g_rows
    end_row = (last + 1) * chunk_rows
    want = set(wanted)
    pos = rg_start  # row index (0-based) of the next row the reader yields
    buf: list[pa.RecordBatch] = []
    buf_start = pos
    buf_rows = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=range(rg_first, meta.num_row_groups),
                                 use_pandas_metadata=True):
        buf.append(batch)
        buf_rows += batch.num_rows
        pos += batch.num_rows
        # emit every complete chunk held in the buffer
        while True:
            c = buf_start // chunk_rows if buf_start % chunk_rows == 0 else buf_start // chunk_rows + 1
            c_start = c * chunk_rows
            c_end = min(c_start + chunk_rows, n)
            if c_end > pos or c_start >= end_row:
                break
            table = pa.Table.from_batches(buf)
            if c in want:
                yield c, c_start, _decoded_frame(table.slice(c_start - buf_start, c_end - c_start), schema)
            rest = table.slice(c_end - buf_start)
            buf = rest.to_batches()
            buf_start, buf_rows = c_end, rest.num_rows
        if buf_start >= end_row:
            return


def _decoded_frame(table: pa.Table, schema: pa.Schema) -> pd.DataFrame:
    """The chunk as a frame with the file's own column types: dictionary-read text columns decoded, and
    each dictionary kept for the frame's life (a chunk spanning two row groups has two dictionaries:
    decoded alike, none kept)."""
    decoded: dict[str, tuple[pa.Array, pa.DictionaryArray]] = {}
    for i, field in enumerate(table.schema):
        if not pa.types.is_dictionary(field.type):
            continue
        column = table.column(i)
        dense = column.cast(schema.field(field.name).type)
        if column.num_chunks == 1:
            decoded[field.name] = (dense.chunk(0), column.chunk(0))
        table = table.set_column(i, schema.field(field.name), dense)
    frame = table.to_pandas()
    keep_dictionaries(frame, decoded)
    return frame
