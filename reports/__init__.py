"""Descriptive trend reports that reproduce the seed report's figures from seizure records.

``trend_tables`` aggregates seizures (DuckDB) into one table per figure, ``render_html`` turns
them into one self-contained page, ``write_report`` writes ``index.html`` and ``tables/*.csv|json``.
"""

from reports._html import DEFAULT_TITLE, render_html, report_figures, report_texts
from reports._tables import TABLE_NAMES, TABLE_SCHEMAS, ReportError, check_years, trend_tables
from reports._write import (
    FORMATS,
    check_formats,
    coverage_notes,
    stale_outputs,
    write_outputs,
    write_report,
    write_tables,
)

__all__ = [
    "DEFAULT_TITLE",
    "FORMATS",
    "TABLE_NAMES",
    "TABLE_SCHEMAS",
    "ReportError",
    "check_formats",
    "check_years",
    "render_html",
    "report_figures",
    "report_texts",
    "stale_outputs",
    "trend_tables",
    "write_report",
    "write_outputs",
    "coverage_notes",
    "write_tables",
]
