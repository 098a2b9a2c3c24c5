"""Plotly figures of the report, built from the tables (presentation only, no counting)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from features.reference import countries

TOP_COUNTRIES = 15
_HEIGHT = 460


def _years(df: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in df["year"].unique()) if "year" in df and len(df) else []


def _layout(fig: go.Figure, title: str, height: int = _HEIGHT) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return fig


def _grouped_bars(df: pd.DataFrame, x: str, y: str, title: str, order: list[str] | None = None,
                  horizontal: bool = False) -> go.Figure:
    fig = go.Figure()
    order = order if order is not None else list(df.groupby(x)[y].sum().sort_values(ascending=False).index)
    for year in _years(df):
        part = df[df["year"] == year].set_index(x)[y].reindex(order, fill_value=0)
        if horizontal:
            fig.add_bar(y=order, x=part.to_list(), name=str(year), orientation="h")
        else:
            fig.add_bar(x=order, y=part.to_list(), name=str(year))
    fig.update_layout(barmode="group")
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    return _layout(fig, title)


def country_map(by_country: pd.DataFrame) -> go.Figure:
    """Figure 1: cases by reporting country, all years of the range (ISO-3 on Plotly's world map)."""
    ref = countries().set_index("alpha2")
    cases = by_country.groupby("reporting_country")["cases"].sum()
    iso3 = ref["alpha3"].reindex(cases.index)
    names = ref["name"].reindex(cases.index).fillna(pd.Series(cases.index, index=cases.index))
    fig = go.Figure(go.Choropleth(
        locations=iso3.to_list(), z=cases.to_list(), text=names.to_list(), locationmode="ISO-3",
        colorscale="Reds", colorbar={"title": {"text": "cases"}},
        hovertemplate="%{text}: %{z:,} cases<extra></extra>",
    ))
    fig.update_geos(projection_type="natural earth", showcountries=True, showframe=False,
                    countrycolor="#999", showcoastlines=False, resolution=110, scope="world",
                    projection_rotation_lon=0, center_lon=0, lonaxis_range=[-180, 180])
    years = _years(by_country)
    span = f"{years[0]}–{years[-1]}" if years else ""
    return _layout(fig, f"Cases by reporting country, {span}", height=520)


def country_totals(by_country: pd.DataFrame) -> pd.DataFrame:
    """Cases, seizures and quantity per reporting country over all years, most cases first."""
    total = (by_country.groupby("reporting_country", as_index=False)[["cases", "seizures", "quantity"]].sum()
             .sort_values(["cases", "reporting_country"], ascending=[False, True]))
    names = countries().set_index("alpha2")["name"]
    total.insert(1, "country", [names.get(c, c) for c in total["reporting_country"]])
    return total.reset_index(drop=True)


def region_bars(weapon_seizures: pd.DataFrame) -> go.Figure:
    """Figure 2: weapon seizures (small arms, light weapons, other weapons) per region and year."""
    return _grouped_bars(weapon_seizures, "region", "seizures",
                         "Weapon seizures by region (small arms, light and other weapons; reporting country's region)")


def top_countries(by_country: pd.DataFrame, n: int = TOP_COUNTRIES) -> tuple[go.Figure, pd.DataFrame]:
    """Figure 3: the ``n`` countries with most cases in the last year; also returns the table shown."""
    years = _years(by_country)
    wide = by_country.pivot_table(index="reporting_country", columns="year", values="cases",
                                  aggfunc="sum", fill_value=0)
    if not years:
        return go.Figure(), pd.DataFrame()
    wide = wide.sort_values([years[-1], *years[-2::-1]], ascending=False).head(n)  # type: ignore[list-item]
    order = list(wide.index)
    fig = _grouped_bars(by_country[by_country["reporting_country"].isin(order)], "reporting_country", "cases",
                        f"Top {len(order)} reporting countries by cases in {years[-1]}", order=order)
    names = countries().set_index("alpha2")["name"]
    table = wide.reset_index()
    table.columns = [str(c) for c in table.columns]
    table.insert(1, "country", [names.get(c, c) for c in table["reporting_country"]])
    return fig, table


def weapon_types(by_weapon_type: pd.DataFrame) -> go.Figure:
    """Figure 4: seizures and quantity by weapon type, side by side."""
    order = list(by_weapon_type.groupby("weapon_type")["seizures"].sum().sort_values(ascending=False).index)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("seizures", "quantity (pieces)"),
                        horizontal_spacing=0.03)
    for i, year in enumerate(_years(by_weapon_type)):
        part = by_weapon_type[by_weapon_type["year"] == year].set_index("weapon_type").reindex(order, fill_value=0)
        color = _COLORS[i % len(_COLORS)]
        fig.add_bar(y=order, x=part["seizures"].to_list(), name=str(year), orientation="h", row=1, col=1,
                    marker_color=color, legendgroup=str(year))
        fig.add_bar(y=order, x=part["quantity"].to_list(), name=str(year), orientation="h", row=1, col=2,
                    marker_color=color, legendgroup=str(year), showlegend=False)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(barmode="group")
    return _layout(fig, "Weapon types by seizures and quantity", height=max(_HEIGHT, 28 * len(order) + 160))


def year_pairs(df: pd.DataFrame, title: str) -> go.Figure:
    """Seizures and quantity per year (Figure 5 ammunition, Figure 10 imitation guns)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("seizures", "quantity (pieces)"))
    years = [str(y) for y in df["year"]]
    fig.add_bar(x=years, y=df["seizures"].to_list(), name="seizures", row=1, col=1, marker_color=_COLORS[0])
    fig.add_bar(x=years, y=df["quantity"].to_list(), name="quantity", row=1, col=2, marker_color=_COLORS[1])
    fig.update_xaxes(type="category")
    fig.update_layout(showlegend=False)
    return _layout(fig, title, height=380)


def route_sankey(routes: pd.DataFrame) -> go.Figure:
    """Figure 6: departure region → destination region, unknown (UNK) included and greyed."""
    deps = sorted(routes["departure_region"].unique())
    dsts = sorted(routes["destination_region"].unique())
    labels = [f"{r} (departure)" for r in deps] + [f"{r} (destination)" for r in dsts]
    colors = ["#bbbbbb" if r == "UNK" else "#4c78a8" for r in deps] + [
        "#bbbbbb" if r == "UNK" else "#e45756" for r in dsts]
    source = [deps.index(r) for r in routes["departure_region"]]
    target = [len(deps) + dsts.index(r) for r in routes["destination_region"]]
    link_colors = ["rgba(180,180,180,0.4)" if "UNK" in (a, b) else "rgba(76,120,168,0.35)"
                   for a, b in zip(routes["departure_region"], routes["destination_region"], strict=True)]
    fig = go.Figure(go.Sankey(
        node={"label": labels, "color": colors, "pad": 12, "thickness": 14},
        link={"source": source, "target": target, "value": routes["cases"].to_list(), "color": link_colors,
              "customdata": [f"{s:.2%}" for s in routes["share_of_cases"]],
              "hovertemplate": "%{source.label} → %{target.label}: %{value:,} cases (%{customdata})<extra></extra>"},
    ))
    return _layout(fig, "Trafficking routes by region (cases; UNK = unknown country)", height=560)


PANEL_YEARS = 6  # one panel per year at most this many: unreadable past a few (and plotly refused 37)


def _last_years(df: pd.DataFrame) -> tuple[pd.DataFrame, list[int], str]:
    """The rows of the last ``PANEL_YEARS`` years of ``df``, those years, and what a title says when some were
    left out (the figure's table holds every year)."""
    every = _years(df)
    years = every[-PANEL_YEARS:]
    if len(years) == len(every):
        return df, years, ""
    return df[df["year"].isin(years)], years, f" (the last {len(years)} of {len(every)} years; the table holds all)"


def weapon_region_heatmap(df: pd.DataFrame) -> go.Figure:
    """Figure 7: seizures per weapon type and region, one panel per year (the last ``PANEL_YEARS``)."""
    df, years, shown = _last_years(df)
    types = list(df.groupby("weapon_type")["seizures"].sum().sort_values(ascending=False).index)
    regions = list(df.groupby("region")["seizures"].sum().sort_values(ascending=False).index)
    fig = make_subplots(rows=1, cols=max(len(years), 1), shared_yaxes=True,
                        subplot_titles=[str(y) for y in years], horizontal_spacing=0.02)
    zmax = float(df["seizures"].max()) if len(df) else 1.0
    for i, year in enumerate(years, start=1):
        grid = (df[df["year"] == year].pivot_table(index="weapon_type", columns="region", values="seizures",
                                                   aggfunc="sum", fill_value=0)
                .reindex(index=types, columns=regions, fill_value=0))
        fig.add_trace(go.Heatmap(z=grid.to_numpy().tolist(), x=regions, y=types, zmin=0, zmax=zmax,
                                 colorscale="Blues", showscale=i == len(years),
                                 hovertemplate="%{y} in %{x}: %{z:,} seizures<extra></extra>"), row=1, col=i)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"Weapon seizures by type and region{shown}", height=max(_HEIGHT, 26 * len(types) + 160))


def change_bars(yoy: pd.DataFrame, measure: str, first: int, last: int, what: str = "") -> go.Figure:
    """Figures 8 and 9: percentage change of seizures or quantity per weapon type (known changes only)."""
    col = f"{measure}_change_pct"
    known = yoy.dropna(subset=[col]).sort_values(col, ascending=False)
    colors = ["#54a24b" if v >= 0 else "#e45756" for v in known[col]]
    fig = go.Figure(go.Bar(
        x=known[col].to_list(), y=known["weapon_type"].to_list(), orientation="h", marker_color=colors,
        customdata=known[[f"{measure}_first", f"{measure}_last"]].to_numpy().tolist(),
        hovertemplate="%{y}: %{x:+.1f} % (%{customdata[0]:,} → %{customdata[1]:,})<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(ticksuffix=" %")
    return _layout(fig, f"Change in {what or measure} by weapon type, {first} → {last}",
                   height=max(360, 28 * len(known) + 140))


def stacked_by_year(df: pd.DataFrame, x: str, color: str, y: str, title: str) -> go.Figure:
    """Figures 12-14: ``y`` per ``x``, stacked by ``color``, one panel per year (the last ``PANEL_YEARS``)."""
    df, years, shown = _last_years(df)
    order = list(df.groupby(x)[y].sum().sort_values(ascending=False).index)
    groups = sorted(df[color].unique())
    fig = make_subplots(rows=1, cols=max(len(years), 1), shared_yaxes=True,
                        subplot_titles=[str(v) for v in years], horizontal_spacing=0.03)
    for j, group in enumerate(groups):
        for i, year in enumerate(years, start=1):
            part = (df[(df["year"] == year) & (df[color] == group)].set_index(x)[y]
                    .reindex(order, fill_value=0))
            fig.add_bar(x=order, y=part.to_list(), name=str(group), legendgroup=str(group),
                        marker_color=_COLORS[j % len(_COLORS)], showlegend=i == 1, row=1, col=i)
    fig.update_layout(barmode="stack")
    return _layout(fig, title + shown, height=500)


_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac"]
