"""Opening a nightly batch output on the workbench: listed newest first, shown as the run wrote it (not
scored again) on the same ranked pages, only from the configured folder, a bad file named on the page."""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from batch import BatchOptions, OutputPaths, PinnedRules, list_outputs, read_output, score_manifest
from profiles import Profile, pinned_profiles
from serving.store import audit_events
from settings import Settings
from tests.conftest import API_MAX_ITEMS, Api, TinyModel, TinyRegistry
from tests.factories import make_declarations
from tests.test_workbench import signed_in

N = 40  # within the test app's max_items (50): the most the workbench opens
TOOLS = {"id": "P-TOOLS", "name": "hand tools", "criterion": "hand tools (HS 8206): cover goods in recent seizures",
         "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]}],
         "action": {"lane": "red", "select": True, "alert": True}, "valid_from": "2023-01-01",
         "status": "active", "owner": "analyst1"}
DECL_LINK = re.compile(r'/declarations/([^"]+)">')


def _score(tiny_model: TinyModel, folder: Path, n: int = N, seed: int = 7, name: str = "scores.parquet",
           manifest: str = "manifest.parquet") -> Path:
    """A real ``riskprof score`` run (the library function) of a generated manifest into ``folder``."""
    frame = make_declarations(np.random.default_rng(seed), n, start="2023-06-01", days=30)
    frame.loc[frame.index[0], "goods_description"] = "<script>alert(1)</script> lamp"
    src = folder / manifest
    frame.to_parquet(src, index=False)
    pins = PinnedRules.of(pinned_profiles([Profile.model_validate(TOOLS)]), [])
    score_manifest(src, folder / name, "models:/tiny/1",
                   BatchOptions(capacity="8", random_share=0.25, seed=1, chunk_rows=16, reasons_for="all"),
                   load_model=TinyRegistry("tiny", tiny_model.model).load, profiles=pins)
    return folder / name


@pytest.fixture(scope="module")
def scored(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _score(tiny_model, tmp_path_factory.mktemp("nightly"))


@pytest.fixture
def folder(scored: Path, tmp_path: Path) -> Path:
    """A copy of the run's output files a test may spoil (the manifest it recorded stays where it was)."""
    out = tmp_path / "out"
    out.mkdir()
    for f in (scored, OutputPaths(scored).meta):
        shutil.copy(f, out / f.name)
    return out


@pytest.fixture
def web(make_api: Callable[..., Api], folder: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Api]:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)

    def make(**kw: Any) -> Api:
        return make_api(batch_output_dir=kw.pop("batch_output_dir", folder), **kw)
    return make


def _open(api: Api, name: str) -> Any:
    return api.client.get("/app/batch-outputs/open", params={"file": name}, follow_redirects=False)


def test_the_setting_defaults_to_the_out_folder_and_reads_the_environment(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPROF_BATCH_OUTPUT_DIR", raising=False)
    assert Settings(home=tmp_path).batch_output_path == (tmp_path / "out").resolve()
    monkeypatch.setenv("RISKPROF_BATCH_OUTPUT_DIR", str(tmp_path / "nightly"))
    assert Settings(home=tmp_path).batch_output_path == (tmp_path / "nightly").resolve()


def test_the_reader_gives_the_items_as_written_with_their_declarations(folder: Path, scored: Path) -> None:
    written = pd.read_parquet(folder / "scores.parquet").sort_values("rank")
    out = read_output(folder / "scores.parquet")
    assert [it["declaration_id"] for it in out.items] == written["declaration_id"].tolist()
    assert [it["risk_score"] for it in out.items] == written["risk_score"].tolist()
    assert [it["selection"] for it in out.items] == written["selection"].tolist()
    assert all(isinstance(it["reasons"], list) and it["reasons"] and "text" in it["reasons"][0] for it in out.items)
    tools = {it["declaration_id"] for it in out.items if it["rule_hits"]}
    assert tools and all(it["lane"] == "red" for it in out.items if it["declaration_id"] in tools)
    manifest = pd.read_parquet(scored.parent / "manifest.parquet").set_index("declaration_id")
    got = out.declarations.set_index("declaration_id")
    assert sorted(got.index) == sorted(manifest.index) and out.notes == []
    assert (got.loc[manifest.index, "goods_description"] == manifest["goods_description"]).all()


def test_outputs_are_listed_newest_first_and_inputs_are_not_outputs(folder: Path, tiny_model: TinyModel) -> None:
    older = _score(tiny_model, folder, n=12, seed=3, name="scores-old.parquet", manifest="manifest-old.parquet")
    os.utime(older, (1_700_000_000, 1_700_000_000))
    (folder / ".scores.ckpt").mkdir()
    listed = list_outputs(folder)
    assert [o.name for o in listed] == ["scores.parquet", "scores-old.parquet"]
    assert (listed[0].rows, listed[0].model_name, listed[0].model_version) == (N, "tiny", "1")
    assert listed[1].rows == 12 and listed[0].finished
    assert [o.name for o in list_outputs(folder, limit=1)] == ["scores.parquet"]


def test_an_output_opens_on_the_ranked_pages_as_scored_without_ranking_again(web: Callable[..., Api],
                                                                            folder: Path) -> None:
    api = web()
    signed_in(api)
    page = api.client.get("/app/manifests")
    assert 'href="/app/batch-outputs/open?file=scores.parquet"' in page.text
    assert "manifest.parquet</a>" not in page.text
    assert re.search(r"<td class=\"num\">40</td>\s*<td>tiny version 1</td>", page.text)
    r = _open(api, "scores.parquet")
    assert r.status_code == 303, r.text[:2000]
    url = r.headers["location"]
    written = pd.read_parquet(folder / "scores.parquet").sort_values("rank")
    html = api.client.get(url).text
    assert "in the nightly batch" in html and "40 declarations ranked by tiny version 1" in html
    assert DECL_LINK.findall(html) == written["declaration_id"].tolist()  # rank order, one page of 40
    assert "&lt;script&gt;alert(1)&lt;/script&gt; lamp" in html and "<script>alert(1)" not in html
    red = api.client.get(url, params={"lane": "red"}).text
    assert DECL_LINK.findall(red) == written.loc[written["lane"] == "red", "declaration_id"].tolist()
    tools = api.client.get(url, params={"profile": "P-TOOLS"}).text
    hits = written[written["rule_hits"].map(len) > 0]["declaration_id"].tolist()
    assert hits and DECL_LINK.findall(tools) == hits
    csv = pd.read_csv(io.StringIO(api.client.get(url + "/selection.csv", params={"selected": "yes"}).text))
    chosen = written[written["selection"] != "none"]
    assert csv["declaration_id"].tolist() == chosen["declaration_id"].tolist()
    assert csv["risk_score"].tolist() == pytest.approx(chosen["risk_score"].tolist())
    assert csv["office_id"].notna().all()  # the declarations were joined from the manifest
    case = api.client.get(f"{url}/declarations/{hits[0]}")
    assert case.status_code == 200 and "P-TOOLS" in case.text and "hand tools (HS 8206)" in case.text
    assert "<dt>hs code</dt><dd>820600</dd>" in case.text  # the declaration's own fields, read from the manifest
    assert api.service.flush_audit(timeout=30)
    with api.store.engine.connect() as conn:
        events = conn.execute(sa.select(audit_events.c.endpoint, audit_events.c.params)).all()
    assert [e for e, _ in events if e in ("rank", "score")] == []  # nothing was scored again
    assert ("web/batch-output-open", {"file": "scores.parquet", "model": {"name": "tiny", "version": "1"}}) in events
    assert _open(api, "scores.parquet").headers["location"] == url  # opened once per session


NOT_OUTPUTS = ("../outside/scores.parquet", "/etc/passwd", "..", "", ".", "link.parquet", "manifest.parquet",
               "missing.parquet", "scores.meta.json", "..%2Fscores.parquet", "sub/scores.parquet", "sub\\scores.parquet",
               "scores.parquet\x00", "\x00", "scores\n.parquet")


def test_only_outputs_directly_in_the_configured_folder_open(web: Callable[..., Api], folder: Path,
                                                            scored: Path) -> None:
    outside = folder.parent / "outside"
    shutil.copytree(folder, outside)  # a real output one level up, the traversal's target
    shutil.copy(scored.parent / "manifest.parquet", folder / "manifest.parquet")  # an input, not an output
    (folder / "sub").mkdir()
    shutil.copy(folder / "scores.parquet", folder / "sub" / "scores.parquet")
    shutil.copy(folder / "scores.meta.json", folder / "sub" / "scores.meta.json")
    (folder / "link.parquet").symlink_to(outside / "scores.parquet")
    (folder / "link.meta.json").symlink_to(outside / "scores.meta.json")
    api = web()
    signed_in(api)
    for name in NOT_OUTPUTS:
        r = _open(api, name)
        assert r.status_code == 404 and "The batch output could not be opened" in r.text, (name, r.text[:500])
    assert "Ranked in this session" not in api.client.get("/app/manifests").text
    assert _open(api, "scores.parquet").status_code == 303  # the one output of the folder does open


def test_a_corrupt_or_truncated_output_is_named_on_the_page_never_a_500(web: Callable[..., Api],
                                                                       folder: Path) -> None:
    data = (folder / "scores.parquet").read_bytes()
    (folder / "cut.parquet").write_bytes(data[: len(data) // 2])
    shutil.copy(folder / "scores.meta.json", folder / "cut.meta.json")
    (folder / "junk.parquet").write_bytes(b"not parquet at all")
    (folder / "junk.meta.json").write_text("{")
    pd.DataFrame({"declaration_id": ["A"]}).to_parquet(folder / "other.parquet")
    t = pq.read_table(folder / "scores.parquet")
    pq.write_table(t.set_column(t.schema.get_field_index("reasons"), "reasons",
                                pa.array(["{not json"] * t.num_rows, pa.string())), folder / "reasons.parquet")
    for name in ("other", "reasons"):
        shutil.copy(folder / "scores.meta.json", folder / f"{name}.meta.json")
    api = web()
    signed_in(api)
    listing = api.client.get("/app/manifests").text
    assert "junk.meta.json cannot be read" in listing  # listed, with what is wrong
    for name, says in (("cut.parquet", "corrupt or truncated"), ("junk.parquet", "corrupt or truncated"),
                       ("other.parquet", "not a riskprof batch output"), ("reasons.parquet", "row 1 (")):
        r = _open(api, name)
        assert r.status_code == 422 and says in r.text and name in r.text, (name, r.text[:500])
        assert "Traceback" not in r.text


def test_a_spoilt_meta_file_falls_back_to_the_footer(web: Callable[..., Api], folder: Path) -> None:
    (folder / "scores.meta.json").write_text("[1, 2")
    api = web()
    signed_in(api)
    r = _open(api, "scores.parquet")
    assert r.status_code == 303
    html = api.client.get(r.headers["location"]).text
    assert "40 declarations ranked by tiny version 1" in html and "scores.meta.json cannot be read" in html


def test_a_manifest_changed_since_scoring_is_not_joined_and_the_page_says_so(web: Callable[..., Api],
                                                                             tiny_model: TinyModel,
                                                                             tmp_path: Path) -> None:
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    _score(tiny_model, nightly)
    frame = pd.read_parquet(nightly / "manifest.parquet")
    frame["goods_description"] = "changed"
    frame.to_parquet(nightly / "manifest.parquet", index=False)
    api = web(batch_output_dir=nightly)
    signed_in(api)
    assert "manifest.parquet</a>" not in api.client.get("/app/manifests").text  # an input is not an output
    html = api.client.get(_open(api, "scores.parquet").headers["location"]).text
    assert "changed since it was scored" in html and ">changed<" not in html
    assert len(DECL_LINK.findall(html)) == N  # the ranking itself is still shown
    (nightly / "manifest.parquet").unlink()
    signed_in(api)  # a new session: the output is read again
    html = api.client.get(_open(api, "scores.parquet").headers["location"]).text
    assert "no longer at" in html


def test_an_output_larger_than_the_workbench_limit_is_refused_with_the_reason(web: Callable[..., Api],
                                                                             folder: Path,
                                                                             tiny_model: TinyModel) -> None:
    _score(tiny_model, folder, n=API_MAX_ITEMS + 5, seed=5, name="big.parquet", manifest="big-manifest.parquet")
    api = web()
    signed_in(api)
    r = _open(api, "big.parquet")
    assert r.status_code == 422 and f"opens at most {API_MAX_ITEMS}" in r.text


def test_no_output_folder_lists_nothing(web: Callable[..., Api], tmp_path: Path) -> None:
    api = web(batch_output_dir=tmp_path / "nowhere")
    signed_in(api)
    page = api.client.get("/app/manifests")
    assert page.status_code == 200 and 'id="no-batch-outputs"' in page.text
    assert _open(api, "scores.parquet").status_code == 404


def test_a_csv_manifest_is_read_again_as_the_run_read_it(tiny_model: TinyModel, tmp_path: Path) -> None:
    frame = make_declarations(np.random.default_rng(9), 20, start="2023-06-01", days=30)
    frame["goods_description"] = "pièces détachées " + frame["goods_description"]
    src = tmp_path / "manifest.csv"
    frame.to_csv(src, index=False, sep=";", encoding="latin-1", date_format="%Y-%m-%d")
    score_manifest(src, tmp_path / "scores.parquet", "models:/tiny/1",
                   BatchOptions(capacity="3", encoding="latin-1", delimiter=";", chunk_rows=7),
                   load_model=TinyRegistry("tiny", tiny_model.model).load)
    out = read_output(tmp_path / "scores.parquet")
    got = out.declarations.set_index("declaration_id").loc[frame["declaration_id"], "goods_description"]
    assert out.notes == [] and got.tolist() == frame["goods_description"].tolist()
