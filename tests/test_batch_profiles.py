"""Risk profiles in batch scoring: the API's decision on a whole manifest (API equals batch), no
profiles = the output as before, a resumed run keeps the profiles pinned at its start, alerts raised
once, and the Spark engine applying the same chunk function."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch import BatchOptions, OutputPaths, PinnedRules, read_metadata, score_manifest
from profiles import Profile, WatchList
from scoring import LaneSettings
from tests.conftest import Api, TinyModel, TinyRegistry, _json_records
from tests.factories import make_declarations

N = 48  # within the API's item limit in tests, so one request ranks the whole manifest
CAPACITY, RANDOM_SHARE, SEED = 20, 0.25, 5  # 12 rule selections; 3 model, 5 random
MODEL_URI = "models:/tiny/1"

TOOLS = {"id": "P-TOOLS", "name": "hand tools", "criterion": "hand tools (HS 8206): cover goods in recent seizures",
         "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]}],
         "action": {"lane": "red", "select": True, "alert": True}, "valid_from": "2023-01-01",
         "status": "active", "owner": "analyst1"}
LAMPS = {"id": "P-LAMPS", "name": "lamps by air", "criterion": "lamps flown in: a concealment seen this month",
         "conditions": [{"field": "goods_description", "op": "contains_any", "values": ["lamp"]},
                        {"field": "conveyance", "op": "in", "values": ["air", "express courier"]}],
         "action": {"lane": "yellow"}, "valid_from": "2023-01-01", "status": "active", "owner": "analyst1"}
DRAFT = {**TOOLS, "id": "P-DRAFT", "status": "draft"}
IMPORTERS = {"name": "importers", "field": "importer_id", "description": "importers named in a tip-off",
             "entries": [{"value": "I3", "reason": "tip-off 2023-05", "added_by": "analyst1"},
                         {"value": "I7", "reason": "seizure 2023-04", "added_by": "analyst1"}],
             "action": {"select": True}}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frame = make_declarations(np.random.default_rng(7), N, start="2023-06-01", days=30)
    path = tmp_path_factory.mktemp("manifest") / "manifest.parquet"
    frame.to_parquet(path, index=False)
    return {"path": path, "records": _json_records(frame), "frame": frame}


def _loader(tiny_model: TinyModel) -> Callable[[str], Any]:
    return TinyRegistry("tiny", tiny_model.model).load


def _options(**kw: Any) -> BatchOptions:
    lanes = LaneSettings().lanes  # the API's lane policy, as riskprof score reads it
    return BatchOptions(**{"capacity": str(CAPACITY), "random_share": RANDOM_SHARE, "seed": SEED,
                           "thresholds": lanes.fixed, "lane_shares": lanes.shares, "chunk_rows": 10, **kw})


def _pins(*profiles: dict[str, Any], lists: tuple[dict[str, Any], ...] = ()) -> PinnedRules:
    from profiles import pinned_profiles

    return PinnedRules.of(pinned_profiles([Profile.model_validate(p) for p in profiles]),
                          [WatchList.model_validate(w) for w in lists])


def _batch(manifest: dict[str, Any], tiny_model: TinyModel, out: Path, pins: PinnedRules | None,
           **kw: Any) -> Any:
    return score_manifest(manifest["path"], out, MODEL_URI, _options(**kw), load_model=_loader(tiny_model),
                          profiles=pins)


# ---- API equals batch --------------------------------------------------------------------------

def test_api_rank_equals_batch_on_the_same_manifest(make_api: Callable[..., Api], tiny_model: TinyModel,
                                                    manifest: dict[str, Any], tmp_path: Path) -> None:
    from riskprof.cli_score import pinned_from_store
    from serving.profile_store import ProfileStore

    api = make_api()
    assert api.post("/v1/watchlists", role="analyst", json=IMPORTERS).status_code == 201
    assert api.post("/v1/profiles", role="analyst", json=[TOOLS, LAMPS, DRAFT]).status_code == 201
    r = api.post("/v1/manifests/rank", json={"declarations": manifest["records"], "capacity": CAPACITY,
                                             "random_share": RANDOM_SHARE, "seed": SEED})
    assert r.status_code == 200, r.text
    by_api = {it["declaration_id"]: it for it in r.json()["items"]}

    pins = pinned_from_store(ProfileStore(api.store.engine))  # what riskprof score pins from the store
    out = tmp_path / "scores.parquet"
    summary = _batch(manifest, tiny_model, out, pins)  # chunks of 10 rows: matched per chunk, selected once
    got = pd.read_parquet(out).set_index("declaration_id")
    assert sorted(got.index) == sorted(by_api)
    for did, row in got.iterrows():
        a = by_api[did]
        assert row["risk_score"] == pytest.approx(a["risk_score"], abs=1e-12)
        assert (row["lane"], row["selection"], int(row["rank"])) == (a["lane"], a["selection"], a["rank"]), did
        assert row["selection_probability"] == pytest.approx(a["selection_probability"])
        assert [dict(h) for h in row["rule_hits"]] == a["rule_hits"], did
    # the comparison is not vacuous: rules selected items, raised lanes and gave reasons of every kind
    sel = got["selection"].value_counts().to_dict()
    assert sel.get("rule", 0) >= 3 and sel.get("model", 0) >= 1
    assert summary.counts.selection == {k: sel.get(k, 0) for k in ("none", "model", "random", "rule")}
    kinds = {(h["kind"], h["id"]) for hits in got["rule_hits"] for h in hits}
    assert kinds == {("profile", "P-TOOLS"), ("profile", "P-LAMPS"), ("watch_list", "importers")}
    tools = got[[any(h["id"] == "P-TOOLS" for h in hits) for hits in got["rule_hits"]]]
    assert (tools["lane"] == "red").all() and (tools["selection"] == "rule").all()
    lamps = got[[any(h["id"] == "P-LAMPS" for h in hits) for hits in got["rule_hits"]]]
    assert len(lamps) and lamps["lane"].isin(["yellow", "red"]).all()
    meta = json.loads(OutputPaths(out).meta.read_text())
    assert meta["profiles"]["profiles"] == [{"id": "P-TOOLS", "version": 1}, {"id": "P-LAMPS", "version": 1}]
    assert meta["profiles"]["watch_lists"] == [{"name": "importers", "version": 1}]
    assert read_metadata(out)["profiles"] == meta["profiles"]


def test_capacity_is_filled_rule_then_model_then_random(tiny_model: TinyModel, manifest: dict[str, Any],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    _batch(manifest, tiny_model, out, _pins(TOOLS))
    got = pd.read_parquet(out)
    forced = np.array([len(h) > 0 for h in got["rule_hits"]])
    assert (got.loc[forced, "selection"] == "rule").all() and (got.loc[forced, "selection_probability"] == 1).all()
    k_random = min(round(CAPACITY * RANDOM_SHARE), max(CAPACITY - forced.sum(), 0))
    k_model = max(CAPACITY - forced.sum(), 0) - k_random
    free = got.loc[~forced].sort_values("rank")
    assert (free["selection"].iloc[:k_model] == "model").all()
    assert (got["selection"] == "random").sum() == (k_random if len(free) > k_model else 0)
    assert (got["selection"] == "model").sum() == k_model


# ---- no profiles: the output as before ----------------------------------------------------------

def test_no_profiles_or_none_that_can_fire_give_the_output_as_before(tiny_model: TinyModel,
                                                                     manifest: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    plain, idle = tmp_path / "plain.parquet", tmp_path / "idle.parquet"
    _batch(manifest, tiny_model, plain, None)
    summary = _batch(manifest, tiny_model, idle, _pins(DRAFT))  # a draft never fires
    assert plain.read_bytes() == idle.read_bytes()
    assert "rule_hits" not in pq.read_schema(plain).names
    assert set(pd.read_parquet(plain)["selection"]) <= {"none", "model", "random"}
    assert summary.counts.selection.keys() == {"none", "model", "random"}
    assert json.loads(OutputPaths(idle).meta.read_text())["profiles"]["rules"] == 0
    assert json.loads(OutputPaths(plain).meta.read_text())["profiles"] is None


# ---- resume keeps the pinned set ------------------------------------------------------------------

class _Interrupted(Exception):
    pass


class _StopAfter:
    """A progress hook that stops the run (an exception, as a crash would) after ``chunks`` chunks; ``error``:
    the exception raised (a ``BaseException`` for a run that dies as under SIGKILL, no handler running)."""

    def __init__(self, chunks: int, error: type[BaseException] = _Interrupted):
        self.left = chunks
        self.error = error

    def start(self, total: int | None, completed: int) -> None: ...

    def advance(self, rows: int) -> None:
        self.left -= 1
        if self.left <= 0:
            raise self.error

    def stop(self) -> None: ...


def _interrupted(manifest: dict[str, Any], tiny_model: TinyModel, out: Path, pins: PinnedRules,
                 chunks: int) -> Path:
    """A run of ``pins`` stopped (as by a crash) after ``chunks`` chunks; returns its checkpoint folder."""
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(_Interrupted):
        score_manifest(manifest["path"], out, MODEL_URI, _options(), load_model=_loader(tiny_model),
                       profiles=pins, progress=_StopAfter(chunks))
    ckpt = OutputPaths(out).checkpoint
    assert len(list(ckpt.glob("part-*.arrow"))) == chunks and not out.exists()
    return ckpt


def test_a_resumed_run_keeps_the_profiles_pinned_at_its_start(tiny_model: TinyModel, manifest: dict[str, Any],
                                                              tmp_path: Path) -> None:
    original = _pins(TOOLS, LAMPS, lists=(IMPORTERS,))
    changed = _pins({**TOOLS, "version": 2, "conditions": [{"field": "hs_code", "op": "prefix", "values": ["9403"]}]},
                    {**LAMPS, "status": "retired", "version": 2})
    clean = tmp_path / "clean" / "scores.parquet"
    clean.parent.mkdir()
    _batch(manifest, tiny_model, clean, original)

    out = tmp_path / "resumed" / "scores.parquet"
    _interrupted(manifest, tiny_model, out, original, chunks=2)
    summary = _batch(manifest, tiny_model, out, changed)  # the store changed while the run was down
    assert summary.chunks_resumed == 2
    assert any("pinned at its start" in n for n in summary.notes)
    assert out.read_bytes() == clean.read_bytes()
    assert json.loads(OutputPaths(out).meta.read_text())["profiles"] == original.describe()
    # and the changed set does give another output: the test above can fail
    other = tmp_path / "other.parquet"
    _batch(manifest, tiny_model, other, changed)
    assert other.read_bytes() != clean.read_bytes()


def test_a_run_pinned_from_the_store_checkpoints_the_pins_and_resumes_with_those_versions(
        tiny_model: TinyModel, manifest: dict[str, Any], tmp_path: Path) -> None:
    """The store keeps every version, so the checkpoint holds ids and versions, not definitions; a
    resumed run reads the pinned versions back although newer ones are active by then."""
    from batch import CheckpointError
    from riskprof.cli_score import pinned_from_store
    from serving.profile_store import Actor, ProfileStore
    from serving.store import Store

    def store_at(path: Path) -> tuple[Store, ProfileStore]:
        store = Store.from_url(f"sqlite:///{path}")
        return store, ProfileStore(store.engine, extra_columns={})

    actor = Actor("analyst1", "cli")
    store, profiles = store_at(tmp_path / "serving.db")
    try:
        profiles.save([Profile.model_validate(TOOLS), Profile.model_validate(LAMPS)],
                      [WatchList.model_validate(IMPORTERS)], actor)
        original = pinned_from_store(profiles)
        clean = tmp_path / "clean.parquet"
        _batch(manifest, tiny_model, clean, original)

        out = tmp_path / "resumed" / "scores.parquet"
        ckpt = _interrupted(manifest, tiny_model, out, original, chunks=2)
        state = json.loads((ckpt / "profiles.json").read_text())
        assert state["pins"] == original.pins() and "profiles" not in state and "watch_lists" not in state
        # the store changes while the run is down: a new version of each profile, one more importer
        profiles.update_profile("P-TOOLS", {**TOOLS, "conditions": [
            {"field": "hs_code", "op": "prefix", "values": ["9403"]}]}, actor)
        profiles.retire("P-LAMPS", actor)
        profiles.update_watchlist("importers", {**IMPORTERS, "entries": [
            *IMPORTERS["entries"], {"value": "I1", "reason": "new tip-off", "added_by": "analyst1"}]}, actor)
        changed = pinned_from_store(profiles)
        assert changed.pins() != original.pins()
        summary = _batch(manifest, tiny_model, out, changed)
        assert summary.chunks_resumed == 2
        assert any("pinned at its start" in n for n in summary.notes)
        assert out.read_bytes() == clean.read_bytes()
        assert json.loads(OutputPaths(out).meta.read_text())["profiles"] == original.describe()
        other = tmp_path / "other.parquet"  # the changed set gives another output: the test above can fail
        _batch(manifest, tiny_model, other, changed)
        assert other.read_bytes() != clean.read_bytes()

        # a checkpoint whose pinned versions the store does not hold: a clear error, nothing published
        out2 = tmp_path / "gone" / "scores.parquet"
        _interrupted(manifest, tiny_model, out2, original, chunks=1)
    finally:
        store.dispose()
    other_store, fresh = store_at(tmp_path / "other-serving.db")
    try:
        fresh.save([Profile.model_validate(TOOLS)], [], actor)
        with pytest.raises(CheckpointError, match=r"remove it to start the run afresh") as err:
            _batch(manifest, tiny_model, out2, pinned_from_store(fresh))
        assert "P-LAMPS" in str(err.value) and not out2.exists()
    finally:
        other_store.dispose()


# ---- alerts ------------------------------------------------------------------------------------

def test_batch_alerts_are_raised_once_per_declaration_and_rule_version(tiny_model: TinyModel,
                                                                       manifest: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    from serving.profile_store import ProfileStore
    from serving.store import Store

    out = tmp_path / "scores.parquet"
    summary = _batch(manifest, tiny_model, out, _pins(TOOLS, LAMPS))
    tools = manifest["frame"].loc[manifest["frame"]["hs_code"].str.startswith("8206"), "declaration_id"]
    assert len(tools) >= 2
    assert sorted(a["declaration_id"] for a in summary.counts.alerts) == sorted(tools)  # LAMPS does not alert
    assert {(a["kind"], a["rule_id"], a["version"], a["source"]) for a in summary.counts.alerts} == {
        ("profile", "P-TOOLS", 1, "batch")}
    # the same records as the API's alert_records on the decision over the whole manifest
    from profiles.decide import alert_records, decide_rules

    frame = manifest["frame"]
    scored = pd.read_parquet(out).set_index("declaration_id").loc[frame["declaration_id"]]
    decided = decide_rules(frame, scored["risk_score"].to_numpy(), scored["lane"].to_numpy(dtype=object),
                           _pins(TOOLS, LAMPS).ruleset)
    expected = alert_records(decided, frame["declaration_id"].to_numpy(), "batch")

    def key(a: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted(a.items()))

    assert sorted(map(key, summary.counts.alerts)) == sorted(map(key, expected))
    store = Store.from_url(f"sqlite:///{tmp_path / 'serving.db'}")
    try:
        profiles = ProfileStore(store.engine)
        assert profiles.create_alerts(summary.counts.alerts) == len(tools)
        again = _batch(manifest, tiny_model, tmp_path / "again.parquet", _pins(TOOLS, LAMPS))
        assert profiles.create_alerts(again.counts.alerts) == 0  # the same declarations scored again
        assert len(profiles.list_alerts(limit=1_000)) == len(tools)
    finally:
        store.dispose()


# ---- Spark -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.integration
def test_spark_applies_the_same_profiles(tiny_model: TinyModel, manifest: dict[str, Any], tmp_path: Path) -> None:
    pins = _pins(TOOLS, LAMPS, lists=(IMPORTERS,))
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    _batch(manifest, tiny_model, local, pins, chunk_rows=20)
    _batch(manifest, tiny_model, spark, pins, chunk_rows=20, engine="spark", spark_master="local[2]")
    assert spark.read_bytes() == local.read_bytes()
    assert "rule" in set(pd.read_parquet(spark)["selection"])


# ---- riskprof score: profiles from the store or a file, alerts raised once ------------------------

def _score_cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from riskprof.cli import app

    return CliRunner().invoke(app, ["score", *args])


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from serving.settings import get_serving_settings

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    monkeypatch.setenv("RISKPROF_DATABASE_URL", url)
    get_serving_settings.cache_clear()
    yield url
    get_serving_settings.cache_clear()


def test_cli_applies_the_store_profiles_and_raises_alerts_once(trained_model: Any, store_url: str,
                                                               tmp_path: Path) -> None:
    from profiles import dump_profiles
    from serving.profile_store import Actor, ProfileStore
    from serving.store import Store

    frame = pd.read_parquet(trained_model.data["declarations"]).sort_values("declaration_id").iloc[-600:]
    path = tmp_path / "manifest.parquet"
    frame.to_parquet(path, index=False)
    common = frame["hs_code"].str[:4].value_counts().index[0]  # a heading the slice surely holds
    hot = {**TOOLS, "conditions": [{"field": "hs_code", "op": "prefix", "values": [common]}]}
    matching = set(frame.loc[frame["hs_code"].str.startswith(common), "declaration_id"])
    store = Store.from_url(store_url)
    try:
        profiles = ProfileStore(store.engine)
        profiles.save([hot, LAMPS], [], Actor.cli())
        args = ["--manifest", str(path), "--model", trained_model.uri, "--capacity", "5%", "--no-reasons"]
        first = _score_cli([*args, "--out", str(tmp_path / "a.parquet")])
        assert first.exit_code == 0, first.output
        assert f"alerts: {len(matching):,} raised (0 raised before)" in first.output
        assert "2 profile version(s), 0 watch list(s) pinned from the store" in first.output
        got = pd.read_parquet(tmp_path / "a.parquet")
        assert set(got.loc[got["selection"] == "rule", "declaration_id"]) == matching
        again = _score_cli([*args, "--out", str(tmp_path / "b.parquet")])
        assert again.exit_code == 0, again.output
        assert f"alerts: 0 raised ({len(matching):,} raised before)" in again.output
        assert {a["declaration_id"] for a in profiles.list_alerts(limit=10_000)} == matching

        # both runs are in the audit log (one event each, every item), so effectiveness counts them
        audit = store.audit_frame()
        assert (audit["endpoint"] == "batch").sum() == 2 * len(frame)
        assert "audit log: 600 item(s) recorded (endpoint batch)" in first.output
        assert set(audit.loc[audit["selection"] == "rule", "declaration_id"]) == matching
        inspected = sorted(matching)[:6]
        model_sel = sorted(got.loc[got["selection"] == "model", "declaration_id"])[:4]

        def outcome(did: str, hit: bool, source: str) -> dict[str, Any]:
            return {"declaration_id": did, "inspected_date": "2024-01-02", "inspected": True,
                    "selection_source": source, "selection_probability": 1.0, "hit": hit, "case_id": None,
                    "revenue": None}

        store.record_outcomes([outcome(d, i < 2, "rule") for i, d in enumerate(inspected)]
                              + [outcome(d, i < 1, "model") for i, d in enumerate(model_sel)], recorded_by="o")
        stats = profiles.stats().set_index("rule_id")
        assert stats.loc["P-TOOLS", "matches"] == len(matching)
        assert stats.loc["P-TOOLS", "inspections"] == 6 and stats.loc["P-TOOLS", "hits"] == 2
        assert stats.loc["P-TOOLS", "model_inspections"] == len(model_sel)
        assert stats.loc["P-TOOLS", "model_hits"] == (1 if model_sel else 0)

        bare = _score_cli([*args, "--out", str(tmp_path / "c.parquet"), "--no-profiles"])
        assert bare.exit_code == 0, bare.output
        assert "rule_hits" not in pq.read_schema(tmp_path / "c.parquet").names

        yaml_file = tmp_path / "profiles.yaml"
        yaml_file.write_text(dump_profiles([Profile.model_validate(hot)]))
        from_file = _score_cli([*args, "--out", str(tmp_path / "d.parquet"), "--profiles", str(yaml_file)])
        assert from_file.exit_code == 0, from_file.output
        assert read_metadata(tmp_path / "d.parquet")["profiles"]["source"] == f"file {yaml_file.resolve()}"
        pd.testing.assert_series_equal(pd.read_parquet(tmp_path / "d.parquet")["selection"], got["selection"])

        yaml_file.write_text(dump_profiles([Profile.model_validate(hot)]).replace("hs_code", "colour"))
        bad = _score_cli([*args, "--out", str(tmp_path / "e.parquet"), "--profiles", str(yaml_file)])
        assert bad.exit_code == 2 and "P-TOOLS" in bad.output and "colour" in bad.output
        assert "Traceback" not in bad.output and not (tmp_path / "e.parquet").exists()
    finally:
        store.dispose()


def test_the_pinned_state_gives_back_the_same_definitions_and_reads_its_older_form() -> None:
    lists = ({**IMPORTERS, "entries": [*IMPORTERS["entries"],
                                       {"value": "I9", "reason": "until June", "added_by": "a1", "expires": "2023-06-30"}]},)
    pins = _pins(TOOLS, LAMPS, lists=lists)
    state = json.loads(json.dumps(pins.state()))  # as the checkpoint stores it
    assert "entries" not in state["watch_lists"][0]  # entries as columns: compact to write
    back = PinnedRules.from_state(state)
    assert back == pins and back.describe() == pins.describe()
    older = {**state, "watch_lists": [w.model_dump(mode="json") for w in pins.watchlists]}  # entries as objects
    assert PinnedRules.from_state(older) == pins
