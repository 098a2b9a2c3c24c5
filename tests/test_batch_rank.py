"""Manifest-wide ranking on id codes equals the shared selection routine on id strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batch._rank import first_occurrence, id_codes, risk_order, select_manifest
from scoring import select_for_inspection
from scoring.ranking import SELECTION_NAMES


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    alphabet = list("abcXYZ019-_éü")
    return np.array(["".join(rng.choice(alphabet, size=rng.integers(1, 8))) + f"{i}" for i in range(n)],
                    dtype=object)


@pytest.mark.parametrize(("capacity", "share", "seed"), [("5%", 0.0, 0), ("10%", 0.3, 1), (37, 0.5, 2),
                                                         (0.2, 1.0, 3), ("0%", 0.2, 4), (10_000, 0.1, 5)])
def test_select_manifest_equals_select_for_inspection(capacity, share, seed):
    rng = np.random.default_rng(seed)
    n = 2_000
    ids = _ids(rng, n)
    risk = np.round(rng.random(n), 2)  # many ties: the id breaks them
    expected = select_for_inspection(risk, ids, capacity, random_share=share, seed=seed)
    got = select_manifest(risk, id_codes(pa.array(ids.tolist())), capacity, random_share=share, seed=seed)
    np.testing.assert_array_equal(got.rank, expected.rank)
    names = np.asarray(SELECTION_NAMES, dtype=object)[got.selection]
    np.testing.assert_array_equal(names, np.where(expected.selected == "", "none", expected.selected))
    np.testing.assert_array_equal(got.probability, expected.probability)


def test_id_codes_follow_python_string_order():
    rng = np.random.default_rng(7)
    ids = _ids(rng, 500).tolist() + ["Z", "a", "é", "e\u0301", "10", "9"]
    codes = id_codes(pa.array(ids))
    by_python = sorted(range(len(ids)), key=lambda i: ids[i])
    assert list(np.argsort(codes, kind="stable")) == by_python


def test_first_occurrence_keeps_the_earliest_row():
    codes = np.array([3, 1, 3, 2, 1, 3])
    assert first_occurrence(codes).tolist() == [True, True, False, True, False, False]


def test_manifest_percentile_counts_items_at_or_below():
    risk = np.array([0.1, 0.5, 0.5, 0.9])
    sel = select_manifest(risk, np.arange(4), "0%")
    assert sel.manifest_percentile.tolist() == [25.0, 75.0, 75.0, 100.0]


@pytest.mark.parametrize("seed", range(6))
def test_risk_order_equals_lexsort_with_or_without_duplicate_ids(seed: int) -> None:
    """The scatter-then-stable-sort order (every id distinct) and the lexsort (otherwise) give
    ``np.lexsort((codes, -risk))``: ties, NaN risks, one row, duplicates, codes with gaps."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    risk = np.round(rng.random(n), 1)
    risk[rng.random(n) < 0.05] = np.nan
    cases = [rng.permutation(n) + 1,  # distinct: the fast path
             rng.integers(1, max(2, n // 2), n),  # duplicate ids
             rng.permutation(n) + 3,  # distinct but not 1..n
             np.where(np.arange(n) == 0, n, rng.permutation(n) + 1)]  # 1..n's range with a repeat
    np.testing.assert_array_equal(risk_order(risk, cases[0], distinct=True), np.lexsort((cases[0], -risk)))
    for codes in cases:
        np.testing.assert_array_equal(risk_order(risk, codes), np.lexsort((codes, -risk)))
        keep = first_occurrence(codes)
        first = {}
        for i, c in enumerate(codes.tolist()):
            first.setdefault(c, i)
        assert np.flatnonzero(keep).tolist() == sorted(first.values())


@pytest.mark.parametrize("n", [1, 7, 1000, 250_001])
def test_the_two_threaded_stable_sort_equals_numpys_stable_sort(n: int, monkeypatch) -> None:
    """Halves sorted on two threads and merged give NumPy's own stable order: ties (few distinct
    values) keep their row order across the halves, and NaN goes last."""
    import batch._rank as rank

    rng = np.random.default_rng(n)
    key = np.round(rng.random(n), 2)
    key[rng.random(n) < 0.01] = np.nan
    if n < 1000:
        monkeypatch.setattr(rank, "PARALLEL_SORT_MIN", 2)
    np.testing.assert_array_equal(rank.stable_argsort(key), np.argsort(key, kind="stable"))
    np.testing.assert_array_equal(rank.stable_argsort(-key), np.argsort(-key, kind="stable"))


def test_rows_already_in_id_order_rank_as_any_other_order() -> None:
    rng = np.random.default_rng(9)
    risk = np.round(rng.random(300_000), 3)
    codes = np.arange(1, len(risk) + 1)
    np.testing.assert_array_equal(risk_order(risk, codes, distinct=True), np.lexsort((codes, -risk)))


@pytest.mark.parametrize("ids", [["a", "b", "c"], ["a", "b", "b", "c"], ["b", "a"], ["a"], ["é", "z", "ä"],
                                 ["A1", "A10", "A2"], ["x", None, "y"], ["x", "y", None]])
def test_ids_already_in_order_get_the_codes_of_the_sort(ids: list) -> None:
    """Strictly increasing ids take the shortcut (codes = positions); ties, disorder and missing ids
    go through the sort; both give the dense ranks of Python's string order."""
    arr = pa.array(ids, pa.large_string())
    expected = np.asarray(pc.rank(arr, sort_keys="ascending", tiebreaker="dense")).astype(np.int64)
    np.testing.assert_array_equal(id_codes(arr), expected)
    present = [i for i in ids if i is not None]
    if len(present) == len(ids):
        order = {v: k + 1 for k, v in enumerate(sorted(set(ids)))}
        assert id_codes(arr).tolist() == [order[i] for i in ids]
