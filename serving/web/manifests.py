"""An uploaded manifest: read and checked as batch reads files, ranked once, then sliced per page.

Reading goes through ``features`` (``read_raw``, a column mapping, ``normalize_table``: the batch
input path), and the records through the API's own validation and ``ScoringService.rank``, so the
page ranks exactly what ``POST /v1/manifests/rank`` would. The ranked result stays in the session;
filters and pages are list slices of it (no query per row).

A nightly batch output is opened into the same :class:`RankedManifest` without scoring again: its
items are read as the run wrote them (``batch.read_output``), so the pages do not care where a
ranking came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from batch import OutputListing, OutputReadError, list_outputs, read_output, resolve_output
from features.contracts import DECLARATION, TRANSIT_SEP, normalize_table
from features.io import LoadError, NotTextError, read_raw, spreadsheet_text
from features.mapping import ColumnMapping, MappingError, load_mapping
from serving.errors import InputError
from serving.parsing import validate_records

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
MAX_PROBLEMS_SHOWN = 20
MAX_UNPACKED_BYTES = 32 * 1024 * 1024  # what a compressed upload may unpack to (the app passes its body limit)
CSV_COLUMNS = ("rank", "declaration_id", "risk_score", "percentile", "lane", "selection", "office_id",
               "conveyance", "route", "hs_code", "goods_description", "customs_value", "currency",
               "top_reasons", "profile_hits")


class ManifestProblem(ValueError):
    """A manifest the page cannot rank; ``lines`` name row and column for the officer."""

    def __init__(self, message: str, lines: Sequence[str] = (), title: str = "The file could not be ranked",
                 status: int = 422):
        super().__init__(message)
        self.message = message
        self.lines = list(lines)
        self.title = title
        self.status = status


def mapping_choices() -> dict[str, Path]:
    """The column mappings under ``examples/`` (name → file), offered on the upload form."""
    if not EXAMPLES.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(EXAMPLES.glob("*/mapping.yaml"))}


#: the text encodings a CSV manifest may be uploaded in (the upload form's choices; Parquet needs none)
ENCODINGS: dict[str, str] = {
    "utf-8": "UTF-8 (the default)", "cp1252": "Windows-1252 (Western European)", "latin-1": "ISO-8859-1 (Latin-1)",
    "cp1250": "Windows-1250 (Central European)", "cp1251": "Windows-1251 (Cyrillic)", "cp1256": "Windows-1256 (Arabic)",
    "gb18030": "GB 18030 (Chinese)", "cp949": "CP949 (Korean)", "shift_jis": "Shift JIS (Japanese)",
    "utf-16": "UTF-16",
}


def read_manifest(data: bytes, filename: str, mapping_name: str | None, max_items: int,
                  encoding: str | None = None, max_bytes: int = MAX_UNPACKED_BYTES) -> list[dict[str, Any]]:
    """Uploaded bytes → validated declaration records (as the API receives them), or ManifestProblem.
    ``encoding``: one of :data:`ENCODINGS` for a CSV (default UTF-8). ``max_bytes``: the most a
    compressed upload (a .csv.gz, a Parquet file's pages) may unpack to; larger is refused unread."""
    name = Path(filename or "").name.lower()
    if not name.endswith(SUFFIXES):
        raise ManifestProblem(f"{filename or 'the file'}: choose a .csv, .csv.gz or .parquet file")
    if not data:
        raise ManifestProblem(f"{filename}: the file is empty")
    if encoding and encoding not in ENCODINGS:
        raise ManifestProblem(f"unknown text encoding {encoding!r}; choose one of the list")
    mapping = _mapping(mapping_name)
    if name.endswith(".gz"):  # unpacked here, up to the limit: read_raw would unpack all of it
        data, name = _gunzip(data, filename, max_bytes), name[:-3]
    with tempfile.TemporaryDirectory(prefix="riskprof-upload-") as tmp:
        path = Path(tmp) / ("manifest" + name[name.index("."):] if "." in name else "manifest.csv")
        path.write_bytes(data)
        if name.endswith((".parquet", ".pq")):
            _check_parquet_size(path, filename, max_items, max_bytes)
        try:
            raw = read_raw(path, encoding=encoding or None)
        except NotTextError as exc:  # the command line's hint (--encoding) is a field of the form here
            raise ManifestProblem(f"{exc.detail.replace(str(path), filename)}; choose the file's text encoding "
                                  "under “Text encoding” and upload it again") from None
        except LoadError as exc:
            raise ManifestProblem(str(exc).replace(str(path), filename)) from None
    if not len(raw):  # it said "row ?, column body: an empty list"
        raise ManifestProblem(f"{filename}: the file holds no declarations (a header only); nothing was ranked")
    if len(raw) > max_items:
        raise ManifestProblem(f"{filename}: {len(raw):,} rows; the workbench ranks at most {max_items:,} "
                              "(use `riskprof score` for larger manifests)")
    if mapping is not None:
        try:
            raw = mapping.apply(raw, labels=False)  # ranking reads no label: new rows have none
        except MappingError as exc:
            raise ManifestProblem(f"{filename}: {exc}") from None
    frame, report = normalize_table(raw, DECLARATION, source=filename)
    if report.problems:
        lines = [_problem_line(p) for p in report.problems[:MAX_PROBLEMS_SHOWN]]
        more = len(report.problems) - len(lines)
        if more > 0:
            lines.append(f"… and {more} more problems")
        raise ManifestProblem(f"{filename}: {len(report.problems)} problems in {len(report.bad_rows) or 'the'} "
                              f"row{'s' if len(report.bad_rows) != 1 else ''}; nothing was ranked", lines)
    records = frame_records(frame)
    try:
        return validate_records(records, "declaration", max_items)[0]
    except InputError as exc:
        lines = [f"row {p.item + 1 if p.item is not None else '?'}, column {p.field}: {p.message}"
                 for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
        raise ManifestProblem(f"{filename}: the declarations break the contract; nothing was ranked", lines) from None


def _too_large(filename: str, max_bytes: int) -> ManifestProblem:
    return ManifestProblem(f"{filename}: unpacks to more than {max_bytes:,} bytes, the most the workbench reads "
                           "(use `riskprof score` for larger manifests)", title="The file is too large", status=413)


def _gunzip(data: bytes, filename: str, max_bytes: int) -> bytes:
    """A gzip file's contents, or :class:`ManifestProblem` as soon as they pass ``max_bytes`` (read at most
    one byte past the limit: never the whole of what a small upload may unpack to)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            out = unpacked.read(max_bytes + 1)
    except EOFError:
        raise ManifestProblem(f"{filename}: is not a complete gzip file (truncated?)") from None
    except (OSError, zlib.error) as exc:
        raise ManifestProblem(f"{filename}: is not a gzip file ({exc})") from None
    if len(out) > max_bytes:
        raise _too_large(filename, max_bytes)
    return out


def _check_parquet_size(path: Path, filename: str, max_items: int, max_bytes: int) -> None:
    """Rows and unpacked bytes from the Parquet footer: a file over the limits is refused before a row
    is decoded (a few KB of repeated values can hold millions of rows). An unreadable footer is left to
    :func:`read_raw`, which names it."""
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - pyarrow raises many types; read_raw reports the file
        return
    if meta.num_rows > max_items:
        raise ManifestProblem(f"{filename}: {meta.num_rows:,} rows; the workbench ranks at most {max_items:,} "
                              "(use `riskprof score` for larger manifests)")
    unpacked = sum(meta.row_group(g).column(c).total_uncompressed_size
                   for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    if unpacked > max_bytes:
        raise _too_large(filename, max_bytes)


def _mapping(name: str | None) -> ColumnMapping | None:
    if not name:
        return None
    choices = mapping_choices()
    if name not in choices:
        raise ManifestProblem(f"unknown column mapping {name!r}; choose one of {sorted(choices)} or none")
    return load_mapping(choices[name])


def _problem_line(p: Any) -> str:
    where = f"row {p.row}" if p.row is not None else "the whole file"
    value = "" if p.value is None else f" (value {str(p.value)[:60]!r})"
    return f"{where}, column {p.column}: expected {p.expected}{value}"


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A normalized declaration table → records as a client sends them (ISO dates, lists, no missing)."""
    columns = [c for c in DECLARATION.columns if c in frame.columns]
    out: list[dict[str, Any]] = []
    for row in frame[columns].to_dict(orient="records"):
        item: dict[str, Any] = {}
        for k, v in row.items():
            k = str(k)
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
                continue
            if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
                v = v.strftime("%Y-%m-%d")
            elif k == "transit_countries":
                v = [c for c in str(v).split(TRANSIT_SEP) if c]
            elif hasattr(v, "item"):
                v = v.item()
            item[k] = v
        out.append(item)
    return out


@dataclass
class RankedManifest:
    """One ranking: the service's answer joined with the declarations, in rank order."""

    id: str
    filename: str
    created: dt.datetime
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: str = "upload"  # "upload" (ranked here) | "batch" (a batch output, read as written)
    notes: list[str] = field(default_factory=list)  # what the page should say about the source
    source_key: str = ""  # a batch output's file and publication time: opened again, the same ranking

    @classmethod
    def build(cls, manifest_id: str, filename: str, records: Sequence[dict[str, Any]],
              ranked: dict[str, Any]) -> RankedManifest:
        inputs = {r["declaration_id"]: r for r in records}
        rows = []
        for item in ranked["items"]:
            decl = inputs.get(item["declaration_id"], {})
            route = " → ".join(c for c in (decl.get("origin_country"), decl.get("departure_country"),
                                           *decl.get("transit_countries", []), decl.get("destination_country"))
                               if c)
            rows.append({**item, "declaration": decl, "office_id": decl.get("office_id") or "",
                         "conveyance": decl.get("conveyance") or "", "route": route,
                         "profiles": [h.get("id") for h in item.get("rule_hits") or []]})
        summary = {k: v for k, v in ranked.items() if k != "items"}
        return cls(manifest_id, filename, dt.datetime.now(dt.UTC), summary, rows,
                   {r["declaration_id"]: r for r in rows})

    def options(self, key: str) -> list[str]:
        return sorted({str(v) for r in self.rows for v in (r["profiles"] if key == "profiles" else [r[key]]) if v})

    def select(self, lane: str = "", office: str = "", conveyance: str = "", profile: str = "",
               selected: str = "") -> list[dict[str, Any]]:
        rows: Iterable[dict[str, Any]] = self.rows
        if lane:
            rows = (r for r in rows if r["lane"] == lane)
        if office:
            rows = (r for r in rows if r["office_id"] == office)
        if conveyance:
            rows = (r for r in rows if r["conveyance"] == conveyance)
        if profile:
            rows = (r for r in rows if profile in r["profiles"])
        if selected:
            rows = (r for r in rows if r.get("selection") not in (None, "none"))
        return list(rows)


def recent_batch_outputs(folder: Path, limit: int = 20) -> list[OutputListing]:
    """The newest finished batch outputs of the configured folder (none if it cannot be listed)."""
    try:
        return list_outputs(folder, limit)
    except OSError:
        return []


def open_batch_output(folder: Path, name: str, manifest_id: str, max_rows: int) -> RankedManifest:
    """A batch output of ``folder`` as a ranked manifest, as the run wrote it (nothing scored again).

    Only an output directly inside ``folder`` opens; a bad name or an unreadable output is a
    :class:`ManifestProblem` the page shows."""
    title = "The batch output could not be opened"
    try:
        path = resolve_output(folder, name)
    except OutputReadError as exc:
        raise ManifestProblem(str(exc), title=title, status=404) from None
    try:
        out = read_output(path, max_rows=max_rows)
    except OutputReadError as exc:
        raise ManifestProblem(str(exc), title=title) from None
    meta = out.metadata
    model = meta.get("model") or {}
    options = meta.get("options") or {}
    counts = {s: sum(1 for it in out.items if it["selection"] == s) for s in ("model", "random", "rule")}
    ranked = {"model": {"name": model.get("name") or "?", "version": model.get("version") or "?"},
              "count": len(out.items), "capacity": sum(counts.values()), "selected_model": counts["model"],
              "selected_random": counts["random"], "selected_rule": counts["rule"],
              "random_share": options.get("random_share"), "scored": str(meta.get("finished") or ""),
              "items": out.items}
    records = frame_records(out.declarations)
    manifest = RankedManifest.build(manifest_id, name, records, ranked)
    manifest.origin = "batch"
    manifest.notes = list(out.notes)
    manifest.source_key = batch_source_key(path)
    return manifest


def batch_source_key(path: Path) -> str:
    """A batch output as it is now (a run writing it again publishes a new file)."""
    st = path.stat()
    return f"batch:{path.name}:{st.st_mtime_ns}:{st.st_size}"


def opened_batch_output(manifests: Iterable[RankedManifest], folder: Path, name: str) -> RankedManifest | None:
    """The session's ranking of this batch output if it was opened already and has not changed since."""
    try:
        key = batch_source_key(resolve_output(folder, name))
    except (OutputReadError, OSError):
        return None
    return next((m for m in manifests if m.source_key == key), None)


def top_reasons(row: dict[str, Any], n: int = 3) -> list[str]:
    return [r.get("text", "") for r in (row.get("reasons") or [])[:n]]


def selection_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, every text cell kept from running as a spreadsheet formula (ids, offices and
    routes are any text a manifest holds, as much as goods descriptions are)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        d = r["declaration"]
        cells = [r["rank"], r["declaration_id"], r["risk_score"], r.get("percentile"), r["lane"],
                 "" if r.get("selection") == "none" else r.get("selection") or "", r["office_id"], r["conveyance"],
                 r["route"], d.get("hs_code", ""), d.get("goods_description", "") or "", d.get("customs_value", ""),
                 d.get("currency", ""), "; ".join(top_reasons(r)), " ".join(str(p) for p in r["profiles"])]
        w.writerow([spreadsheet_text(c) for c in cells])
    return buf.getvalue()
