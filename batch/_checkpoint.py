"""The checkpoint of a run: a folder of part files written atomically, one per input chunk.

Layout of ``<out>.ckpt/``::

    state.json                      fingerprint of the run + the model version pinned at its start
    profiles.json                   the risk profiles and watch lists pinned at its start (if any): their
                                    definitions, or their ids and versions when the serving store keeps them
    rejects-FFFFF-CCCCCC.arrow      rows of chunk CCCCCC of file FFFFF that broke the contract
    part-FFFFF-CCCCCC.arrow         the chunk's scores (with risk profiles, its rule hits too); written
                                    last, so its presence means "done"
    pass1.json                      every chunk is done (pass 2 may start without re-reading input)

Every file is written to a temporary name, flushed to disk and renamed, so a run killed at any
instant leaves only whole files behind (and temporaries, which the next run removes).

The chunk files are Arrow IPC files, uncompressed: they live for one run and are read once by pass
2, so encoding them is wasted work. A 100k-row part is written in ~2 ms and read in ~1 ms, where
Parquet with zstd took ~16 and ~10 ms (at 1 M rows with the product's model, ~0.15 s of a ~3.5 s
run); they take ~3 MiB per 100k rows on disk instead of ~1.2 MiB. A checkpoint of the Parquet
layout (state version 1), or of rule hits kept in files of their own (2), is not resumed: the run
starts afresh and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

STATE_VERSION = 3  # 1: Parquet chunk files; 2: rule hits in a file of their own
_PART = re.compile(r"^part-(\d{5})-(\d{6})\.arrow$")

#: a part's list column kept in a file of its own, flat: one row per element (the part's row, then the
#: element's fields). Most items match no risk profile, and Parquet writes a nested list of (mostly
#: empty) lists at ~14 ms per 100k rows where the flat hits take ~3.5 ms (and read in half the time);
#: :meth:`Checkpoint.read_part` rebuilds the column as it was (empty lists included)
def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then fsync and rename over ``path``: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def shallow_json(doc: Any, depth: int = 2, _level: int = 0) -> str:
    """``doc`` as JSON with its first ``depth`` levels of objects indented (a key per line) and
    whatever lies deeper on one line each. ``json.dumps(indent=…)`` runs Python's own encoder over
    every value: a run's ``.meta.json`` naming 1,000 pinned profile versions took 43 ms to indent in
    full, ~2 % of a 400k-row run; the C encoder writes each deeper value in a tenth of that."""
    if not isinstance(doc, dict) or not doc or _level >= depth:
        return json.dumps(doc, sort_keys=True, default=str)
    pad = "  " * (_level + 1)
    items = [f"{pad}{json.dumps(str(k))}: {shallow_json(doc[k], depth, _level + 1)}"
             for k in sorted(doc, key=str)]
    return "{\n" + ",\n".join(items) + "\n" + "  " * _level + "}"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    text = shallow_json(doc) + "\n"

    def write(p: Path) -> None:
        p.write_text(text)

    atomic_write(path, write)


#: string columns whose values are (nearly) all distinct: written without a dictionary
UNIQUE_COLUMNS = ("declaration_id", "reasons")


def dictionary_columns(schema: pa.Schema, unique: tuple[str, ...] = UNIQUE_COLUMNS) -> list[str]:
    """The Parquet column paths to dictionary-encode: string columns whose values repeat (lanes, file
    names, reject reasons, rule kinds and ids). Ids, JSON reasons and numbers are left plain: Parquet's
    default dictionary on every column hashes unique values for nothing and makes zstd slower and the
    file larger (a 100k-row part: 26 → 16 ms, 1.5 → 1.2 MiB; the output: 44 → 28 ms, 3.0 → 2.0 MiB)."""
    out: list[str] = []

    def visit(path: str, t: pa.DataType) -> None:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            out.append(path)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            visit(f"{path}.list.element", t.value_type)
        elif pa.types.is_struct(t):
            for f in t:
                visit(f"{path}.{f.name}", f.type)

    for f in schema:
        if f.name not in unique:
            visit(f.name, f.type)
    return out


def write_arrow(path: Path, table: pa.Table, metadata: dict[str, str] | None = None) -> None:
    """``table`` as an uncompressed Arrow IPC file, atomically (the checkpoint's chunk files)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})

    def write(p: Path) -> None:
        with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    atomic_write(path, write)


def read_arrow(path: Path, columns: list[str] | None = None) -> pa.Table:
    """An Arrow IPC file written by :func:`write_arrow` (only ``columns``, when given), read into
    memory of its own: the checkpoint folder is removed while its tables may still live."""
    with pa.OSFile(str(path), "rb") as source:
        table = pa.ipc.open_file(source).read_all()
    return (table.select(columns) if columns is not None else table).combine_chunks()


def read_arrow_schema(path: Path) -> pa.Schema:
    """The schema (and its metadata) of an Arrow IPC file, without reading its rows."""
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).schema


@dataclass
class Checkpoint:
    root: Path

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def part_path(self, file_index: int, chunk: int) -> Path:
        return self.root / f"part-{file_index:05d}-{chunk:06d}.arrow"

    def rejects_path(self, file_index: int, chunk: int) -> Path:
        return self.root / f"rejects-{file_index:05d}-{chunk:06d}.arrow"

    # ---- state -----------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc if isinstance(doc, dict) and doc.get("version") == STATE_VERSION else None

    def start(self, fingerprint: dict[str, Any], pinned: dict[str, Any], profiles: dict[str, Any] | None = None) -> None:
        """A fresh checkpoint (any previous one is discarded); ``profiles``: the definitions of the risk
        profiles pinned at the start, which a resumed run applies whatever the store says by then."""
        self.discard()
        self.root.mkdir(parents=True)
        if profiles is not None:  # before the state: a state on disk means its profiles are too
            # compact: 100,000 watch-list entries take 0.7 s to indent, a tenth of that without
            text = json.dumps(profiles, separators=(",", ":"), ensure_ascii=False, default=str)
            def write(p: Path) -> None:
                p.write_text(text, encoding="utf-8")

            atomic_write(self.profiles_path, write)
        write_json(self.state_path, {"version": STATE_VERSION, "fingerprint": fingerprint, "model": pinned,
                                     "profiles": profiles is not None})

    @property
    def profiles_path(self) -> Path:
        return self.root / "profiles.json"

    def read_profiles(self) -> dict[str, Any] | None:
        """The profile definitions pinned at the start, or None (the run applies none)."""
        state = self.read_state()
        if not state or not state.get("profiles"):
            return None
        doc: dict[str, Any] = json.loads(self.profiles_path.read_text(encoding="utf-8"))
        return doc

    def clean_temporaries(self) -> None:
        for p in self.root.glob(".*.tmp-*"):
            p.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the checkpoint. The state goes first: a run killed halfway through the removal leaves
        a folder without state, which the next run discards whole, never a state beside a part whose
        rejects are already gone."""
        if self.root.exists():
            self.state_path.unlink(missing_ok=True)
            shutil.rmtree(self.root)

    # ---- parts -----------------------------------------------------------------------------
    def done(self) -> dict[int, set[int]]:
        """file index → chunk indices whose part file exists."""
        out: dict[int, set[int]] = {}
        for p in self.root.iterdir():
            m = _PART.match(p.name)
            if m:
                out.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        return out

    def parts(self) -> list[tuple[int, int]]:
        return sorted((f, c) for f, cs in self.done().items() for c in cs)

    def save_chunk(self, file_index: int, chunk: int, scored: pa.Table, rejects: pa.Table,
                   stats: dict[str, int]) -> None:
        """Rejects first, scores last: a part file on disk means its rejects are on disk too. The rule
        hits stay inside the part: in Arrow IPC a nested column is its buffers as they are (a file of
        their own, flat, paid for Parquet's nesting and cost a third file and fsync per chunk)."""
        meta = {"riskprof.chunk": json.dumps(stats, sort_keys=True)}
        write_arrow(self.rejects_path(file_index, chunk), rejects)
        write_arrow(self.part_path(file_index, chunk), scored, meta)

    def read_part(self, file_index: int, chunk: int) -> pa.Table:
        with _unreadable_as(file_index, chunk, self.part_path(file_index, chunk)):
            return read_arrow(self.part_path(file_index, chunk))

    def read_part_columns(self, file_index: int, chunk: int, columns: list[str]) -> pa.Table:
        with _unreadable_as(file_index, chunk, self.part_path(file_index, chunk)):
            return read_arrow(self.part_path(file_index, chunk), columns)

    def read_rejects(self, file_index: int, chunk: int) -> pa.Table:
        with _unreadable_as(file_index, chunk, self.rejects_path(file_index, chunk)):
            return read_arrow(self.rejects_path(file_index, chunk))

    def chunk_stats(self, file_index: int, chunk: int) -> dict[str, int]:
        with _unreadable_as(file_index, chunk, self.part_path(file_index, chunk)):
            md = read_arrow_schema(self.part_path(file_index, chunk)).metadata or {}
            stats: dict[str, int] = json.loads(md[b"riskprof.chunk"])
            if not isinstance(stats, dict) or not all(isinstance(stats.get(k), int) for k in ("rows", "rejected")):
                raise ValueError("no chunk statistics in its metadata")
            return stats

    def drop_unreadable(self) -> list[str]:
        """Remove each chunk whose part or rejects file cannot be opened (truncated, damaged, missing), so
        that pass 1 scores it again; returns what was wrong, one line per chunk. Each file's footer and
        metadata are read, not its rows (a whole part is read in pass 2, which drops it as here if that
        fails: :class:`PartUnreadable`)."""
        problems = []
        for f, c in self.parts():
            try:
                self.chunk_stats(f, c)
                with _unreadable_as(f, c, self.rejects_path(f, c)):
                    read_arrow_schema(self.rejects_path(f, c))
            except PartUnreadable as exc:
                self.drop_chunk(f, c)
                problems.append(str(exc))
        return problems

    def drop_chunk(self, file_index: int, chunk: int) -> None:
        """Forget a chunk (its part first: the part's presence means "done"); pass 1 must run again."""
        self.pass1_path.unlink(missing_ok=True)
        self.part_path(file_index, chunk).unlink(missing_ok=True)
        self.rejects_path(file_index, chunk).unlink(missing_ok=True)

    @property
    def pass1_path(self) -> Path:
        return self.root / "pass1.json"

    def mark_pass1_done(self, parts: list[tuple[int, int]]) -> None:
        write_json(self.pass1_path, {"parts": [list(p) for p in parts]})

    def pass1_parts(self) -> list[tuple[int, int]] | None:
        """The parts pass 1 wrote, if it finished (and they are all still there), else None."""
        try:
            doc = json.loads(self.pass1_path.read_text())
            parts = [(int(f), int(c)) for f, c in doc["parts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return parts if set(parts) == set(self.parts()) else None


class PartUnreadable(Exception):
    """A chunk's part or rejects file cannot be read: the chunk must be scored again."""

    def __init__(self, file_index: int, chunk: int, path: Path, reason: str):
        super().__init__(f"{path.name} cannot be read ({reason})")
        self.file_index, self.chunk = file_index, chunk


@contextmanager
def _unreadable_as(file_index: int, chunk: int, path: Path) -> Iterator[None]:
    """Any failure to read a chunk file (missing, truncated, not Arrow, no stats) as :class:`PartUnreadable`:
    a damaged checkpoint made every resume fail with a pyarrow traceback."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            reason = "missing"
        raise PartUnreadable(file_index, chunk, path, reason) from exc
