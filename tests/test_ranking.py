"""scoring.ranking on its own: capacity, lanes and selection, against hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.ranking import (
    SELECTION_NAMES,
    LaneThresholds,
    assign_lanes,
    capacity_count,
    rank_order,
    select_for_inspection,
    select_in_order,
    thresholds_at_shares,
)

# ---- capacity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "capacity", "expected"), [
    (200, "5%", 10),
    (200, " 5% ", 10),
    (200, "12.5%", 25),
    (7, "50%", 3),  # 3.5 items: rounded down, never more than asked
    (10, "100%", 10),
    (10, "0%", 0),
    (200, 0.05, 10),  # a number below 1 is a fraction
    (200, "0.05", 10),  # ... also as a string
    (100, 0.29, 29),  # 100 × 0.29 = 28.999999999999996 in floating point: still 29
    (200, 120, 120),  # a number of at least 1 is a count
    (200, "120", 120),
    (10, 1, 1),  # 1 is one item, not 100 %
    (50, 120, 50),  # never more than there are
    (0, "5%", 0),
    (3, 0, 0),
])
def test_capacity_count(n: int, capacity: str | float, expected: int) -> None:
    assert capacity_count(n, capacity) == expected


@pytest.mark.parametrize(("capacity", "fragment"), [
    ("150%", "0-100"),
    ("-5%", "0-100"),
    (-3, "≥ 0"),
    ("-0.5", "≥ 0"),
    ("lots", "lots"),
    (2.7, "not a whole number of items"),  # neither a count nor a fraction below 1 (it selected 2)
    ("1.5", "not a whole number of items"),
])
def test_impossible_capacities_are_refused(capacity: str | float, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        capacity_count(100, capacity)


# ---- lanes -------------------------------------------------------------------------------------


def test_lanes_include_their_lower_bound() -> None:
    risk = np.array([0.05, 0.1, 0.29, 0.3, 0.9, 0.0, 1.0])
    got = assign_lanes(risk, LaneThresholds(red=0.3, yellow=0.1))
    assert got.tolist() == ["green", "yellow", "yellow", "red", "red", "green", "red"]


def test_default_thresholds_and_their_order_is_checked() -> None:
    assert (LaneThresholds().red, LaneThresholds().yellow) == (0.30, 0.10)
    LaneThresholds(red=0.2, yellow=0.2)  # equal is allowed: no yellow lane
    for red, yellow in ((0.1, 0.2), (1.5, 0.1), (0.3, -0.1)):
        with pytest.raises(ValueError, match="red ≥ yellow"):
            LaneThresholds(red=red, yellow=yellow)


def test_thresholds_at_shares_put_those_shares_of_the_reference_traffic_in_red_and_yellow() -> None:
    ref = np.arange(1, 101) / 100.0  # 0.01 … 1.00, one each
    t = thresholds_at_shares(ref, red_share=0.02, yellow_share=0.10)
    assert (t.red, t.yellow) == (0.99, 0.91)
    lanes = assign_lanes(ref, t)
    assert (lanes == "red").sum() == 2 and (lanes != "green").sum() == 10
    # the order of the reference scores does not matter
    shuffled = np.random.default_rng(0).permutation(ref)
    assert thresholds_at_shares(shuffled, 0.02, 0.10) == t


def test_a_zero_share_or_no_reference_traffic_leaves_the_lane_empty_but_for_certain_hits() -> None:
    ref = np.arange(1, 101) / 100.0
    t = thresholds_at_shares(ref, red_share=0.0, yellow_share=0.05)
    assert t.red == 1.0 and t.yellow == 0.96
    assert thresholds_at_shares(np.array([]), 0.02, 0.10) == LaneThresholds(red=1.0, yellow=1.0)


def test_red_threshold_never_falls_below_yellow_with_ties() -> None:
    ref = np.array([0.1] * 95 + [0.5] * 5)  # ties: both shares fall on the same score
    t = thresholds_at_shares(ref, red_share=0.01, yellow_share=0.03)
    assert t.red == t.yellow == 0.5


# ---- ranking and selection ---------------------------------------------------------------------


def test_rank_order_is_descending_risk_and_ties_go_by_id() -> None:
    risk = np.array([0.5, 0.9, 0.5, 0.1])
    ids = np.array(["b", "c", "a", "d"], dtype=object)
    assert rank_order(risk, ids).tolist() == [1, 2, 0, 3]


def test_select_in_order_without_random_share() -> None:
    order = np.array([3, 1, 0, 2, 4])  # item 3 is the riskiest
    rank, codes, prob = select_in_order(order, 2)
    assert rank.tolist() == [3, 2, 4, 1, 5]
    assert codes.tolist() == [0, 1, 0, 1, 0]
    assert prob.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert SELECTION_NAMES[1] == "model" and SELECTION_NAMES[0] == "none"


def test_random_share_is_drawn_from_the_ranked_remainder_with_its_probability() -> None:
    order = np.arange(10)  # item i is ranked i + 1
    rank, codes, prob = select_in_order(order, "40%", random_share=0.5, seed=3)
    # capacity 4: the top 2 by the model, 2 drawn among the other 8 (probability 2 / 8 each)
    assert codes[:2].tolist() == [1, 1] and prob[:2].tolist() == [1.0, 1.0]
    assert (codes[2:] == 2).sum() == 2 and set(codes[2:].tolist()) <= {0, 2}
    assert np.allclose(prob[2:], 0.25)
    # the same seed draws the same items; over many seeds every remaining item is drawn about as often
    assert codes.tolist() == select_in_order(order, "40%", random_share=0.5, seed=3)[1].tolist()
    drawn = sum((select_in_order(order, "40%", random_share=0.5, seed=s)[1] == 2).astype(int) for s in range(800))
    assert drawn[:2].sum() == 0 and np.all(np.abs(drawn[2:] / 800 - 0.25) < 0.06)


def test_all_random_and_capacity_above_the_manifest() -> None:
    order = np.arange(10)
    _, codes, prob = select_in_order(order, 3, random_share=1.0, seed=0)
    assert (codes == 1).sum() == 0 and (codes == 2).sum() == 3 and np.allclose(prob, 0.3)
    _, codes, prob = select_in_order(np.arange(5), 20)
    assert codes.tolist() == [1] * 5 and prob.tolist() == [1.0] * 5


def test_random_share_outside_zero_one_is_refused() -> None:
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="random_share"):
            select_in_order(np.arange(4), 2, random_share=share)


def test_select_for_inspection_names_the_selections() -> None:
    risk = np.array([0.2, 0.8, 0.5, 0.8])
    ids = np.array(["w", "y", "x", "z"], dtype=object)
    sel = select_for_inspection(risk, ids, 2)
    assert sel.rank.tolist() == [4, 1, 3, 2]  # 0.8 "y" before 0.8 "z"
    assert sel.selected.tolist() == ["", "model", "", "model"]
    assert sel.probability.tolist() == [0.0, 1.0, 0.0, 1.0]
