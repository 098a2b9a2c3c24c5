"""Rewrite the README's performance table from the benchmarks' own JSON output (nothing typed by hand).

    .venv/bin/python benchmarks/batch_throughput.py --trees 0 ... > /tmp/batch-small.json
    .venv/bin/python benchmarks/batch_throughput.py --trees 300 --leaves 63 ... > /tmp/batch-300.json
    .venv/bin/python benchmarks/reasons_speed.py --work <the 300-tree work folder> > /tmp/reasons.json
    .venv/bin/python benchmarks/api_latency.py ... --json /tmp/api.json
    RISKPROF_NUM_THREADS=1 .venv/bin/python benchmarks/profiles_e2e.py --rows 400000 --repeat 5 ... --json /tmp/profiles.json
    .venv/bin/python benchmarks/readme_table.py --batch /tmp/batch-small.json --batch-reference /tmp/batch-300.json \\
        --reasons /tmp/reasons.json --api /tmp/api.json --profiles /tmp/profiles.json [--date 2026-12-02] \\
        [--note "load average 1.2"]

The table sits between ``<!-- performance:start -->`` and ``<!-- performance:end -->`` in README.md;
every figure in it comes from one of the files given, each a ratio against a baseline measured in
the same run where the benchmark has one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"


def _load(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path else None


def _rate(x: float) -> str:
    return f"{x:,.0f} rows/s"


def rows_batch(d: dict[str, Any], goal: str) -> list[list[str]]:
    raw, e2e = d["raw_predict"], d["end_to_end"]
    model = f"{raw['n_trees']} trees × {raw['n_features']} features"
    out = [[f"`riskprof score`, reasons off, {d['rows']:,} rows, {model}: end to end",
            _rate(e2e["rows_per_second"]), f"raw `predict` {_rate(raw['rows_per_second'])} (2 threads)",
            f"**{d['ratio_end_to_end_vs_raw_predict']:.2f}×**"
            + (f" (best of each; paired runs: median {d['ratio_paired_median']:.2f}×)" if "ratio_paired_median" in d
               else ""), goal if d["rows"] <= 1_000_000 else ""],  # the ratio goals are at 1 M rows
           [f"… peak RSS ({d['rows']:,} rows)", f"{e2e['peak_rss_mib']:,.0f} MiB", "", "",
            "≤ 2 GiB" if d["rows"] >= 10_000_000 else ""]]
    stage = (d.get("stages") or {}).get("snapshot_join") or {}
    if stage.get("validation"):  # the issue asks for contract validation on a line of its own
        out.append([f"… contract validation of one {d['chunk_rows']:,}-row chunk (stage profile, least of 3)",
                    _rate(d["chunk_rows"] / stage["validation"]), "", "", "≥ 2 M rows/s"])
    steady = d.get("end_to_end_after_start_up") or {}
    if steady:
        out.append([f"… the same after the fixed start-up ({steady.get('start_up_seconds', 0):.1f} s: model load)",
                    _rate(steady["rows_per_second"]), "", f"{steady['rows_per_second'] / raw['rows_per_second']:.2f}×",
                    ""])
    cost = d.get("reasons_cost")
    if cost:
        out.append([f"reasons for red/yellow items in the same batch run ({cost['flagged_items']:,} items of "
                    f"{cost['rows']:,} rows), per item", f"{cost['seconds_per_flagged_item_ms']:.2f} ms",
                    "the same rows with reasons off", "", "≤ 2 ms" if raw["n_trees"] >= 300 else ""])
    tr = d.get("training_features")
    if tr:
        out.append([f"training features, {tr['rows']:,} labelled rows (as-of path)", _rate(tr["rows_per_second"]),
                    "", "", ""])
    return out


def rows_reasons(r: dict[str, Any]) -> list[list[str]]:
    t, p = r["tables_1_threads_ms_per_item"], r["pred_contrib_1_threads_ms_per_item"]
    return [[f"reasons per flagged item incl. text, {r['trees']} trees ({r['flagged']:,} items), family tables "
             f"(built once per model, {r['tables_build_seconds']:.2f} s)", f"{t:.2f} ms", f"per-feature `pred_contrib` {p:.2f} ms",
             f"{p / t:.1f}× faster", "≤ 2 ms"],
            ["… one item at a time, p50 / p99", f"{r['tables_single_p50_ms']:.2f} / {r['tables_single_p99_ms']:.2f} ms",
             f"{r['pred_contrib_single_p50_ms']:.2f} / {r['pred_contrib_single_p99_ms']:.2f} ms", "", ""]]


def rows_api(a: dict[str, Any]) -> list[list[str]]:
    out = []
    ip = a["in_process"]["single"]
    idle, busy = a["in_process"].get("single_after_idle"), a["in_process"].get("single_after_busy")
    if idle and busy:  # what a call costs after the CPU idled, as between two calls at concurrency 1
        out.append(["in process, one declaration after a 2 ms pause with the CPU idle (asleep): p50 / p99",
                    f"{idle['p50_ms']} / {idle['p99_ms']} ms", f"after the same pause spinning {busy['p50_ms']} / "
                    f"{busy['p99_ms']} ms", f"×{idle['p50_ms'] / busy['p50_ms']:.2f} (p50)", ""])
    for label, res in a["server"].items():
        c1, c8 = res["single_c1"], res["single_c8"]
        out.append([f"`POST /v1/score`, one declaration with reasons, concurrency 1 ({label}): p50 / p99",
                    f"{c1['p50_ms']} / {c1['p99_ms']} ms", f"in process {ip['p50_ms']} / {ip['p99_ms']} ms",
                    f"×{res['single_ratio_p50']} (p50)", "p99 ≤ 3 ms"])
        lean = res.get("single_c1_lean")
        if lean:  # the same calls through a lean client (http.client): httpx's own cost per call left out
            out.append([f"… the same calls through a lean client (`http.client`), concurrency 1 ({label}): p50 / p99",
                        f"{lean['p50_ms']} / {lean['p99_ms']} ms", "", "", "p99 ≤ 3 ms"])
        out.append([f"… concurrency 8 ({label})", f"{c8['requests_per_s']} req/s", "", "", "≥ 500 req/s"])
    return out


def _change(x: float) -> str:
    return f"{x * 100:+.1f} %".replace("-", "−")


def rows_profiles(d: dict[str, Any]) -> list[list[str]]:
    out = []
    b = d.get("batch")
    if b:
        what = f"{b['profiles']:,} profiles, {b['watch_list_entries']:,} watch-list entries"
        out.append([f"`riskprof score` with {what}, {b['rows']:,} rows (best of {len(b['rows_per_s']['with'])})",
                    _rate(b["best"]["with"]), f"without profiles {_rate(b['best']['without'])}",
                    f"**{_change(-b['fall'])}** (medians {_change(b['median']['with'] / b['median']['without'] - 1)}"
                    + (f"; paired runs: median {_change(-b['paired_fall_median'])}" if "paired_fall_median" in b
                       else "") + ")",
                    "≥ −15 %"])
        within = b.get("rows_within_budget_with_store_read")
        out.append([f"… counting the store read before the run ({b['store_read_best_s']:.2f} s, once per run)",
                    _rate(b["with_store_read_rows_per_s"]), "", _change(-b["fall_with_store_read"]),
                    f"within 15 % from {within:,.0f} rows" if within else ""])
    a = d.get("api")
    if a:
        w, o = a["with"], a["without"]
        out.append([f"`POST /v1/score` with those profiles, one declaration, concurrency 1 ({a['calls']:,} calls "
                    "interleaved): p50 / p99", f"{w['p50_ms']:.2f} / {w['p99_ms']:.2f} ms",
                    f"without profiles {o['p50_ms']:.2f} / {o['p99_ms']:.2f} ms",
                    f"p99 **{w['p99_ms'] - o['p99_ms']:+.2f} ms**".replace("-", "−"), "p99 ≤ +1 ms"])
    return out


def render(rows: list[list[str]], date: str, note: str) -> str:
    head = ["what", "measured", "baseline in the same run", "ratio", "goal"]
    lines = [f"Measured {date} on the 2-core build machine{'; ' + note if note else ''}; generated by "
             "`benchmarks/readme_table.py` from the benchmarks' JSON output (commands in its docstring).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=Path, action="append", default=[],
                    help="batch_throughput.py JSON, the product's early-stopped model (repeatable: 1 M, 10 M rows)")
    ap.add_argument("--batch-reference", type=Path, help="batch_throughput.py JSON, the 300 × 63 reference model")
    ap.add_argument("--reasons", type=Path, help="reasons_speed.py JSON")
    ap.add_argument("--api", type=Path, help="api_latency.py --json output")
    ap.add_argument("--profiles", type=Path, help="profiles_e2e.py --json output")
    ap.add_argument("--date", default=dt.date.today().isoformat())
    ap.add_argument("--note", default="")
    ap.add_argument("--readme", type=Path, default=README)
    a = ap.parse_args()
    rows: list[list[str]] = []
    for path in a.batch:
        rows += rows_batch(json.loads(path.read_text()), "≥ 0.5×")
    if (b := _load(a.batch_reference)) is not None:
        rows += rows_batch(b, "≥ 0.85×")
    if (r := _load(a.reasons)) is not None:
        rows += rows_reasons(r)
    if (api := _load(a.api)) is not None:
        rows += rows_api(api)
    if (pr := _load(a.profiles)) is not None:
        rows += rows_profiles(pr)
    if not rows:
        raise SystemExit("give at least one benchmark output (--batch, --batch-reference, --reasons, --api, "
                         "--profiles)")
    text = a.readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{a.readme} has no {START} … {END} block")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    a.readme.write_text(before + START + "\n" + render(rows, a.date, a.note) + "\n" + END + after)
    print(render(rows, a.date, a.note))


if __name__ == "__main__":
    main()
