"""Monitoring and simulation pages: one self-contained HTML file (inline SVG, no script) plus the JSON."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from monitoring._svg import bar_chart, line_chart
from monitoring.build import LANES, SOURCES

CSS = ("body{font-family:sans-serif;max-width:980px;margin:1.5em auto;padding:0 1em;color:#0b0c0c}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #b1b4b6;padding:3px 8px;"
       "text-align:right;font-size:13px}th{background:#f3f2f1}td:first-child,th:first-child{text-align:left}"
       ".warn{border-left:6px solid #d4351c;padding:4px 10px;margin:4px 0;background:#fdf2f0}"
       ".ok{border-left:6px solid #00703c;padding:4px 10px;background:#f0f7f3}svg{margin:.5em 0 1.5em}")


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(_num(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{''.join(body)}</body></html>")


def _warnings(lines: list[str]) -> str:
    if not lines:
        return "<p class='ok'>No warnings: drift and calibration are within their bands.</p>"
    return "".join(f"<p class='warn'>{escape(w)}</p>" for w in lines)


def render_monitoring_html(result: dict[str, Any]) -> str:
    """The monitoring page: warnings, weekly hit rates with intervals, calibration, drift, lane volumes."""
    weeks = result["weeks"]
    labels = [w["week"] for w in weeks]
    series = {s: [w["by_source"][s]["rate"] for w in weeks] for s in SOURCES}
    series["overall (IPW, random stratum)"] = [w["ipw_overall"]["estimate"] for w in weeks]
    bands = {"IPW 95 % interval": ([w["ipw_overall"]["low"] for w in weeks],
                                   [w["ipw_overall"]["high"] for w in weeks])}
    body = [f"<p>Inspection rate for precision: {result['inspection_rate']:g}; since: "
            f"{escape(str(result['since'] or 'the first record'))}.</p>", "<h2>Warnings</h2>",
            _warnings(result["warnings"]), "<h2>Hit rates by selection source</h2>",
            line_chart("Weekly hit rate by selection source", labels, series, bands, y_label="hit rate")]
    rows = []
    for w in [*weeks, {**result["overall"], "week": "all weeks"}]:
        ipw, prec = w["ipw_overall"], w["precision_at_rate"]
        rows.append([w["week"], w["inspections"], w["hits"],
                     *[w["by_source"][s]["rate"] for s in SOURCES], ipw["estimate"], ipw["low"], ipw["high"],
                     prec["precision"], w["calibration"]["ece"]])
    body.append(_table(["week", "inspections", "hits", *[f"{s} hit rate" for s in SOURCES], "IPW overall",
                        "low", "high", f"precision at {result['inspection_rate']:g}", "ECE"], rows))
    curve = result["overall"]["calibration"]["bins"]
    if curve:
        body += ["<h2>Calibration</h2>",
                 line_chart("Reliability: observed hit rate by score bin (model and random selections)",
                            [f"{b['bin_low']:.1f}" for b in curve],
                            {"observed": [b["observed"] for b in curve], "mean score": [b["predicted"] for b in curve]}),
                 _table(["score bin", "items", "mean score", "observed"],
                        [[f"{b['bin_low']:.1f}–{b['bin_high']:.1f}", b["count"], b["predicted"], b["observed"]]
                         for b in curve])]
    if result["drift"]:
        d = result["drift"]
        low, high = result["psi_bands"]
        body += ["<h2>Feature drift (PSI, training period vs recent traffic)</h2>",
                 bar_chart("Population stability index per feature", [r["feature"] for r in d],
                           [r["psi"] for r in d], refs=[(low, f"{low:g}"), (high, f"{high:g}")]),
                 _table(["feature", "PSI", "band"], [[r["feature"], r["psi"], r["band"]] for r in d])]
    body += ["<h2>Lane volumes</h2>",
             line_chart("Declarations scored per week by lane", labels,
                        {lane: [float(w["lanes"][lane]) for w in weeks] for lane in LANES}),
             _table(["week", *LANES, "scored"], [[w["week"], *[w["lanes"][k] for k in (*LANES, "scored")]]
                                                 for w in weeks])]
    return _page("riskprof monitoring", body)


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(result, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")
    return path


def write_monitoring(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``monitoring.json`` and ``monitoring.html`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = out / "monitoring.html"
    html.write_text(render_monitoring_html(result))
    return {"json": write_json(result, out / "monitoring.json"), "html": html}


def render_simulation_html(result: dict[str, Any]) -> str:
    """The simulator's page: per strategy and week, hit rate, recall of the new pattern, IPW vs truth, cost."""
    cfg, rows = result["config"], result["weeks"]
    strategies = list(result["summary"])
    weeks = sorted({r["week"] for r in rows})
    at = {(r["strategy"], r["week"]): r for r in rows}

    def series(key: str) -> dict[str, list[float | None]]:
        return {s: [at[(s, w)][key] if (s, w) in at else None for w in weeks] for s in strategies}

    labels = [str(w) for w in weeks]
    drift = f"drift from week {cfg['drift_week']} ({', '.join(cfg['drift'])})" if cfg["drift"] else "no drift"
    ipw = {f"{s} IPW estimate": series("ipw_estimate")[s] for s in strategies if s != "exploit"}
    truth = [at[(strategies[0], w)]["true_rate"] for w in weeks]
    body = [f"<p>{cfg['weeks']} weeks × {cfg['per_week']:,} declarations, capacity {cfg['capacity']:g}, "
            f"exploration share {cfg['explore_share']:g}, {escape(drift)}, seed {cfg['seed']}.</p>",
            "<h2>Summary per strategy</h2>",
            _table(["strategy", "hits", "inspected", "hit rate", "cost in hits vs exploit",
                    "new-pattern recall after drift", "week found", "IPW mean error", "IPW coverage"],
                   [[s, v["hits"], v["inspected"], v["hit_rate"], v["cost_in_hits"],
                     v["new_pattern_recall_after_drift"], v["new_pattern_found_week"], v["ipw_mean_error"],
                     v["ipw_coverage"]] for s, v in result["summary"].items()]),
            line_chart("Recall of the new pattern per week", labels, series("new_pattern_recall"),
                       refs=[(cfg["discovery_recall"], "found")], y_label="recall"),
            line_chart("Hit rate of the inspections per week", labels, series("hit_rate"), y_label="hit rate"),
            line_chart("IPW estimate of the overall hit rate against the truth", labels,
                       {"true rate": truth, **ipw}, y_label="rate"),
            line_chart("Cumulative cost of exploring, in hits (against pure exploitation)", labels,
                       series("cumulative_cost_in_hits"), y_label="hits")]
    return _page("riskprof exploration simulation", body)


def write_simulation(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``simulation.json`` and ``simulation.html`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = out / "simulation.html"
    html.write_text(render_simulation_html(result))
    return {"json": write_json(result, out / "simulation.json"), "html": html}
