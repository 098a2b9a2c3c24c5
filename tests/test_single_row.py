"""LightGBM's single-row prediction (scoring.single_row), which the API's one declaration takes, gives
the very bits of ``Booster.predict``: missing values, zeros, negative and unseen categories included."""

from __future__ import annotations

import pickle
import threading

import lightgbm as lgb
import numpy as np
import pytest

from scoring.single_row import SingleRowPredictor


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 2] = rng.integers(-1, 14, n)  # categorical, with negatives and categories training never saw
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.05, 2] = np.nan
    X[rng.random(n) < 0.2, 3] = 0.0
    return X


@pytest.fixture(scope="module", params=[False, True], ids=["nan-missing", "zero-as-missing"])
def booster(request: pytest.FixtureRequest) -> lgb.Booster:
    X = _data(3000, 0)
    y = (X[:, 1] + (np.nan_to_num(X[:, 2]) % 3 == 1) + (X[:, 3] == 0)
         + np.random.default_rng(1).normal(size=len(X)) > 0.8).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_per_group": 5,
              "zero_as_missing": request.param, "num_threads": 1, "seed": 0, "deterministic": True}
    X[:8, 2] = np.arange(8)  # categories 0..7 in training; the data above go past them
    return lgb.train(params, lgb.Dataset(X[: len(y)], y, categorical_feature=[2]), 40)


def test_same_bits_as_predict(booster: lgb.Booster) -> None:
    X = _data(500, 2)
    X[:5, 2] = [99.0, -3.0, np.nan, 1e9, 0.5]  # far past the categories, negative, missing, huge, fractional
    single = SingleRowPredictor(booster)
    got = np.array([single.predict(row) for row in X])
    assert np.array_equal(got, booster.predict(X, num_threads=1))
    assert len(np.unique(got)) > 50  # not a constant model
    # a row taken from a column-major matrix (as the pipeline builds it) is strided: copied, same value
    fortran = np.asfortranarray(X)
    assert single.predict(fortran[7]) == got[7]


def test_threads_share_one_predictor(booster: lgb.Booster) -> None:
    X = _data(400, 3)
    want = booster.predict(X, num_threads=1)
    single = SingleRowPredictor(booster)
    wrong: list[int] = []

    def run(rows: range) -> None:
        for _ in range(5):
            wrong.extend(i for i in rows if single.predict(X[i]) != want[i])

    threads = [threading.Thread(target=run, args=(range(k, 400, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_refuses_a_row_of_another_width(booster: lgb.Booster) -> None:
    single = SingleRowPredictor(booster)
    with pytest.raises(ValueError, match="one row of 6 features expected, got shape"):
        single.predict(np.zeros(5))
    with pytest.raises(ValueError, match="got shape \\(2, 6\\)"):
        single.predict(np.zeros((2, 6)))
    with pytest.raises(TypeError, match="C handle"):
        pickle.dumps(single)


def test_the_model_scores_one_row_as_it_scores_it_among_others(tiny_model) -> None:
    """RiskModel.predict_raw takes the single-row path for one row: the same risk as that row scored in
    a batch, and the model still pickles after it (the predictor is not part of the model file)."""
    model = tiny_model.model
    records = tiny_model.traffic[:40]
    together = model.score_batch(records)
    alone = np.concatenate([model.score_batch([r]).raw for r in records])
    assert "_single_row_predictor" in model.__dict__
    assert np.array_equal(alone, together.raw)
    again = pickle.loads(pickle.dumps(model))
    assert "_single_row_predictor" not in again.__dict__
    assert np.array_equal(again.score_batch(records[:1]).raw, alone[:1])
