"""``riskprof profiles`` and ``riskprof watchlists`` against a real SQLite serving store in tmp_path."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from riskprof.cli import app
from serving.profile_store import ProfileStore
from serving.store import Store
from tests.test_profiles_suggest import HISTORY, seizures

PROFILES_YAML = """\
profiles:
- id: P-TOOLS
  name: hand tools TR-DE
  criterion: 'hand tools (HS 8206) from TR to DE by road: cover goods in recent weapon seizures'
  conditions:
  - field: hs_code
    op: prefix
    values: ['8206']
  - field: departure_country
    op: in
    values: [tr]
  - field: importer_id
    op: in_watch_list
    watch_list: importers
  action:
    lane: red
    select: true
    alert: true
  valid_from: 2023-01-01
  valid_to: 2023-12-31
  status: active
  owner: analyst1
- id: P-LIGHT
  name: light parcels
  criterion: very light parcels by mail
  conditions:
  - field: gross_weight_kg
    op: between
    values: [null, 0.5]
  action:
    lane: yellow
  valid_from: 2023-02-01
  status: draft
  owner: analyst2
watch_lists:
- name: importers
  field: importer_id
  description: importers under investigation
  entries:
  - value: IMP000123
    reason: tip-off
    added_by: analyst1
    expires: 2024-01-31
"""


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'serving.db'}"


def stored(url: str) -> ProfileStore:
    store = Store.from_url(url)
    return ProfileStore(store.engine)


def test_export_then_import_gives_the_same_profiles_through_the_store(tmp_path: Path, url: str) -> None:
    src = tmp_path / "profiles.yaml"
    src.write_text(PROFILES_YAML, encoding="utf-8")
    imported = run("profiles", "import", str(src), "--url", url)
    assert imported.exit_code == 0, imported.output
    assert "profile P-TOOLS: version 1 (active)" in imported.output
    assert "watch list importers: version 1 (1 entries)" in imported.output
    listed = run("profiles", "list", "--url", url)
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        ["P-TOOLS", "v1", "active"], ["P-LIGHT", "v1", "draft"]]

    out, lists = tmp_path / "export.yaml", tmp_path / "lists.yaml"
    assert run("profiles", "export", "--out", str(out), "--url", url).exit_code == 0
    assert run("watchlists", "export", "--out", str(lists), "--url", url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert run("watchlists", "import", str(lists), "--url", other).exit_code == 0
    assert run("profiles", "import", str(out), "--url", other).exit_code == 0
    assert stored(other).profiles() == stored(url).profiles()
    assert stored(other).watchlists() == stored(url).watchlists()
    again = tmp_path / "again.yaml"
    assert run("profiles", "export", "--out", str(again), "--url", other).exit_code == 0
    assert again.read_text() == out.read_text()
    # the original file's values come back in the contract's spelling, the same definitions
    assert yaml.safe_load(out.read_text())["profiles"][0]["conditions"][1]["values"] == ["TR"]
    # the profiles' export holds the watch lists they name: on its own it fills an empty store (it
    # wrote `watch_lists: []`, and the import failed on "unknown watch list 'importers'")
    third = f"sqlite:///{tmp_path / 'third.db'}"
    alone = run("profiles", "import", str(out), "--url", third)
    assert alone.exit_code == 0, alone.output
    assert stored(third).profiles() == stored(url).profiles()
    assert stored(third).watchlists() == stored(url).watchlists()
    assert [w["name"] for w in yaml.safe_load(out.read_text())["watch_lists"]] == ["importers"]
    # importing the same file again changes nothing
    same = run("profiles", "import", str(out), "--url", url)
    assert "nothing changed" in same.stdout
    assert [p.version for p in stored(url).profile_history()] == [1, 1]


def test_the_export_of_an_empty_store_imports_as_nothing_changed(tmp_path: Path, url: str) -> None:
    """It wrote `profiles: []` and `watch_lists: []`, and importing it exited 2 ('holds no profiles')."""
    for group in ("profiles", "watchlists"):
        out = tmp_path / f"{group}.yaml"
        assert run(group, "export", "--out", str(out), "--url", url).exit_code == 0
        assert set(yaml.safe_load(out.read_text())) <= {"profiles", "watch_lists"}
        back = run(group, "import", str(out), "--url", url)
        assert back.exit_code == 0, back.output
        assert "nothing changed" in back.stdout
    (tmp_path / "comments.yaml").write_text("# nothing here\n")
    assert run("profiles", "import", str(tmp_path / "comments.yaml"), "--url", url).exit_code == 2


def test_an_invalid_file_exits_2_naming_profile_and_condition_and_stores_nothing(tmp_path: Path, url: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILES_YAML.replace("op: prefix\n    values: ['8206']", "op: prefix\n    values: ['82x6']")
                   .replace("valid_to: 2023-12-31", "valid_to: 2022-12-31"), encoding="utf-8")
    result = run("profiles", "import", str(bad), "--url", url)
    assert result.exit_code == 2
    assert "profile 'P-TOOLS', condition 0 (field 'hs_code')" in result.output
    assert "valid_to" in result.output and "nothing was stored" in result.output
    assert stored(url).profile_history() == [] and stored(url).watchlist_history() == []
    assert run("profiles", "import", str(tmp_path / "none.yaml"), "--url", url).exit_code == 2
    (tmp_path / "list.yaml").write_text("- just a list\n", encoding="utf-8")
    assert run("profiles", "import", str(tmp_path / "list.yaml"), "--url", url).exit_code == 2


def test_retire_adds_a_retired_version_recorded_under_the_cli_user(tmp_path: Path, url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "profiles.yaml"
    src.write_text(PROFILES_YAML, encoding="utf-8")
    assert run("profiles", "import", str(src), "--url", url).exit_code == 0
    result = run("profiles", "retire", "P-TOOLS", "--url", url)
    assert result.exit_code == 0 and "retired as version 2" in result.stdout
    assert run("profiles", "retire", "P-TOOLS", "--url", url).stdout.strip() == "profile P-TOOLS is retired already"
    assert run("profiles", "retire", "P-NONE", "--url", url).exit_code == 2
    store = stored(url)
    assert [(p.version, p.status) for p in store.profile_history("P-TOOLS")] == [(1, "active"), (2, "retired")]
    changes = [c for c in store.changes("P-TOOLS")]
    assert [(c["action"], c["role"]) for c in changes] == [("create", "cli"), ("retire", "cli")]
    assert all(c["actor"] for c in changes)
    shown = run("profiles", "show", "P-TOOLS", "--url", url)
    assert "status: retired" in shown.stdout and "# versions: [1, 2]" in shown.stdout
    assert "status: active" in run("profiles", "show", "P-TOOLS", "--version", "1", "--url", url).stdout


def test_suggestions_are_stored_as_drafts(tmp_path: Path, url: str) -> None:
    path = tmp_path / "seizures.csv"
    seizures(HISTORY).to_csv(path, index=False)
    result = run("profiles", "suggest", "--seizures", str(path), "--since", "2023-07-01", "--url", url)
    assert result.exit_code == 0, result.output
    found = stored(url).profiles()
    assert found and {p.status for p in found} == {"draft"}
    assert any(p.id.startswith("suggested-8206-TR-DE") for p in found)
    assert run("profiles", "suggest", "--seizures", str(path), "--since", "July", "--url", url).exit_code == 2


def test_report_writes_the_figures_of_recorded_selections_and_outcomes(tmp_path: Path, url: str) -> None:
    from tests.test_profiles_store import record_small_history

    store = Store.from_url(url)
    record_small_history(store)
    result = run("profiles", "report", "--out", str(tmp_path / "report"), "--url", url)
    assert result.exit_code == 0, result.output
    assert "profile P-A: 3 matches, 3 inspected, 2 hits" in result.stdout
    rows = json.loads((tmp_path / "report" / "profile_stats.json").read_text())
    assert [(r["rule_id"], r["matches"], r["inspections"], r["hits"]) for r in rows] == [
        ("P-A", 3, 3, 2), ("P-B", 1, 0, 0)]
    assert (tmp_path / "report" / "profile_stats.csv").exists()
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    later = run("profiles", "report", "--since", tomorrow, "--url", url)
    assert "no profile or watch list matched" in later.stdout


def test_watch_lists_show_and_list(tmp_path: Path, url: str) -> None:
    src = tmp_path / "profiles.yaml"
    src.write_text(PROFILES_YAML, encoding="utf-8")
    assert run("watchlists", "import", str(src), "--url", url).exit_code == 2  # holds profiles: refused
    assert run("profiles", "import", str(src), "--url", url).exit_code == 0
    assert run("watchlists", "list", "--url", url).stdout.split("\t")[:4] == ["importers", "v1", "importer_id",
                                                                             "1 entries"]
    assert "value: IMP000123" in run("watchlists", "show", "importers", "--url", url).stdout
    nope = run("watchlists", "show", "nope", "--url", url)
    assert nope.exit_code == 2 and "no watch list 'nope'" in nope.output  # the name quoted whole


def test_mapped_extra_columns_come_from_the_environment(tmp_path: Path, url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "sellers.yaml"
    src.write_text(PROFILES_YAML.replace("field: importer_id\n    op: in_watch_list", "field: seller_id\n    op: "
                                         "in_watch_list").replace("field: importer_id\n  description",
                                                                  "field: seller_id\n  description"), encoding="utf-8")
    refused = run("profiles", "import", str(src), "--url", url)
    assert refused.exit_code == 2 and "seller_id" in refused.output
    monkeypatch.setenv("RISKPROF_PROFILE_EXTRA_COLUMNS", "seller_id")
    assert run("profiles", "import", str(src), "--url", url).exit_code == 0
    monkeypatch.delenv("RISKPROF_PROFILE_EXTRA_COLUMNS")
    # the mapping no longer has the column: a new version would break the contract, so nothing is stored
    result = run("profiles", "retire", "P-TOOLS", "--url", url)
    assert result.exit_code == 2 and "seller_id" in result.output and "nothing was stored" in result.output
    assert [p.status for p in stored(url).profile_history("P-TOOLS")] == ["active"]
