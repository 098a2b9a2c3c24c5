"""A batch output recorded in the audit log (``serving.batch_audit.record_batch_output``): every item
with its score, lane, selection, reasons and rule hits, read from the output column by column and
stored as the API's items are (SQLite through its driver, PostgreSQL through SQLAlchemy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from batch._chunk import RULE_HIT_TYPE
from serving.batch_audit import record_batch_output
from serving.store import Store, audit_events, audit_rule_hits


def _output(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        reasons = None if i % 3 else json.dumps([{"family": "route", "text": f"é route {i}", "share": 0.5}],
                                                ensure_ascii=False)
        hits = [{"kind": "profile", "id": f"P-{j}", "version": 1 + j, "criterion": "c"} for j in range(i % 4 == 1 and 2)]
        rows.append({"declaration_id": f"D-{i:03d}", "risk_score": i / n, "lane": ("green", "yellow", "red")[i % 3],
                     "selection": ("none", "model", "rule")[i % 3], "selection_probability": None if i % 5 == 0 else 1.0,
                     "reasons": reasons, "rule_hits": hits})
    schema = pa.schema([("declaration_id", pa.string()), ("risk_score", pa.float64()), ("lane", pa.string()),
                        ("selection", pa.string()), ("selection_probability", pa.float64()), ("reasons", pa.string()),
                        ("rule_hits", RULE_HIT_TYPE)])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


@pytest.mark.parametrize("chunk_rows", [4, 1000])
def test_every_item_of_the_output_is_recorded_as_it_is(serving_store: Store, tmp_path: Path, chunk_rows: int) -> None:
    store = serving_store
    rows = _output(tmp_path / "scores.parquet", 23)
    n = record_batch_output(store, tmp_path / "scores.parquet", "nightly", {"name": "m", "version": "3"},
                            {"rows_scored": 23}, chunk_rows=chunk_rows)
    assert n == 23
    audit = store.audit_frame()
    assert list(audit["declaration_id"]) == [r["declaration_id"] for r in rows]
    assert list(audit["item"]) == list(range(23)) and set(audit["endpoint"]) == {"batch"}
    assert list(audit["risk_score"]) == [r["risk_score"] for r in rows]
    assert list(audit["lane"]) == [r["lane"] for r in rows] and list(audit["selection"]) == [r["selection"] for r in rows]
    assert [None if p != p else p for p in audit["selection_probability"]] == [r["selection_probability"] for r in rows]
    assert list(audit["reasons"]) == [None if r["reasons"] is None else json.loads(r["reasons"]) for r in rows]
    with store.engine.connect() as conn:
        event = conn.execute(sa.select(audit_events.c.n_items, audit_events.c.model_version)).one()
        hits = conn.execute(sa.select(audit_rule_hits.c.item, audit_rule_hits.c.declaration_id, audit_rule_hits.c.kind,
                                      audit_rule_hits.c.rule_id, audit_rule_hits.c.version)
                            .order_by(audit_rule_hits.c.id)).all()
    assert tuple(event) == (23, "3")
    assert [tuple(h) for h in hits] == [(i, r["declaration_id"], h["kind"], h["id"], h["version"])
                                        for i, r in enumerate(rows) for h in r["rule_hits"]]
    assert hits  # the output has rule hits: the check above can fail
