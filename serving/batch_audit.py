"""A batch run's decisions in the audit log: every item of ``riskprof score``'s output (score, lane,
selection, reasons, rule hits) as one audit event, so profile effectiveness, monitoring and the
outcome check see nightly selections as they see the API's."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from serving.store import AuditEvent, Store

BATCH_ENDPOINT = "batch"
CHUNK_ROWS = 50_000
_COLUMNS = ("declaration_id", "risk_score", "lane", "selection", "selection_probability", "reasons", "rule_hits")


def _item_columns(output: Path, chunk_rows: int) -> Iterator[dict[str, list[Any]]]:
    """The output's items, ``chunk_rows`` at a time, as columns (Arrow converts each whole column;
    only the reasons given are parsed), and their rule hits flat (``Store.append_audit_columns``)."""
    pf = pq.ParquetFile(output)
    names = [c for c in _COLUMNS if c in pf.schema_arrow.names]
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=names):
        columns = {name: batch.column(name).to_pylist() for name in names if name != "rule_hits"}
        if "reasons" in columns:
            columns["reasons"] = [None if r is None else json.loads(r) for r in columns["reasons"]]
        if "rule_hits" in names:
            hits = batch.column("rule_hits")
            flat = pc.list_flatten(hits)
            columns["hit_item"] = pc.list_parent_indices(hits).to_pylist()
            for key, field in (("hit_kind", "kind"), ("hit_id", "id"), ("hit_version", "version")):
                columns[key] = pc.struct_field(flat, field).to_pylist()
        yield columns


def record_batch_output(store: Store, output: Path, who: str, model: Mapping[str, Any],
                        params: Mapping[str, Any] | None = None, chunk_rows: int = CHUNK_ROWS) -> int:
    """Append the scored items of a finished batch output to the audit log (one event, endpoint
    ``batch``, role ``cli``); returns the number of items recorded."""
    event = AuditEvent(dt.datetime.now(dt.UTC), who, "cli", BATCH_ENDPOINT, str(model.get("name") or ""),
                       str(model.get("version") or ""), (), {"output": str(output), **dict(params or {})})
    return store.append_audit_columns(event, pq.ParquetFile(output).metadata.num_rows, _item_columns(output, chunk_rows))
