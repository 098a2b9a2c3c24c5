"""The report's tables, one per figure, aggregated in DuckDB.

Counting rules: ``cases`` = distinct ``case_id``, ``seizures`` = rows, ``quantity`` = sum of
``quantity``. A case counts once in every group it falls into, so per-group case counts may add up
to more than the total. Groups that hold no seizure are absent (no zero rows), except in
``yoy_weapon_type``, which compares the first and last year of the range for every weapon type seen.

``by_weapon_type`` (Figure 4) counts every seizure that carries a weapon type, parts and
accessories of that weapon included; ``weapon_seizures_by_region`` (Figure 2) and
``weapon_type_by_region`` (Figure 7) count weapon seizures only: categories small arms, light weapons
and other weapons (Figure 2 those without a weapon type too). ``by_region`` counts every seizure.
``yoy_weapon_type`` compares ``by_weapon_type`` (Figure 8: seizures, parts included, as Figure 4);
``yoy_weapon_quantity`` (Figure 9) compares the pieces of weapon seizures only, so that 17,700 rifle
components do not read as a fall in rifles seized.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from features.mapping import ColumnMapping
from features.reference import UNKNOWN
from reports._source import SeizureInput, seizure_relation

# name → column → dtype; the order of the columns is the order in the files
TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    "totals": {"year": "int64", "cases": "int64", "seizures": "int64", "quantity": "float64"},
    "by_region": {"region": "str", "year": "int64", "cases": "int64", "seizures": "int64",
                  "quantity": "float64"},
    # Figure 2: weapon seizures (categories WEAPON_CATEGORIES) by the reporting country's region
    "weapon_seizures_by_region": {"region": "str", "year": "int64", "seizures": "int64"},
    "by_country": {"reporting_country": "str", "year": "int64", "cases": "int64", "seizures": "int64",
                   "quantity": "float64"},
    "by_weapon_type": {"weapon_type": "str", "year": "int64", "seizures": "int64", "quantity": "float64"},
    "yoy_weapon_type": {"weapon_type": "str", "seizures_first": "int64", "seizures_last": "int64",
                        "seizures_change_pct": "float64", "quantity_first": "float64",
                        "quantity_last": "float64", "quantity_change_pct": "float64"},
    # Figure 9: pieces of weapon seizures (not parts) per weapon type, first year against last year
    "yoy_weapon_quantity": {"weapon_type": "str", "quantity_first": "float64", "quantity_last": "float64",
                            "quantity_change_pct": "float64"},
    "weapon_type_by_region": {"weapon_type": "str", "region": "str", "year": "int64", "seizures": "int64"},
    "routes": {"departure_region": "str", "destination_region": "str", "cases": "int64",
               "share_of_cases": "float64"},
    "route_endpoints": {"role": "str", "region": "str", "cases": "int64", "share_of_cases": "float64"},
    "detection_methods": {"detection_method": "str", "direction": "str", "year": "int64", "cases": "int64"},
    "detection_locations": {"detection_location": "str", "direction": "str", "year": "int64",
                            "cases": "int64"},
    "conveyance_by_category": {"conveyance": "str", "commodity_category": "str", "year": "int64",
                               "seizures": "int64"},
    "ammunition": {"year": "int64", "seizures": "int64", "quantity": "float64"},
    # Figure 11 (the seed report's imitation-gun figure; no earlier table held its departure region or
    # conveyance): imitation hand guns by departure region
    "imitation_guns_by_conveyance": {"departure_region": "str", "conveyance": "str", "direction": "str",
                                     "year": "int64", "cases": "int64", "seizures": "int64",
                                     "quantity": "float64"},
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLE_SCHEMAS)

# Figures 2 and 7 count weapon seizures: these categories (not ammunition, parts, explosives)
WEAPON_CATEGORIES = ("small arms", "light weapons", "other weapons")
_CASES = "count(DISTINCT case_id) AS cases"
_SEIZURES = "count(*) AS seizures"
_QUANTITY = "sum(quantity) AS quantity"

# tables that are a plain GROUP BY over the ``seizures`` view: name → (keys, measures, filter)
_GROUPED: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "totals": (("year",), (_CASES, _SEIZURES, _QUANTITY), ""),
    "by_region": (("region", "year"), (_CASES, _SEIZURES, _QUANTITY), ""),
    "weapon_seizures_by_region": (("region", "year"), (_SEIZURES,), f"commodity_category IN {WEAPON_CATEGORIES}"),
    "by_country": (("reporting_country", "year"), (_CASES, _SEIZURES, _QUANTITY), ""),
    "by_weapon_type": (("weapon_type", "year"), (_SEIZURES, _QUANTITY), "weapon_type IS NOT NULL"),
    "weapon_type_by_region": (("weapon_type", "region", "year"), (_SEIZURES,),
                              f"weapon_type IS NOT NULL AND commodity_category IN {WEAPON_CATEGORIES}"),
    "detection_methods": (("detection_method", "direction", "year"), (_CASES,), ""),
    "detection_locations": (("detection_location", "direction", "year"), (_CASES,), ""),
    "conveyance_by_category": (("conveyance", "commodity_category", "year"), (_SEIZURES,), ""),
    "ammunition": (("year",), (_SEIZURES, _QUANTITY), "commodity_category = 'ammunition'"),
}


class ReportError(ValueError):
    """Bad report arguments (years, formats)."""


def check_years(years: Sequence[int] | None) -> list[int] | None:
    """Sorted distinct years, or ``None`` for all years in the data."""
    if years is None:
        return None
    out = sorted({int(y) for y in years})
    if not out:
        raise ReportError("years: give at least one year")
    bad = [y for y in out if not 1990 <= y <= 2100]
    if bad:
        raise ReportError(f"years: {bad} outside 1990-2100")
    return out


def _create_views(con: duckdb.DuckDBPyConnection, years: list[int] | None) -> None:
    columns = {row[0] for row in con.execute("DESCRIBE raw_seizures").fetchall()}
    region = "upper(coalesce(s.region, cr.region, '{u}'))" if "region" in columns else "coalesce(cr.region, '{u}')"
    where = f"WHERE year IN ({', '.join(str(y) for y in years)})" if years else ""
    con.execute(f"""
        CREATE VIEW seizures AS SELECT * FROM (
            SELECT case_id, seizure_id,
                   CAST(year(CAST(event_date AS DATE)) AS INTEGER) AS year,
                   reporting_country, {region.format(u=UNKNOWN)} AS region,
                   direction, departure_country, destination_country, conveyance, detection_method,
                   detection_location, commodity_category, weapon_type,
                   CAST(quantity AS DOUBLE) AS quantity
            FROM raw_seizures s LEFT JOIN country_regions cr ON s.reporting_country = cr.alpha2
        ) {where}
    """)
    # route regions in their own view so that only the route tables pay for the two joins
    con.execute(f"""
        CREATE VIEW seizure_routes AS
        SELECT s.case_id, coalesce(d.region, '{UNKNOWN}') AS departure_region,
               coalesce(a.region, '{UNKNOWN}') AS destination_region
        FROM seizures s
        LEFT JOIN country_regions d ON s.departure_country = d.alpha2
        LEFT JOIN country_regions a ON s.destination_country = a.alpha2
    """)


def _grouped_sql(name: str) -> str:
    keys, measures, condition = _GROUPED[name]
    where = f"WHERE {condition}" if condition else ""
    key_list = ", ".join(keys)
    return f"SELECT {key_list}, {', '.join(measures)} FROM seizures {where} GROUP BY {key_list} ORDER BY {key_list}"


_ROUTES_SQL = """
    WITH total AS (SELECT count(DISTINCT case_id) AS n FROM seizure_routes)
    SELECT departure_region, destination_region, count(DISTINCT case_id) AS cases,
           round(count(DISTINCT case_id) / any_value(total.n), 4) AS share_of_cases
    FROM seizure_routes, total
    GROUP BY departure_region, destination_region ORDER BY departure_region, destination_region
"""

_ENDPOINTS_SQL = """
    WITH total AS (SELECT count(DISTINCT case_id) AS n FROM seizure_routes),
    ends AS (
        SELECT 'departure' AS role, departure_region AS region, case_id FROM seizure_routes
        UNION ALL
        SELECT 'destination' AS role, destination_region AS region, case_id FROM seizure_routes
    )
    SELECT role, region, count(DISTINCT case_id) AS cases,
           round(count(DISTINCT case_id) / any_value(total.n), 4) AS share_of_cases
    FROM ends, total GROUP BY role, region ORDER BY role, region
"""


_IMITATION_SQL = f"""
    SELECT coalesce(d.region, '{UNKNOWN}') AS departure_region, s.conveyance, s.direction, s.year,
           count(DISTINCT s.case_id) AS cases, count(*) AS seizures, sum(s.quantity) AS quantity
    FROM seizures s LEFT JOIN country_regions d ON s.departure_country = d.alpha2
    WHERE s.weapon_type = 'imitation hand gun'
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


def _change(first: str, last: str) -> str:
    # empty (NULL) when the first value is 0: a change from nothing has no percentage
    return f"CASE WHEN {first} = 0 THEN NULL ELSE round(100.0 * ({last} - {first}) / {first}, 1) END"


def _yoy_sql(source: str, measures: Sequence[str], first: int, last: int) -> str:
    """Per weapon type of ``source`` (a relation of weapon_type, year and ``measures``): each measure in the
    ``first`` and ``last`` year (0 where none) and its change in per cent."""
    picked = ", ".join(measures)
    both = ", ".join(f"coalesce(f.{m}, 0) AS {m}_first, coalesce(l.{m}, 0) AS {m}_last" for m in measures)
    changes = ", ".join(f"{m}_first, {m}_last, {_change(f'{m}_first', f'{m}_last')} AS {m}_change_pct"
                        for m in measures)
    return f"""
        WITH t AS ({source}),
        f AS (SELECT weapon_type, {picked} FROM t WHERE year = {first}),
        l AS (SELECT weapon_type, {picked} FROM t WHERE year = {last}),
        v AS (
            SELECT w.weapon_type, {both}
            FROM (SELECT DISTINCT weapon_type FROM t) w
            LEFT JOIN f ON f.weapon_type = w.weapon_type LEFT JOIN l ON l.weapon_type = w.weapon_type
        )
        SELECT weapon_type, {changes} FROM v ORDER BY weapon_type
    """


# Figure 9: pieces of weapon seizures only (not the parts Figure 8's by_weapon_type counts with its weapon)
_WEAPON_QUANTITY_SQL = f"""
    SELECT weapon_type, year, sum(quantity) AS quantity FROM seizures
    WHERE weapon_type IS NOT NULL AND commodity_category IN {WEAPON_CATEGORIES} GROUP BY weapon_type, year
"""


def _typed(name: str, df: pd.DataFrame) -> pd.DataFrame:
    schema = TABLE_SCHEMAS[name]
    df = df[list(schema)]
    return df.astype(schema).reset_index(drop=True)


def query_tables(con: duckdb.DuckDBPyConnection, years: list[int] | None) -> dict[str, pd.DataFrame]:
    """All report tables from a connection holding ``raw_seizures`` and ``country_regions``."""
    _create_views(con, years)
    out: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        if name in _GROUPED:
            out[name] = _typed(name, con.execute(_grouped_sql(name)).df())
        elif name == "routes":
            out[name] = _typed(name, con.execute(_ROUTES_SQL).df())
        elif name == "route_endpoints":
            out[name] = _typed(name, con.execute(_ENDPOINTS_SQL).df())
        elif name == "imitation_guns_by_conveyance":
            out[name] = _typed(name, con.execute(_IMITATION_SQL).df())
    seen = out["totals"]["year"]
    # the first and last years with seizures: a requested year without any is not compared (2022 against an
    # empty 2025 read as -100 %), and a single year is not compared with itself (0 % for every weapon type)
    first = int(seen.min()) if len(seen) else None
    last = int(seen.max()) if len(seen) else None
    if first is None or last is None or first == last:
        yoy = pd.DataFrame(columns=list(TABLE_SCHEMAS["yoy_weapon_type"]))
        yoy_quantity = pd.DataFrame(columns=list(TABLE_SCHEMAS["yoy_weapon_quantity"]))
    else:
        con.register("by_weapon_type_result", out["by_weapon_type"])
        yoy = con.execute(_yoy_sql("SELECT * FROM by_weapon_type_result", ("seizures", "quantity"), first, last)).df()
        yoy_quantity = con.execute(_yoy_sql(_WEAPON_QUANTITY_SQL, ("quantity",), first, last)).df()
    out["yoy_weapon_type"] = _typed("yoy_weapon_type", yoy)
    out["yoy_weapon_quantity"] = _typed("yoy_weapon_quantity", yoy_quantity)
    return {name: out[name] for name in TABLE_NAMES}


def trend_tables(seizures: SeizureInput, years: Sequence[int] | None = None, *,
                 mapping: ColumnMapping | None = None, validate: bool = True) -> dict[str, pd.DataFrame]:
    """The report's tables (keys = table names) from a seizure frame or CSV/Parquet file(s).

    Input is validated through the SEIZURE contract (:class:`features.contracts.ContractError`
    on bad rows); ``years`` keeps only those event years, and its first and last year are the
    ones compared in ``yoy_weapon_type`` (default: the first and last year in the data).
    """
    checked = check_years(years)
    with seizure_relation(seizures, mapping=mapping, validate=validate) as con:
        return query_tables(con, checked)
