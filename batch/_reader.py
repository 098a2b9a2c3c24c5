"""Finished batch outputs read back: the recent runs in a folder, and one run's ranked items.

An output is read as written (risk, lane, rank, selection, reasons, rule hits: nothing is scored
again). The declarations themselves are not in the output, only ``source_file``/``source_row``; they
are read again from the manifest files the run recorded, through the same reader, mapping and
contract as the run, and only when a file's sha256 still equals the one recorded (a changed or
missing file leaves its items without declaration fields, and says so).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from batch._input import InputFile, iter_chunks, sha256_file
from batch._output import METADATA_KEY, OutputPaths
from features.contracts import DECLARATION, normalize_table
from features.io import LoadError
from features.mapping import MappingError, load_mapping

OUTPUT_SUFFIXES = (".parquet", ".pq")
REQUIRED_COLUMNS = ("declaration_id", "risk_score", "rank", "lane", "selection", "selection_probability",
                    "percentile")


class OutputReadError(ValueError):
    """A batch output that cannot be listed or read; the message names the file and the problem."""


@dataclass(frozen=True)
class OutputListing:
    """One finished run in the folder (its scores file is published last, so it is whole)."""

    name: str  # the scores file's name inside the folder
    path: Path
    modified: dt.datetime  # when the scores file was published (UTC)
    rows: int | None = None
    model_name: str = ""
    model_version: str = ""
    finished: str = ""  # the run's own end time (ISO), from .meta.json
    problem: str = ""  # set when .meta.json cannot be read (the output may still open)


@dataclass
class BatchOutput:
    """One run's items in rank order, shaped as ``POST /v1/manifests/rank`` answers them."""

    path: Path
    metadata: dict[str, Any]  # .meta.json (or, if unreadable, the Parquet footer's copy)
    items: list[dict[str, Any]]
    declarations: pd.DataFrame  # contract columns of the items whose manifest file is unchanged
    notes: list[str] = field(default_factory=list)


def list_outputs(folder: str | Path, limit: int = 20) -> list[OutputListing]:
    """The finished batch outputs directly in ``folder``, newest first (a missing folder: none).

    An output is a ``.parquet``/``.pq`` file with its ``.meta.json`` beside it; the manifests, the
    checkpoints and temporaries (dot-names) beside them are not outputs."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith(".") or not path.name.lower().endswith(OUTPUT_SUFFIXES) or not path.is_file():
            continue
        if OutputPaths(path).meta.is_file():
            found.append((dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC), path.name, path))
    found.sort(reverse=True)
    # only the newest are read: a folder of a few years of nights lists as fast as one of a week
    return [_listing(path, OutputPaths(path).meta, modified) for modified, _, path in found[:limit]]


def _listing(path: Path, meta_path: Path, modified: dt.datetime) -> OutputListing:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        model = meta.get("model") or {}
        rows = (meta.get("summary") or {}).get("rows_scored")
        return OutputListing(path.name, path, modified, int(rows) if rows is not None else None,
                             str(model.get("name") or ""), str(model.get("version") or ""),
                             str(meta.get("finished") or ""))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        return OutputListing(path.name, path, modified, problem=f"{meta_path.name} cannot be read ({_short(exc)})")


def resolve_output(folder: str | Path, name: str) -> Path:
    """The output called ``name`` directly inside ``folder``; anything else (another folder, ``..``, a
    link leading out, a file that is not a finished output) is refused with :class:`OutputReadError`."""
    root = Path(folder).resolve()
    if (not name or not name.isprintable() or Path(name).name != name or name in (".", "..") or name.startswith(".")
            or "\\" in name):  # isprintable: a NUL byte would fail in the file system calls below
        raise OutputReadError(f"{name!r} is not the name of a batch output in the output folder")
    path = (root / name).resolve()
    if path.parent != root or not path.name.lower().endswith(OUTPUT_SUFFIXES):
        raise OutputReadError(f"{name!r} is not the name of a batch output in the output folder")
    if not path.is_file() or not OutputPaths(path).meta.is_file():
        raise OutputReadError(f"{name}: there is no finished batch output of that name in the output folder")
    return path


def read_output(path: str | Path, max_rows: int | None = None, with_declarations: bool = True) -> BatchOutput:
    """A batch output's items in rank order, with its metadata and (``with_declarations``) the
    declarations read again from its unchanged manifest files. Raises :class:`OutputReadError`."""
    path = Path(path)
    notes: list[str] = []
    try:
        pf = pq.ParquetFile(path)
        n = pf.metadata.num_rows
        if max_rows is not None and n > max_rows:
            raise OutputReadError(f"{path.name}: {n:,} rows; the workbench opens at most {max_rows:,} "
                                  "(read the Parquet file itself for larger runs)")
        missing = [c for c in REQUIRED_COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            raise OutputReadError(f"{path.name}: not a riskprof batch output (no column {', '.join(missing)})")
        table = pf.read()
        footer = json.loads((pf.schema_arrow.metadata or {}).get(METADATA_KEY.encode(), b"{}"))
    except OutputReadError:
        raise
    except Exception as exc:  # pyarrow raises many types for a corrupt or truncated file
        raise OutputReadError(f"{path.name}: is corrupt or truncated and cannot be read ({_short(exc)})") from exc
    metadata = _metadata(path, footer, notes)
    items = _items(path, table.to_pylist())
    decl = _declarations(items, table.column_names, metadata, notes) if with_declarations else _no_rows()
    return BatchOutput(path, metadata, items, decl, notes)


def _metadata(path: Path, footer: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    meta_path = OutputPaths(path).meta
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta
    except (OSError, ValueError) as exc:
        notes.append(f"{meta_path.name} cannot be read ({_short(exc)}); the run's details come from the "
                     "Parquet file's footer")
        return footer


def _items(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for i, row in enumerate(rows):
        try:
            items.append(_item(row))
        except (TypeError, ValueError, KeyError) as exc:
            raise OutputReadError(f"{path.name}: row {i + 1} ({row.get('declaration_id')!r}) cannot be read "
                                  f"({type(exc).__name__}: {_short(exc)})") from exc
    items.sort(key=lambda it: it["rank"])
    return items


def _item(row: dict[str, Any]) -> dict[str, Any]:
    """One output row as ``POST /v1/manifests/rank`` gives an item (reasons parsed from their JSON)."""
    pct = row.get("percentile")
    return {
        "declaration_id": str(row["declaration_id"]), "risk_score": float(row["risk_score"]),
        "percentile": None if pct is None else round(float(pct), 3), "lane": str(row["lane"]),
        "rank": int(row["rank"]), "selection": str(row["selection"]),
        "selection_probability": float(row["selection_probability"]),
        "reasons": json.loads(row["reasons"]) if row.get("reasons") else [],
        "rule_hits": list(row.get("rule_hits") or []), "unseen_values": [],
        "source_file": row.get("source_file"), "source_row": row.get("source_row"),
    }


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame({"declaration_id": pd.Series([], dtype=object)})


def _declarations(items: list[dict[str, Any]], columns: list[str], metadata: dict[str, Any],
                  notes: list[str]) -> pd.DataFrame:
    """The items' declarations as the run read them: each recorded manifest file, if unchanged."""
    if "source_file" not in columns or "source_row" not in columns:
        notes.append("this output does not say which manifest rows it scored: declaration fields are not shown")
        return _no_rows()
    mapping = _mapping(metadata, notes)
    if mapping is False:
        return _no_rows()
    wanted: dict[str, list[int]] = {}
    for it in items:
        if it["source_file"] is not None and it["source_row"] is not None:
            wanted.setdefault(str(it["source_file"]), []).append(int(it["source_row"]))
    recorded = {str(f.get("path")): f for f in (metadata.get("input") or {}).get("files") or []}
    frames = []
    for source, rows in wanted.items():
        frame = _source_rows(source, rows, recorded.get(source), mapping, notes)
        if frame is not None:
            frames.append(frame)
    if not frames:
        return _no_rows()
    out = pd.concat(frames, ignore_index=True)
    return out.drop_duplicates("declaration_id", keep="first").reset_index(drop=True)


def _mapping(metadata: dict[str, Any], notes: list[str]) -> Any:
    """The run's column mapping if it is unchanged; None without one; False when it cannot be used."""
    doc = metadata.get("mapping")
    if not doc:
        return None
    mp = Path(str(doc.get("path")))
    try:
        if sha256_file(mp) != doc.get("sha256"):
            notes.append(f"the column mapping {mp.name} changed since the run: declaration fields are not shown")
            return False
        return load_mapping(mp)
    except (OSError, MappingError, ValueError) as exc:
        notes.append(f"the column mapping {mp.name} cannot be read ({_short(exc)}): declaration fields are not shown")
        return False


def _source_rows(source: str, rows: list[int], recorded: dict[str, Any] | None, mapping: Any,
                 notes: list[str]) -> pd.DataFrame | None:
    path = Path(source)
    name = path.name
    if recorded is None:
        notes.append(f"{name}: not among the run's recorded inputs; its declaration fields are not shown")
        return None
    try:
        if not path.is_file():
            notes.append(f"{name}: the manifest file is no longer at {path}; its declaration fields are not shown")
            return None
        if sha256_file(path) != recorded.get("sha256"):
            notes.append(f"{name}: the manifest file changed since it was scored; its declaration fields are "
                         "not shown")
            return None
        kind = str(recorded.get("kind") or "parquet")
        file = InputFile(0, path, kind, 0, str(recorded.get("sha256")), None,
                         encoding=str(recorded.get("encoding") or "utf-8"),
                         delimiter=str(recorded.get("delimiter") or ","))
        # one chunk holding every row: row numbers are the run's (1-based, header excluded)
        raw = pd.concat([f for _, _, f in iter_chunks(file, 1 << 30)], ignore_index=True)
        if mapping is not None:
            raw = mapping.apply(raw, labels=False)  # as the run read it
        frame, _ = normalize_table(raw, DECLARATION, source=name)
    except (LoadError, MappingError, OSError, ValueError) as exc:
        notes.append(f"{name}: cannot be read again ({_short(exc)}); its declaration fields are not shown")
        return None
    positions = [r - 1 for r in rows if 0 < r <= len(frame)]
    return frame.iloc[positions]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
