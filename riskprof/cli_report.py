"""Report command: ``report`` (trend tables and the self-contained HTML page from seizure files)."""

from __future__ import annotations

from pathlib import Path

import typer

from riskprof.cli_data import console, fail


def parse_years(value: str | None) -> list[int] | None:
    """'2022,2023' or '2020-2023' → sorted years; None → all years in the data."""
    if value is None or not value.strip():
        return None
    years: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError(part)
                years.update(range(lo, hi + 1))
            elif part:
                years.add(int(part))
        except ValueError:
            fail(f"--years: {part!r} is not a year or a range like 2020-2023 (give e.g. --years 2022,2023)")
    if not years:
        fail("--years: give at least one year, e.g. --years 2022,2023")
    return sorted(years)


def report(
    seizures: list[Path] = typer.Option(..., "--seizures", "-s",
                                        help="Seizure CSV/Parquet file or folder (repeat for several)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write index.html and tables/ to."),
    mapping: Path | None = typer.Option(None, "--mapping", "-m", help="Column mapping YAML (bring your own data)."),
    years: str | None = typer.Option(None, "--years", help="Years to report, e.g. 2022,2023 or 2020-2023 "
                                                          "(default: all); first and last are compared."),
    formats: str = typer.Option("html,csv,json", "--format", help="Comma-separated outputs: html, csv, json."),
) -> None:
    """Trend report (the seed report's figures 1-14) from seizure records: index.html + tables/*.csv|json."""
    from features.contracts import ContractError
    from features.io import LoadError
    from features.mapping import MappingError, load_mapping
    from reports import (
        ReportError,
        check_formats,
        check_years,
        coverage_notes,
        stale_outputs,
        trend_tables,
        write_outputs,
    )

    chosen_years = parse_years(years)
    try:
        chosen_formats = check_formats(formats.split(","))
        check_years(chosen_years)
        m = load_mapping(mapping) if mapping else None
        if m is not None and m.contract.name != "seizure":
            fail(f"mapping {mapping} is for the {m.contract.name} contract; the report needs a seizure mapping")
        computed = trend_tables(seizures, chosen_years, mapping=m)
        written = write_outputs(computed, out, chosen_formats)
    except ContractError as exc:
        console.print(exc.report.summary(limit=30), highlight=False, markup=False)
        fail(f"{len(exc.report.problems)} problem(s) in the seizure input; nothing written", code=1)
        return
    except (LoadError, MappingError, ReportError) as exc:
        fail(str(exc))
        return
    tables = sorted({Path(k).stem for k in written if k.startswith("tables/")})
    if "index.html" in written:
        console.print(f"wrote {written['index.html']}", highlight=False)
    if tables:
        kinds = "/".join(f for f in chosen_formats if f != "html")
        console.print(f"wrote {len(tables)} tables ({kinds}) to {Path(out) / 'tables'}: {', '.join(tables)}",
                      highlight=False)
    for note in coverage_notes(computed, chosen_years):  # an empty report was written with exit 0 and no word
        console.print(f"note: {note}", highlight=False, markup=False)
    stale = stale_outputs(out, written)
    if stale:
        console.print(f"note: {len(stale)} file(s) in {out} are from an earlier report, not this one: "
                      f"{', '.join(stale[:6])}{' …' if len(stale) > 6 else ''}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
