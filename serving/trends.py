"""Trend reports over HTTP: the tables of :func:`reports.trend_tables` as JSON, and the HTML page.

Results are cached per (source file, its modification time, years), so repeated requests do not
re-run the DuckDB queries until the seizure file changes. No FastAPI here.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from serving.errors import FieldProblem, InputError, SourceUnavailable

_CACHE_SIZE = 16
_YEARS = r"[0-9]{4}(?: *- *[0-9]{4})?"  # ASCII digits only (\d would take any script's digits)
# what parse_years accepts, also the documented pattern of the ``years`` query parameter
YEARS_PATTERN = rf"^ *(?:{_YEARS}(?: *, *{_YEARS})*)? *$"


def parse_years(text: str | None) -> list[int] | None:
    """``"2022,2023"`` or ``"2021-2023"`` → sorted years; empty → ``None`` (all years)."""
    if text is None or not text.strip():
        return None

    def bad(why: str) -> InputError:
        return InputError([FieldProblem("years", f"expected years such as 2022,2023 or 2021-2023 ({why})",
                                        value=text, has_value=True)])

    if not re.fullmatch(YEARS_PATTERN, text):
        raise bad("four-digit years or ranges, separated by commas")
    years: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first or last - first > 200:
            raise bad(f"bad range {part.strip()!r}")
        years.update(range(first, last + 1))
    return sorted(years)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in df.to_dict(orient="records")]
    for row in rows:
        for k, v in row.items():
            if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
                row[k] = None
            elif hasattr(v, "item"):  # numpy scalars
                row[k] = v.item()
    return rows


class TrendService:
    def __init__(self, seizures_path: Path):
        self.seizures_path = seizures_path
        self._cache: OrderedDict[tuple[Any, ...], dict[str, pd.DataFrame]] = OrderedDict()
        self._lock = threading.Lock()

    def tables(self, years: Sequence[int] | None) -> dict[str, pd.DataFrame]:
        import reports
        from features.contracts import ContractError
        from features.io import LoadError

        path = self.seizures_path
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise SourceUnavailable(f"seizure records not found at {path} (set RISKPROF_SEIZURES_PATH)") from None
        key = (str(path), mtime, tuple(years) if years else None)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        try:
            tables = reports.trend_tables(path, years)
        except reports.ReportError as exc:
            raise InputError([FieldProblem("years", str(exc), value=list(years or []), has_value=True)]) from None
        except ContractError as exc:
            raise SourceUnavailable(f"seizure records at {path} break the contract: "
                                    f"{len(exc.report.problems)} problems") from None
        except LoadError as exc:  # not a Parquet/CSV file any more (a copy cut short, another file): was a 500
            raise SourceUnavailable(f"seizure records at {path} cannot be read: {exc}") from None
        with self._lock:
            self._cache[key] = tables
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return tables

    def trends_json(self, years: Sequence[int] | None) -> dict[str, Any]:
        tables = self.tables(years)
        return {"years": list(years) if years else None, "tables": {k: _records(v) for k, v in tables.items()}}

    def trends_html(self, years: Sequence[int] | None) -> str:
        import reports

        return reports.render_html(self.tables(years))
