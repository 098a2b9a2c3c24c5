"""Short generated texts for the figures: year-on-year changes and top movers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def fmt_number(value: Any) -> str:
    """1234567.0 → '1,234,567'; 12.5 → '12.5'."""
    if value is None or value is pd.NA:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def change_phrase(first: Any, last: Any) -> str:
    """'rose 20 % from 10 to 12' / 'fell …' / 'stayed at …' / 'went from 0 to 5'."""
    first, last = float(first), float(last)
    if first == last:
        return f"stayed at {fmt_number(last)}"
    if first == 0:
        return f"went from 0 to {fmt_number(last)}"
    pct = 100.0 * (last - first) / first
    verb = "rose" if last > first else "fell"
    return f"{verb} {abs(pct):.0f} % from {fmt_number(first)} to {fmt_number(last)}"


def first_last_years(df: pd.DataFrame) -> tuple[int, int] | None:
    if df.empty or "year" not in df:
        return None
    return int(df["year"].min()), int(df["year"].max())


def describe_totals(totals: pd.DataFrame) -> str:
    span = first_last_years(totals)
    if span is None:
        return "No seizures in the selected years."
    first, last = span
    t = totals.set_index("year")
    n_cases, n_seizures = int(totals["cases"].sum()), int(totals["seizures"].sum())
    head = (f"{fmt_number(n_cases)} cases ({fmt_number(n_seizures)} seizures, "
            f"{fmt_number(float(totals['quantity'].sum()))} items) in {first}–{last}.")
    if first == last:
        return head
    return (f"{head} From {first} to {last} the number of cases {change_phrase(t.at[first, 'cases'], t.at[last, 'cases'])}"
            f", and seizures {change_phrase(t.at[first, 'seizures'], t.at[last, 'seizures'])}.")


def _first_last(df: pd.DataFrame, key: str, measure: str) -> pd.DataFrame | None:
    span = first_last_years(df)
    if span is None or span[0] == span[1]:
        return None
    first, last = span
    wide = df.pivot_table(index=key, columns="year", values=measure, aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=[first, last], fill_value=0)
    wide.columns = pd.Index(["first", "last"])
    wide["change"] = wide["last"] - wide["first"]
    return wide


def describe_movers(df: pd.DataFrame, key: str, measure: str, label: str, n: int = 3) -> str:
    """Top increases and decreases of ``measure`` per ``key`` between the first and last year."""
    span = first_last_years(df)
    if span is None:
        return f"No {label} in the selected years."
    wide = _first_last(df, key, measure)
    if wide is None:
        top = df.groupby(key)[measure].sum().sort_values(ascending=False).head(n)
        return f"Most {label} in {span[0]}: " + ", ".join(f"{k} ({fmt_number(v)})" for k, v in top.items()) + "."
    first, last = span
    parts = []
    up = wide[wide["change"] > 0].sort_values(["change", "last"], ascending=False).head(n)
    down = wide[wide["change"] < 0].sort_values(["change", "last"]).head(n)
    if len(up):
        parts.append("largest increases: " + "; ".join(
            f"{k} {change_phrase(r['first'], r['last'])}" for k, r in up.iterrows()))
    if len(down):
        parts.append("largest decreases: " + "; ".join(
            f"{k} {change_phrase(r['first'], r['last'])}" for k, r in down.iterrows()))
    if not parts:
        return f"No change in {label} between {first} and {last}."
    text = "; ".join(parts)
    return f"{label.capitalize()}, {first} to {last}: {text}."


def describe_top(df: pd.DataFrame, key: str, measure: str, label: str, n: int = 15) -> str:
    span = first_last_years(df)
    if span is None:
        return f"No {label} in the selected years."
    total = df.groupby(key)[measure].sum().sort_values(ascending=False)
    share = total.head(n).sum() / total.sum() if total.sum() else 0.0
    top = ", ".join(str(k) for k in total.head(3).index)
    return (f"The top {min(n, len(total))} of {len(total)} reporting countries account for {share:.0%} of "
            f"{label} over {span[0]}–{span[1]}; the most are reported by {top}.")


def describe_yoy(yoy: pd.DataFrame, measure: str, first: int | None, last: int | None, n: int = 4) -> str:
    col = f"{measure}_change_pct"
    if yoy.empty or first is None or last is None:
        return "No weapon types in the selected years."
    known = yoy.dropna(subset=[col]).sort_values(col, ascending=False)
    new = yoy[yoy[col].isna() & (yoy[f"{measure}_last"] > 0)]
    parts = []
    up = known[known[col] > 0].head(n)
    if len(up):
        parts.append(f"largest increases in {measure} from {first} to {last}: " + "; ".join(
            f"{r.weapon_type} +{getattr(r, col):.0f} % ({fmt_number(getattr(r, measure + '_first'))} → "
            f"{fmt_number(getattr(r, measure + '_last'))})" for r in up.itertuples()))
    down = known[known[col] < 0].sort_values(col).head(2)
    if len(down):
        parts.append("largest falls: " + "; ".join(
            f"{r.weapon_type} {getattr(r, col):.0f} %" for r in down.itertuples()))
    if len(new):
        parts.append(f"none in {first}, seized in {last}: " + ", ".join(new["weapon_type"]))
    if not parts:
        return f"No change in {measure} between {first} and {last}."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def describe_routes(endpoints: pd.DataFrame) -> str:
    if endpoints.empty:
        return "No routes in the selected years."
    e = endpoints.set_index(["role", "region"])["share_of_cases"]
    dep_unknown = float(e.get(("departure", "UNK"), 0.0))
    dst_unknown = float(e.get(("destination", "UNK"), 0.0))
    known = endpoints[endpoints["region"] != "UNK"].sort_values("cases", ascending=False)
    top_dep = known[known["role"] == "departure"].head(1)
    top_dst = known[known["role"] == "destination"].head(1)
    text = (f"The departure region is unknown for {dep_unknown:.2%} of cases and the destination "
            f"region for {dst_unknown:.2%}.")
    if len(top_dep) and len(top_dst):
        text += (f" The main known departure region is {top_dep['region'].iat[0]} "
                 f"({top_dep['share_of_cases'].iat[0]:.2%} of cases), the main destination "
                 f"{top_dst['region'].iat[0]} ({top_dst['share_of_cases'].iat[0]:.2%}).")
    return text


def describe_share_by(df: pd.DataFrame, key: str, by: str, measure: str, label: str) -> str:
    """Most common ``key`` overall and per ``by`` value (e.g. detection method per direction)."""
    if df.empty:
        return f"No {label} in the selected years."
    total = df.groupby(key)[measure].sum().sort_values(ascending=False)
    per = df.groupby([by, key])[measure].sum().reset_index().sort_values(measure, ascending=False)
    lead = per.drop_duplicates(by).sort_values(by)
    details = "; ".join(f"{getattr(r, by)}: {getattr(r, key)} ({fmt_number(getattr(r, measure))})"
                        for r in lead.itertuples())
    return (f"Most {label}: {total.index[0]} ({fmt_number(total.iat[0])}). "
            f"Most common per {by.replace('_', ' ')}: {details}.")
