"""The exploration simulator: deterministic for a seed; under drift, exploring finds the new pattern sooner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitoring import SimulationConfig, build_stream, run_simulation, write_simulation
from monitoring._simmodel import exploration_value, poisson_probabilities, select
from synthetic._drift import NEW_COVER_HEADING, apply_drift, parse_drift

pytestmark = pytest.mark.slow


def test_same_seed_gives_the_same_json_twice(tmp_path) -> None:
    cfg = SimulationConfig(weeks=6, per_week=1500, capacity=0.1, explore_share=0.2, drift_week=3, num_threads=1,
                           rounds=15, seed=3)
    first = write_simulation(run_simulation(cfg), tmp_path / "a")
    second = write_simulation(run_simulation(cfg), tmp_path / "b")
    assert first["json"].read_bytes() == second["json"].read_bytes()
    data = json.loads(first["json"].read_text())
    assert {r["strategy"] for r in data["weeks"]} == {"exploit", "random", "ucb"}
    assert len(data["weeks"]) == 3 * (6 - cfg.warmup_weeks)
    html = first["html"].read_text()
    assert "<svg" in html and "<script" not in html


@pytest.mark.parametrize("seed", [0, 1])
def test_exploring_finds_the_new_pattern_sooner_than_pure_exploitation(seed: int) -> None:
    cfg = SimulationConfig(weeks=12, per_week=3000, capacity=0.1, explore_share=0.2, drift_week=4, num_threads=1,
                           seed=seed)
    summary = run_simulation(cfg)["summary"]
    never = cfg.weeks + 1
    explore, exploit = summary["ucb"], summary["exploit"]
    assert (explore["new_pattern_found_week"] or never) < (exploit["new_pattern_found_week"] or never)
    assert explore["new_pattern_recall_after_drift"] > exploit["new_pattern_recall_after_drift"] + 0.05
    # the random stratum's IPW estimate covers the known truth in most weeks, and exploitation has none
    assert summary["random"]["ipw_coverage"] >= 0.8 and exploit["ipw_weeks"] == 0


def test_drift_changes_only_rows_from_its_start_and_marks_them() -> None:
    cfg = SimulationConfig(weeks=4, per_week=2000, drift_week=2, drift=("route", "heading"))
    stream = build_stream(cfg)
    before = stream.week < 2
    assert (stream.pattern[before] == "").all()
    route = stream.pattern == "route"
    assert route.any() and (stream.declarations.loc[route, "departure_country"] == "LY").all()
    heading = stream.declarations["hs_code"].str[:4] == NEW_COVER_HEADING
    assert (stream.pattern[heading & ~before & ~route] == "heading").all()
    undrifted = build_stream(SimulationConfig(weeks=4, per_week=2000, drift=()))
    same = ~route
    pd.testing.assert_frame_equal(stream.declarations[same], undrifted.declarations[same])


def test_apply_drift_raises_risk_of_the_new_pattern_only() -> None:
    decl = pd.DataFrame({"declaration_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-01"]),
                         "hs_code": ["841810", "841810", "620400"], "office_id": ["IT-SEA01"] * 3,
                         "direction": "import", "conveyance": "vessel", "departure_country": "CN",
                         "origin_country": "CN", "transit_countries": ""})
    out = apply_drift(decl, np.array([0.01, 0.01, 0.01]), "2024-01-15", ["heading"])
    assert list(out.pattern) == ["", "heading", ""]
    assert out.latent_risk[1] == pytest.approx(0.01 * 10) and out.latent_risk[[0, 2]].tolist() == [0.01, 0.01]
    assert parse_drift("all") == ("route", "heading", "weapon") and parse_drift("none") == ()
    with pytest.raises(ValueError, match="unknown drift scenario"):
        parse_drift("route,comet")


def test_ucb_selection_probabilities_are_known_and_sum_to_the_budget() -> None:
    p = poisson_probabilities(np.array([10.0, 1, 1, 1, 1]), 2)
    assert p[0] == 1.0 and p[1:] == pytest.approx([0.25] * 4) and p.sum() == pytest.approx(2)
    scores = np.linspace(0, 1, 100)
    chosen, prob = select("ucb", scores, np.arange(100).astype(str), 10, 0.5, seed=1,
                          optimism=np.where(np.arange(100) < 10, 1.0, 0.0))
    assert chosen[95:].all() and (prob[95:] == 1.0).all()  # the five best by score
    assert prob[:10] == pytest.approx([0.5] * 10) and (prob[10:95] == 0).all()
    codes = {k: np.array([0, 0, 1, 1]) for k in ("heading", "departure_country", "destination_country",
                                                  "first_transit", "origin_country")}
    value = exploration_value(codes, np.arange(4), np.array([0]), np.array([False]))
    # value 1 never inspected: upper bound 1, two items this week, no outcome → 1 · √(2 / 1);
    # value 0 inspected once without a hit: Wilson upper bound of 0/1 · √(2 / 2)
    z2 = 1.959963984540054 ** 2
    assert value[2] == pytest.approx(np.sqrt(2)) and value[0] == pytest.approx((z2 / 2 + z2 / 2) / (1 + z2))


def test_bad_configuration_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="capacity must be a share"):
        SimulationConfig(capacity=5).check()
    with pytest.raises(ValueError, match="strategies must be among"):
        SimulationConfig(strategies=("greedy",)).check()


def test_simulate_command_writes_the_page_and_refuses_bad_options(tmp_path) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app

    args = ["simulate", "--weeks", "4", "--per-week", "800", "--capacity", "0.1", "--rounds", "10",
            "--drift", "route", "--drift-week", "3", "--out", str(tmp_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "exploit" in res.output and (tmp_path / "simulation.html").exists()
    assert json.loads((tmp_path / "simulation.json").read_text())["config"]["drift"] == ["route"]
    bad = CliRunner().invoke(app, [*args[:-2], "--drift", "comet", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown drift scenario" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["simulate", "--capacity", "7", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "capacity must be a share" in bad.output


def test_generate_with_drift_keeps_earlier_data_and_every_hit(tmp_path) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from synthetic import generate, generate_drifted

    plain = {k: pd.read_parquet(p) for k, p in generate(tmp_path / "plain", seed=0, n_declarations=6000).items()}
    paths = generate_drifted(tmp_path / "drift", seed=0, n_declarations=6000, start="2023-01-01")
    drifted = {k: pd.read_parquet(p) for k, p in paths.items()}
    before = plain["declarations"]["declaration_date"] < "2023-01-01"
    pd.testing.assert_frame_equal(plain["declarations"][before], drifted["declarations"][before])
    moved = drifted["declarations"]["transit_countries"] == "MT"
    assert moved.any() and not (moved & before).any()
    hits_plain, hits_drift = plain["outcomes"]["hit"].to_numpy(), drifted["outcomes"]["hit"].to_numpy()
    assert (hits_drift >= hits_plain).all() and hits_drift.sum() > hits_plain.sum()
    again = generate_drifted(tmp_path / "again", seed=0, n_declarations=6000, start="2023-01-01")
    assert all(again[k].read_bytes() == paths[k].read_bytes() for k in paths)
    res = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "cli"), "--declarations", "2000",
                                   "--drift", "heading", "--drift-start", "2023-06-01"])
    assert res.exit_code == 0, res.output
    bad = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "bad"), "--drift", "comet"])
    assert bad.exit_code == 2 and "unknown drift scenario" in bad.output
