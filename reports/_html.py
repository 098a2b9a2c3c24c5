"""One self-contained HTML page: plotly.js, the world map geometry, figures, texts and sortable tables.

Nothing is fetched at view time. Plotly's geo traces normally download their topojson from a CDN;
the page instead defines ``window.PlotlyGeoAssets.topojson.world_110m`` (the file shipped in
``reports/_assets``) before plotly.js loads, and plotly.js uses preloaded geometry without fetching.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from reports import _figures as figs
from reports import _text as text

DEFAULT_TITLE = "Weapons seizures: trends by region, country, weapon type, route and detection"
# topojsonURL is never used (the geometry is preloaded); a relative URL keeps any fetch local
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "topojsonURL": "./"}
MAX_TABLE_ROWS = 2000


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    text: str
    figure: go.Figure | None
    tables: tuple[tuple[str, pd.DataFrame], ...]


@cache
def _world_topojson() -> str:
    return resources.files("reports").joinpath("_assets", "world_110m.json").read_text(encoding="utf-8")


def _script_safe(s: str) -> str:
    return s.replace("</", "<\\/")


def _cell(value: object, plain: bool = False) -> tuple[str, str]:
    """(sort value, display text) of one table cell; ``plain`` numbers (years) get no separators.

    A number shows every digit the CSV and JSON files write, grouped in thousands: 17952.5 is 17,952.5
    (four significant digits showed 1.795e+04, and 1015.4 as 1,015).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "", ""
    if isinstance(value, bool):
        return str(value), str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if plain:
            return str(value), str(value)
        number = float(value)
        if number.is_integer():
            return repr(number), text.fmt_number(number)
        return repr(number), f"{Decimal(repr(number)):,f}"  # repr: the shortest text that reads back as the value
    return str(value), str(value)


def table_html(name: str, df: pd.DataFrame) -> str:
    """A sortable table (a header is a button: click it or press Enter); numbers sort numerically.

    The scrolling box is focusable and named, so that a keyboard can scroll it (axe: scrollable-region-focusable).
    """
    head = "".join(f'<th scope="col"><button type="button">{html.escape(str(c))}</button></th>' for c in df.columns)
    rows = []
    shown = df.head(MAX_TABLE_ROWS)
    plain = [str(c) == "year" for c in df.columns]
    for rec in shown.itertuples(index=False):
        cells = []
        for v, is_plain in zip(rec, plain, strict=True):
            value = v.item() if hasattr(v, "item") else v
            key, shown_text = _cell(value, is_plain)
            cells.append(f'<td data-v="{html.escape(key)}">{html.escape(shown_text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='note'>First {MAX_TABLE_ROWS} of {len(df)} rows.</p>" if len(df) > MAX_TABLE_ROWS else ""
    return (f'<details open><summary>Table <code>{html.escape(name)}</code> ({len(df)} rows)</summary>'
            f'<div class="tbl" tabindex="0" role="region" aria-label="Table {html.escape(name)}">'
            f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{more}</details>')


def _span(tables: dict[str, pd.DataFrame]) -> tuple[int | None, int | None]:
    span = text.first_last_years(tables["totals"])
    return (span[0], span[1]) if span else (None, None)


def _years_text(t: dict[str, pd.DataFrame]) -> str:
    first, last = _span(t)
    return str(first) if first == last else f"{first}–{last}"


def _not_drawn(anchor: str, title: str, why: str) -> Section:
    """A figure the data cannot fill keeps its place, saying why (it vanished from the page and its contents)."""
    return Section(anchor, title, f"Not drawn: {why}", None, ())


def _fill_years(df: pd.DataFrame, years: list[int]) -> pd.DataFrame:
    """Rows of zero for the report's years without a row (a year with none is 0, not missing from the chart)."""
    return (df.set_index("year").reindex(years, fill_value=0).rename_axis("year").reset_index()
            if len(df) else df)


def build_sections(tables: dict[str, pd.DataFrame]) -> list[Section]:
    """The report's figures, in the seed report's order; one the data cannot fill says why."""
    t = tables
    out: list[Section] = [Section("totals", "Overview", text.describe_totals(t["totals"]), None,
                                  (("totals", t["totals"]),))]
    if t["by_country"].empty:
        return out
    return (out + _country_sections(t) + _weapon_type_sections(t) + [_route_section(t)]
            + _weapon_change_sections(t) + _imitation_sections(t) + _detection_sections(t))


def _country_sections(t: dict[str, pd.DataFrame]) -> list[Section]:
    """Figures 1-3: the map of reporting countries, regions and the top countries."""
    top_fig, top_table = figs.top_countries(t["by_country"])
    return [
        Section("fig1", "Figure 1: Heat map of cases by reporting country",
                text.describe_top(t["by_country"], "reporting_country", "cases", "cases"),
                figs.country_map(t["by_country"]), (("cases per country, all years (from by_country)",
                                                     figs.country_totals(t["by_country"])),)),
        # the seed report's Figure 2 counts weapon seizures (1,364 in North America in 2022), not every seizure
        # of the region (ammunition and parts too: 4,710 there)
        Section("fig2", "Figure 2: Weapon seizures by region",
                text.describe_movers(t["weapon_seizures_by_region"], "region", "seizures",
                                     "weapon seizures by region"),
                figs.region_bars(t["weapon_seizures_by_region"]),
                (("weapon_seizures_by_region", t["weapon_seizures_by_region"]),
                 ("by_region (every seizure: weapons, ammunition, parts, explosives)", t["by_region"])))
        if not t["weapon_seizures_by_region"].empty else
        _not_drawn("fig2", "Figure 2: Weapon seizures by region",
                   f"no weapon seizures (small arms, light weapons, other weapons) in {_years_text(t)}."),
        Section("fig3", f"Figure 3: Top {figs.TOP_COUNTRIES} reporting countries by cases",
                text.describe_movers(t["by_country"], "reporting_country", "cases", "cases by country"),
                top_fig, ((f"top {figs.TOP_COUNTRIES} (from by_country)", top_table),
                          ("by_country", t["by_country"]))),
    ]


def _ammunition_text(am: pd.DataFrame) -> str:
    am_text = "Ammunition: " + "; ".join(
        f"{r.year}: {text.fmt_number(r.seizures)} seizures, {text.fmt_number(r.quantity)} pieces"
        for r in am.itertuples()) + "."
    if len(am) > 1:
        a0, a1 = am.iloc[0], am.iloc[-1]
        am_text += (f" Seizures {text.change_phrase(a0['seizures'], a1['seizures'])}; quantity "
                    f"{text.change_phrase(a0['quantity'], a1['quantity'])}.")
    return am_text


def _weapon_type_sections(t: dict[str, pd.DataFrame]) -> list[Section]:
    """Figures 4-5: weapon types, and ammunition."""
    out: list[Section] = []
    title4 = "Figure 4: Weapon types by seizures and quantity"
    if not t["by_weapon_type"].empty:
        out.append(Section("fig4", title4,
                           text.describe_movers(t["by_weapon_type"], "weapon_type", "seizures",
                                                "seizures by weapon type"),
                           figs.weapon_types(t["by_weapon_type"]), (("by_weapon_type", t["by_weapon_type"]),)))
    else:
        out.append(_not_drawn("fig4", title4, f"no seizure in {_years_text(t)} records a weapon type."))
    am = t["ammunition"]
    title5 = "Figure 5: Seizures and quantity of ammunition"
    if not am.empty:
        am = _fill_years(am, [int(y) for y in t["totals"]["year"]])
        out.append(Section("fig5", title5, _ammunition_text(am),
                           figs.year_pairs(am, "Ammunition: seizures and quantity"), (("ammunition", t["ammunition"]),)))
    else:
        out.append(_not_drawn("fig5", title5, f"no ammunition seizures in {_years_text(t)}."))
    return out


def _route_section(t: dict[str, pd.DataFrame]) -> Section:
    return Section("fig6", "Figure 6: Trafficking routes by region",
                   text.describe_routes(t["route_endpoints"]), figs.route_sankey(t["routes"]),
                   (("route_endpoints", t["route_endpoints"]), ("routes", t["routes"])))


def _weapon_change_sections(t: dict[str, pd.DataFrame]) -> list[Section]:
    """Figures 7-9: weapon types by region, and their change from the first year to the last."""
    out: list[Section] = []
    title7 = "Figure 7: Weapon seizures by type and region"
    if not t["weapon_type_by_region"].empty:
        out.append(Section("fig7", title7,
                           text.describe_share_by(t["weapon_type_by_region"], "weapon_type", "region", "seizures",
                                                  "weapon seizures"),
                           figs.weapon_region_heatmap(t["weapon_type_by_region"]),
                           (("weapon_type_by_region", t["weapon_type_by_region"]),)))
    else:
        out.append(_not_drawn("fig7", title7, f"no weapon seizure in {_years_text(t)} records a weapon type."))
    first, last = _span(t)
    title8 = "Figure 8: Year-on-year change in seizures by weapon type"
    title9 = "Figure 9: Change in quantity of weapons seized by weapon type"
    if first is None or last is None or first == last:
        why = f"a change needs two years with seizures; the report covers {first} only."
        return [*out, _not_drawn("fig8", title8, why), _not_drawn("fig9", title9, why)]
    yoy = t["yoy_weapon_type"]
    if not yoy.empty:
        out.append(Section("fig8", title8, text.describe_yoy(yoy, "seizures", first, last),
                           figs.change_bars(yoy, "seizures", first, last), (("yoy_weapon_type", yoy),)))
    else:
        out.append(_not_drawn("fig8", title8, f"no seizure in {first}–{last} records a weapon type."))
    # pieces of weapons, as the seed report's Figure 9 (assault rifles +44 %): with their parts counted
    # (17,700 rifle components in one 2022 case) the same rifles read -51 %
    yoy_q = t["yoy_weapon_quantity"]
    if not yoy_q.empty:
        out.append(Section("fig9", title9, text.describe_yoy(yoy_q, "quantity", first, last),
                           figs.change_bars(yoy_q, "quantity", first, last,
                                            what="pieces of weapon seizures (parts excluded)"),
                           (("yoy_weapon_quantity", yoy_q),)))
    else:
        out.append(_not_drawn("fig9", title9, f"no weapon seizure in {first}–{last} records a weapon type."))
    return out


def _imitation_sections(t: dict[str, pd.DataFrame]) -> list[Section]:
    """Figures 10-11: imitation hand guns by year, and by departure region and conveyance."""
    out: list[Section] = []
    imitation = t["by_weapon_type"][t["by_weapon_type"]["weapon_type"] == "imitation hand gun"]
    title10 = "Figure 10: Imitation hand gun seizures"
    title11 = "Figure 11: Imitation hand guns by departure region and conveyance (cases)"
    if imitation.empty:
        why = f"no imitation hand gun seizures in {_years_text(t)}."
        return [_not_drawn("fig10", title10, why), _not_drawn("fig11", title11, why)]
    # every year of the report, 0 where none was seized (the seed report: none in 2022, 25 in 2023)
    per_year = _fill_years(imitation.drop(columns="weapon_type"), [int(y) for y in t["totals"]["year"]])
    out.append(Section("fig10", title10,
                       "Imitation hand guns: " + "; ".join(
                           f"{r.year}: {text.fmt_number(r.seizures)} seizures, "
                           f"{text.fmt_number(r.quantity)} pieces" for r in per_year.itertuples()) + ".",
                       figs.year_pairs(per_year, "Imitation hand guns: seizures and quantity"),
                       (("by_weapon_type (imitation hand gun)", imitation),)))
    im_conv = t.get("imitation_guns_by_conveyance")
    if im_conv is not None and not im_conv.empty:
        by_conv = pd.DataFrame(im_conv.groupby(["conveyance", "year"], as_index=False)["cases"].sum())
        # one bar segment per conveyance × departure region × year (directions summed)
        im_plot = pd.DataFrame(im_conv.groupby(["conveyance", "departure_region", "year"], as_index=False)["cases"].sum())
        out.append(Section("fig11", "Figure 11: Imitation hand guns by departure region and conveyance (cases)",
                           text.describe_share_by(im_plot, "conveyance", "departure_region", "cases",
                                                  "imitation hand gun cases"),
                           figs.stacked_by_year(im_plot, "conveyance", "departure_region", "cases",
                                                "Imitation hand guns by conveyance and departure region"),
                           (("imitation_guns_by_conveyance", im_conv), ("by conveyance", by_conv))))
    return out


def _detection_sections(t: dict[str, pd.DataFrame]) -> list[Section]:
    """Figures 12-14: detection methods and locations by direction, conveyance by commodity."""
    out: list[Section] = []
    for anchor, name, key, title in (
        ("fig12", "detection_methods", "detection_method", "Figure 12: Detection methods by direction (cases)"),
        ("fig13", "detection_locations", "detection_location", "Figure 13: Detection locations by direction (cases)"),
    ):
        if not t[name].empty:
            out.append(Section(anchor, title,
                               text.describe_share_by(t[name], key, "direction", "cases",
                                                      f"cases by {key.replace('_', ' ')}"),
                               figs.stacked_by_year(t[name], key, "direction", "cases", title.split(": ")[1]),
                               ((name, t[name]),)))
        else:
            out.append(_not_drawn(anchor, title, f"no cases in {_years_text(t)}."))
    conv = t["conveyance_by_category"]
    title14 = "Figure 14: Seizures by conveyance and commodity category"
    if conv.empty:
        out.append(_not_drawn("fig14", title14, f"no seizures in {_years_text(t)}."))
    else:
        out.append(Section("fig14", title14,
                           text.describe_share_by(conv, "conveyance", "commodity_category", "seizures",
                                                  "seizures by conveyance"),
                           figs.stacked_by_year(conv, "conveyance", "commodity_category", "seizures",
                                                "Seizures by conveyance and commodity category"),
                           (("conveyance_by_category", conv),)))
    return out


def report_figures(tables: dict[str, pd.DataFrame]) -> dict[str, go.Figure]:
    """The page's figures by anchor (``fig1`` … ``fig14``), e.g. to show in a notebook."""
    return {s.anchor: s.figure for s in build_sections(tables) if s.figure is not None}


def report_texts(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The page's generated texts by anchor (``totals``, ``fig1`` … ``fig14``)."""
    return {s.anchor: s.text for s in build_sections(tables)}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 2rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #ddd}
nav ul{columns:2;font-size:.9rem}p.text{max-width:60rem;line-height:1.45}.note{color:#666;font-size:.85rem}
div.tbl{max-height:22rem;overflow:auto;border:1px solid #ddd;margin:.5rem 0}
table.sortable{border-collapse:collapse;font-size:.85rem;width:100%}
table.sortable th{position:sticky;top:0;background:#f4f4f4;text-align:left;padding:.3rem .5rem}
table.sortable th button{font:inherit;font-weight:bold;color:inherit;background:none;border:0;padding:0;cursor:pointer;
text-align:left}
table.sortable th[aria-sort=ascending] button::after{content:" \\25B2"}
table.sortable th[aria-sort=descending] button::after{content:" \\25BC"}
div.tbl:focus-visible,table.sortable th button:focus-visible{outline:3px solid #fd0;outline-offset:0}
figure.chart{margin:0}figure.chart figcaption{color:#555;font-size:.85rem}
table.sortable td{padding:.2rem .5rem;border-top:1px solid #eee}
table.sortable td[data-v]:not([data-v=""]){font-variant-numeric:tabular-nums}
"""

_SORT_JS = """
document.querySelectorAll('table.sortable th button').forEach(function (button) {
  button.addEventListener('click', function () {
    var th = button.closest('th');
    var table = th.closest('table'), idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    th.parentNode.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var key = function (r) { return r.cells[idx].dataset.v; };
    var numeric = rows.every(function (r) { return key(r) === '' || !isNaN(Number(key(r))); });
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), c;
      if (numeric) { x = x === '' ? -Infinity : Number(x); y = y === '' ? -Infinity : Number(y); c = x - y; }
      else { c = x.localeCompare(y); }
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def render_html(tables: dict[str, pd.DataFrame], title: str = DEFAULT_TITLE) -> str:
    """The whole report page as one HTML string (no external resources)."""
    sections = build_sections(tables)
    first, last = _span(tables)
    span = f"{first}–{last}" if first is not None else "no data"
    nav = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    body = []
    for s in sections:
        parts = [f'<section id="{s.anchor}" aria-labelledby="{s.anchor}-title">'
                 f'<h2 id="{s.anchor}-title">{html.escape(s.title)}</h2>',
                 f'<p class="text" id="{s.anchor}-text">{html.escape(s.text)}</p>']
        if s.figure is not None:
            # a chart is a picture to a screen reader: its caption names it, the text above describes it and
            # the tables below hold its numbers
            caption = f"Chart: {s.figure.layout.title.text or s.title}. Its numbers are in the table below."
            parts.append(f'<figure class="chart" aria-describedby="{s.anchor}-text">'
                         + pio.to_html(s.figure, full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG,
                                       div_id=f"{s.anchor}-chart")
                         + f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts += [table_html(name, df) for name, df in s.tables]
        parts.append("</section>")
        body.append("".join(parts))
    geo = f"window.PlotlyGeoAssets = {{topojson: {{world_110m: {_script_safe(_world_topojson())}}}}};"
    meta = json.dumps({"years": [first, last], "tables": sorted(tables)})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script>{geo}</script>
<script type="text/javascript">{_script_safe(get_plotlyjs())}</script>
</head><body><main>
<h1>{html.escape(title)}</h1>
<p class="note">Years {span}. A case is one enforcement event holding one or more seizures; cases count
distinct case ids (a case counts once in every group it falls into), seizures count rows, quantity
sums pieces. A region is the reporting country's region; UNK = unknown country.</p>
<nav aria-label="Figures"><ul>{nav}</ul></nav>
{"".join(body)}
</main>
<script type="application/json" id="report-meta">{_script_safe(meta)}</script>
<script>{_SORT_JS}</script>
</body></html>
"""
