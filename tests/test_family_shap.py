"""Family-level TreeSHAP from tables (scoring.family_shap) against LightGBM's own pred_contrib and a
brute-force Shapley value computed straight from the dumped trees."""

from __future__ import annotations

import itertools
import math
import pickle

import lightgbm as lgb
import numpy as np
import pytest

from scoring import family_shap
from scoring.family_shap import build_tables


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 2] = rng.integers(-1, 14, n)  # categorical, with negatives and unseen categories
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.05, 2] = np.nan
    X[rng.random(n) < 0.2, 3] = 0.0
    return X


def _model(zero_as_missing: bool = False, rounds: int = 30) -> lgb.Booster:
    X = _data(4000, 0)
    rng = np.random.default_rng(1)
    y = (X[:, 1] + (np.nan_to_num(X[:, 2]) % 3 == 1) + np.nan_to_num(X[:, 0]) * X[:, 4] + (X[:, 3] == 0)
         + rng.normal(size=len(X)) > 0.8).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_per_group": 5, "cat_smooth": 1,
              "zero_as_missing": zero_as_missing, "num_threads": 1, "seed": 0, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[2]), rounds)


@pytest.mark.parametrize(("zero_as_missing", "rounds"), [(False, 30), (True, 30), (False, 150)])
def test_one_feature_per_family_equals_pred_contrib(zero_as_missing: bool, rounds: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(family_shap, "TABLE_BATCH", 1000)  # the tables built in many batches of leaves
    booster = _model(zero_as_missing, rounds)
    X = _data(400, 7)
    tables = build_tables(booster, list(range(6)), 6)
    expected = np.asarray(booster.predict(X, pred_contrib=True))
    np.testing.assert_allclose(tables.contributions(X), expected[:, :-1], atol=1e-10)
    assert tables.expected_value == pytest.approx(expected[0, -1], abs=1e-10)


def _brute_force(booster: lgb.Booster, x: np.ndarray, family: list[int], n_fam: int) -> np.ndarray:
    """Shapley values of the families by enumerating coalitions; v(S) walks every tree recursively
    (splits on S's families follow x, the others average the children by their training counts)."""
    trees = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]

    def go_left(node: dict, v: float) -> bool:
        if node["decision_type"] == "==":
            if np.isnan(v):
                if node["missing_type"] == "NaN":
                    return False
                v = 0.0
            cats = {int(c) for c in str(node["threshold"]).split("||")}
            return int(v) >= 0 and int(v) in cats
        if np.isnan(v) and node["missing_type"] != "NaN":
            v = 0.0
        if (node["missing_type"] == "Zero" and abs(v) <= 1e-35) or (node["missing_type"] == "NaN" and np.isnan(v)):
            return bool(node["default_left"])
        return bool(v <= node["threshold"])

    def count(node: dict) -> float:
        return float(node.get("internal_count", node.get("leaf_count", 0)))

    def value(node: dict, S: frozenset[int]) -> float:
        if "leaf_value" in node:
            return float(node["leaf_value"])
        f = node["split_feature"]
        if family[f] in S:
            return value(node["left_child"] if go_left(node, x[f]) else node["right_child"], S)
        c = count(node)
        return sum(count(ch) / c * value(ch, S) for ch in (node["left_child"], node["right_child"]))

    def v(S: frozenset[int]) -> float:
        return sum(value(t, S) for t in trees)

    phi = np.zeros(n_fam)
    players = range(n_fam)
    for j in players:
        others = [p for p in players if p != j]
        for m in range(len(others) + 1):
            w = math.factorial(m) * math.factorial(n_fam - 1 - m) / math.factorial(n_fam)
            for S in itertools.combinations(others, m):
                phi[j] += w * (v(frozenset(S) | {j}) - v(frozenset(S)))
    return phi


def test_grouped_families_are_exact_shapley_values_and_add_up() -> None:
    booster = _model(rounds=8)
    family = [0, 0, 1, 2, 1, 2]
    X = _data(12, 3)
    tables = build_tables(booster, family, 3)
    got = tables.contributions(X)
    for i, x in enumerate(X):
        np.testing.assert_allclose(got[i], _brute_force(booster, x, family, 3), atol=1e-10)
    # like the per-feature values, they add up to the log-odds minus the expected value
    contrib = np.asarray(booster.predict(X, pred_contrib=True))
    np.testing.assert_allclose(got.sum(axis=1), contrib[:, :-1].sum(axis=1), atol=1e-10)
    # and they are not merely the per-feature values summed by family (a real difference, not a relabelling)
    summed = contrib[:, :-1] @ np.eye(3)[family]
    assert np.abs(got - summed).max() > 1e-3


def test_a_family_the_model_never_splits_on_gets_zero_and_blocks_match_single_rows() -> None:
    booster = _model(rounds=10)
    X = _data(50, 5)
    tables = build_tables(booster, [0, 1, 2, 3, 4, 5], 7)  # family 6 has no feature
    got = tables.contributions(X)
    assert np.all(got[:, 6] == 0.0)
    one_by_one = np.vstack([tables.contributions(X[[i]]) for i in range(len(X))])
    np.testing.assert_allclose(got, one_by_one, atol=1e-12)


def test_a_model_without_splits() -> None:
    X = _data(200, 0)
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 1000, "num_threads": 1},
                        lgb.Dataset(X, np.r_[np.zeros(100), np.ones(100)]), 3)
    tables = build_tables(booster, list(range(6)), 6)
    assert np.all(tables.contributions(X[:5]) == 0.0)
    assert tables.expected_value == pytest.approx(np.asarray(booster.predict(X[:1], pred_contrib=True))[0, -1])


def test_risk_model_reasons_use_the_tables_and_a_pickled_model_keeps_them(tiny_model) -> None:
    model = tiny_model.model
    scored = model.score_batch(tiny_model.traffic[:50])
    rows = np.arange(20)
    fam_names, _, member = model._family_matrix()
    phi = model.family_contributions(scored.X[rows])
    contrib = model.contributions(scored.X[rows])
    np.testing.assert_allclose(phi.sum(axis=1), contrib[:, :-1].sum(axis=1), atol=1e-9)
    reasons = model.explain(scored, rows)
    for r, item in enumerate(reasons):
        for reason in item:
            assert reason.contribution == pytest.approx(phi[r, fam_names.index(reason.family)])
    clone = pickle.loads(pickle.dumps(model))
    assert isinstance(clone.__dict__.get("_family_shap_tables"), family_shap.FamilyShapTables)
    np.testing.assert_allclose(clone.family_contributions(scored.X[rows]), phi)
    fresh = pickle.loads(pickle.dumps(model))
    del fresh.__dict__["_family_shap_tables"]
    fresh.prepare_reasons()
    assert isinstance(fresh.__dict__.get("_family_shap_tables"), family_shap.FamilyShapTables)


def test_a_logged_model_carries_its_tables(trained_model) -> None:
    from scoring.registry import load_risk_model

    loaded = load_risk_model(trained_model.uri).model
    assert isinstance(loaded.__dict__.get("_family_shap_tables"), family_shap.FamilyShapTables)


def test_a_model_too_wide_for_the_tables_falls_back_to_summed_pred_contrib(tiny_model, monkeypatch) -> None:
    import copy

    model = copy.copy(tiny_model.model)  # its own caches, same booster and pipeline
    model.__dict__.pop("_family_shap_tables", None)
    monkeypatch.setattr(family_shap, "MAX_FAMILIES_ON_A_PATH", 0)
    scored = model.score_batch(tiny_model.traffic[:30])
    _, _, member = model._family_matrix()
    got = model.family_contributions(scored.X)
    assert model.__dict__["_family_shap_tables"] is False
    np.testing.assert_allclose(got, model.contributions(scored.X)[:, :-1] @ member)
