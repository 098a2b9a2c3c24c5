"""Capacity filled in the documented order: rule selections, then the model's ranking, then the
random share over the rest (scoring.ranking.select_with_rules)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.ranking import RULE_SELECTION_NAMES, select_in_order, select_with_rules

ORDER = np.arange(9, -1, -1)  # item 9 is the riskiest, item 0 the least risky


def forced(*items: int, n: int = 10) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(items)] = True
    return out


def names(codes: np.ndarray) -> dict[str, list[int]]:
    return {name: np.flatnonzero(codes == i).tolist() for i, name in enumerate(RULE_SELECTION_NAMES) if i}


def test_rules_first_then_the_model_then_the_random_share():
    # capacity 5: items 2 and 5 by rule; 3 left of which round(5 × 0.2) = 1 random, 2 model (9, 8);
    # the random draw is among the 6 items left (7, 6, 4, 3, 1, 0), each with probability 1/6
    rank, codes, prob = select_with_rules(ORDER, forced(2, 5), 5, random_share=0.2, seed=3)
    got = names(codes)
    assert got["rule"] == [2, 5] and got["model"] == [8, 9]
    assert len(got["random"]) == 1 and got["random"][0] in (7, 6, 4, 3, 1, 0)
    assert rank.tolist() == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert prob[[2, 5, 8, 9]].tolist() == [1.0] * 4
    assert prob[[7, 6, 4, 3, 1, 0]] == pytest.approx([1 / 6] * 6)


def test_a_forced_item_the_model_ranks_high_frees_no_extra_place():
    _, codes, _ = select_with_rules(ORDER, forced(9), 3)
    assert names(codes) == {"model": [7, 8], "random": [], "rule": [9]}


def test_rule_selections_beyond_capacity_are_all_kept_and_nothing_else_is_selected():
    _, codes, prob = select_with_rules(ORDER, forced(0, 1, 2), 2, random_share=0.5)
    assert names(codes) == {"model": [], "random": [], "rule": [0, 1, 2]}
    assert prob.tolist() == [1.0, 1.0, 1.0] + [0.0] * 7


def test_the_random_share_is_kept_before_the_model_when_rules_leave_little():
    # capacity 4, 2 by rule, 2 left: round(4 × 0.5) = 2 random places, none for the model
    _, codes, prob = select_with_rules(ORDER, forced(9, 8), 4, random_share=0.5, seed=1)
    got = names(codes)
    assert got["model"] == [] and len(got["random"]) == 2
    assert prob[:8] == pytest.approx([2 / 8] * 8)


def test_same_seed_same_selection_and_equal_to_select_in_order_when_nothing_is_forced():
    rng = np.random.default_rng(0)
    order = rng.permutation(200)
    a = select_with_rules(order, np.zeros(200, bool), "10%", random_share=0.3, seed=11)
    b = select_with_rules(order, np.zeros(200, bool), "10%", random_share=0.3, seed=11)
    ref = select_in_order(order, "10%", random_share=0.3, seed=11)
    for x, y, z in zip(a, b, ref, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    c = select_with_rules(order, np.zeros(200, bool), "10%", random_share=0.3, seed=12)
    assert not np.array_equal(a[1], c[1])


def test_forced_must_have_one_value_per_item():
    with pytest.raises(ValueError, match="forced has 3 values for 10 items"):
        select_with_rules(ORDER, np.zeros(3, bool), 2)
