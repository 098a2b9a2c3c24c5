"""Risk-profile columns in the checkpoint's parts: ``rule_hits`` kept inside the part and read back as
written; pass 2's alerts built by Arrow, the same records as one dict per hit."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batch._checkpoint import Checkpoint
from batch._chunk import RULE_HIT_TYPE, part_schema
from batch._output import ALERT_SCHEMA, _alerts, alerting_keys

KINDS = ("profile", "watch_list")


def _part(n: int, seed: int, hit_share: float = 0.3, alert_share: float = 0.5) -> pa.Table:
    rnd = random.Random(seed)
    hits: list[list[dict[str, Any]]] = []
    for _ in range(n):
        k = rnd.choice([1, 1, 2, 3]) if rnd.random() < hit_share else 0
        hits.append([{"kind": rnd.choice(KINDS), "id": rnd.choice(["P-1", "P-2", "W 3", "x\x1fy", "é"]),
                      "version": rnd.choice([1, 2, 12]), "criterion": rnd.choice(["a", "on list 'b'", None])}
                     for _ in range(k)])
    alert = [None if rnd.random() < 0.05 else (bool(h) and rnd.random() < alert_share) for h in hits]
    cols = {
        "_file": pa.array([0] * n, pa.int32()), "_row": pa.array(range(1, n + 1), pa.int64()),
        "declaration_id": pa.array([f"D{i:05d}" for i in range(n)], pa.string()),
        "risk_score": pa.array([rnd.random() for _ in range(n)], pa.float64()),
        "percentile": pa.array([rnd.random() for _ in range(n)], pa.float64()),
        "lane": pa.array([rnd.choice(["red", "yellow", "green"]) for _ in range(n)], pa.string()),
        "reasons": pa.nulls(n, pa.string()),
        "rule_select": pa.array([bool(h) and rnd.random() < 0.2 for h in hits], pa.bool_()),
        "rule_alert": pa.array(alert, pa.bool_()),
        "rule_hits": pa.array(hits, RULE_HIT_TYPE),
    }
    return pa.table(cols, schema=part_schema(True))


@pytest.mark.parametrize(("n", "hit_share"), [(0, 0.3), (1, 0.0), (1, 1.0), (50, 0.0), (500, 0.3), (300, 1.0)])
def test_rule_hits_are_read_back_as_written(tmp_path: Path, n: int, hit_share: float) -> None:
    ckpt = Checkpoint(tmp_path / "ckpt")
    ckpt.root.mkdir()
    part = _part(n, seed=n, hit_share=hit_share)
    rejects = pa.table({"source": pa.array([], pa.string())})
    ckpt.save_chunk(0, 3, part, rejects, {"rows": n, "rejected": 0})
    assert sorted(p.name for p in ckpt.root.iterdir()) == ["part-00000-000003.arrow", "rejects-00000-000003.arrow"]
    back = ckpt.read_part(0, 3)
    assert back.schema.equals(part_schema(True))  # the column's type and place as before, empty lists kept
    assert json.loads(back.schema.metadata[b"riskprof.chunk"]) == {"rows": n, "rejected": 0}
    assert back.replace_schema_metadata(None).equals(part)
    assert back.column("rule_hits").null_count == 0
    assert back.column("rule_hits").to_pylist() == part.column("rule_hits").to_pylist()
    assert ckpt.parts() == [(0, 3)] and ckpt.chunk_stats(0, 3)["rows"] == n
    ranked = ckpt.read_part_columns(0, 3, ["_row", "risk_score"])  # pass 2 reads what ranking needs
    assert ranked.column_names == ["_row", "risk_score"] and ranked.num_rows == n


def test_parts_without_rules_are_read_back_as_written(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path / "ckpt")
    ckpt.root.mkdir()
    part = _part(20, seed=1).select(part_schema(False).names)
    ckpt.save_chunk(0, 0, part, pa.table({"source": pa.array([], pa.string())}), {"rows": 20})
    assert ckpt.read_part(0, 0).replace_schema_metadata(None).equals(part)


def _reference_alerts(part: pa.Table, alerting: frozenset[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Pass 2's alerts as they were built before: one dict per flagged row, then per alerting hit."""
    rows = part.select(["declaration_id", "risk_score", "lane", "rule_alert", "rule_hits"]).to_pylist()
    return [{"declaration_id": r["declaration_id"], "kind": h["kind"], "rule_id": h["id"], "version": h["version"],
             "criterion": h["criterion"], "risk_score": r["risk_score"], "lane": r["lane"], "source": "batch"}
            for r in rows if r["rule_alert"] for h in r["rule_hits"] if (h["kind"], h["id"], h["version"]) in alerting]


@pytest.mark.parametrize("seed", range(6))
def test_alerts_are_the_records_of_one_dict_per_hit(seed: int) -> None:
    rnd = random.Random(seed)
    part = _part(400, seed=seed, alert_share=rnd.choice([0.0, 0.5, 1.0]))
    every = sorted({(h["kind"], h["id"], h["version"]) for hs in part.column("rule_hits").to_pylist() for h in hs})
    chunked = pa.concat_tables([part.slice(0, 150), part.slice(150, 100), part.slice(250)])  # as read: chunks
    filtered = part.filter(pa.array([rnd.random() < 0.8 for _ in range(part.num_rows)]))  # duplicates dropped
    for t in (part, chunked, filtered):
        for alerting in (frozenset(), frozenset(every), frozenset(rnd.sample(every, len(every) // 3)),
                         frozenset({("profile", "nope", 1), ("watch_list", "x", 99)})):
            table = _alerts(t, alerting_keys(alerting))
            assert table.schema.equals(ALERT_SCHEMA)
            got, want = table.to_pylist(), _reference_alerts(t, alerting)
            assert got == want
            assert [list(r) for r in got] == [list(r) for r in want]  # same fields in the same order
            assert all(type(a[f]) is type(b[f]) for a, b in zip(got, want, strict=True) for f in a)


def test_a_removal_killed_halfway_leaves_no_state_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The end of a run removes its checkpoint; killed during that removal, it must not leave a state
    beside parts whose rejects are already gone (the next run would resume from them and fail)."""
    import shutil

    ckpt = Checkpoint(tmp_path / "ckpt")
    ckpt.start({"inputs": []}, {"uri": "models:/m/1"})
    ckpt.save_chunk(0, 0, _part(20, seed=1), pa.table({"source": pa.array([], pa.string())}), {"rows": 20})
    assert ckpt.read_state() is not None

    def killed(path: Any, *a: Any, **k: Any) -> None:
        raise KeyboardInterrupt  # the process dies before anything else is removed

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.discard()
    assert ckpt.read_state() is None and ckpt.part_path(0, 0).exists()


@pytest.mark.parametrize("doc", [
    {}, {"a": 1}, {"b": {"x": [1, 2, {"q": 1}], "a": {"deep": {"z": 1}}}, "a": "é", "e": {}, "n": None},
    {"summary": {"lanes": {"red": 3, "green": 5}, "notes": ["x"]}, "profiles": {"profiles": [{"id": "p", "version": 2}]}},
])
def test_run_files_are_json_indented_two_levels_deep(doc: dict[str, Any]) -> None:
    from batch._checkpoint import shallow_json

    text = shallow_json(doc)
    assert json.loads(text) == doc
    for line in text.splitlines():  # nothing below the second level starts a line of its own
        assert len(line) - len(line.lstrip(" ")) <= 4
    if doc:
        assert text.splitlines()[1].startswith('  "')
