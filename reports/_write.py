"""Write the report folder: ``index.html`` and ``tables/<name>.csv`` / ``.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.io import spreadsheet_frame
from features.mapping import ColumnMapping
from reports._html import DEFAULT_TITLE, render_html
from reports._source import SeizureInput
from reports._tables import ReportError, trend_tables

FORMATS = ("html", "csv", "json")


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ReportError(f"formats: {bad or 'none given'}; choose from {', '.join(FORMATS)}")
    return out


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path,
                 formats: Sequence[str] = ("csv", "json")) -> dict[str, Path]:
    """``tables/<name>.csv`` (empty cell = no value) and ``.json`` (records, null = no value)."""
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, df in tables.items():
        if "csv" in formats:
            path = folder / f"{name}.csv"
            spreadsheet_frame(df).to_csv(path, index=False)  # text from the seizure file: no live formula
            written[f"tables/{name}.csv"] = path
        if "json" in formats:
            path = folder / f"{name}.json"
            df.to_json(path, orient="records", indent=1, force_ascii=False)
            written[f"tables/{name}.json"] = path
    return written


def coverage_notes(tables: dict[str, pd.DataFrame], years: Sequence[int] | None) -> list[str]:
    """What a report's reader should know about the years it covers: none of them with a seizure (an empty
    report), requested years without any, one year only (nothing to compare)."""
    seen = sorted(int(y) for y in tables["totals"]["year"])
    if not seen:
        return ["no seizures in " + (f"the years {', '.join(map(str, years))}" if years else "the records")
                + ": the report is empty"]
    notes = []
    missing = [y for y in years or () if y not in seen]
    if missing:
        notes.append(f"no seizures in {', '.join(map(str, missing))}: the report covers {seen[0]}–{seen[-1]}")
    if len(seen) == 1:
        notes.append(f"one year only ({seen[0]}): no change from a first to a last year is shown")
    return notes


def write_report(seizures: SeizureInput, out_dir: str | Path, years: Sequence[int] | None = None,
                 formats: Sequence[str] = FORMATS, *, mapping: ColumnMapping | None = None,
                 validate: bool = True, title: str = DEFAULT_TITLE) -> dict[str, Path]:
    """Compute the tables and write the requested formats; returns {relative name: path}."""
    tables = trend_tables(seizures, years, mapping=mapping, validate=validate)
    return write_outputs(tables, out_dir, formats, title=title)


def write_outputs(tables: dict[str, pd.DataFrame], out_dir: str | Path, formats: Sequence[str] = FORMATS, *,
                  title: str = DEFAULT_TITLE) -> dict[str, Path]:
    """Write computed tables in the requested formats; returns {relative name: path}."""
    chosen = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = write_tables(tables, out, chosen)
    if "html" in chosen:
        path = out / "index.html"
        path.write_text(render_html(tables, title=title), encoding="utf-8")
        written["index.html"] = path
    return written


def stale_outputs(out_dir: str | Path, written: dict[str, Path]) -> list[str]:
    """The report's own file names in ``out_dir`` that this run did not write: an earlier report's
    index.html or tables of another format (``--format csv`` left last month's JSON and HTML beside the new
    CSVs, looking current). Listed, not deleted: the folder is the user's."""
    from reports._tables import TABLE_NAMES

    out = Path(out_dir)
    names = ["index.html", *(f"tables/{t}.{ext}" for t in TABLE_NAMES for ext in ("csv", "json"))]
    return [n for n in names if n not in written and (out / n).is_file()]
