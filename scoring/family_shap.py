"""TreeSHAP by feature family, from tables built once per model: reasons in well under a millisecond.

An officer reads reasons per feature *family* (route, goods cover, trader history, …), never per
feature. This module computes the exact Shapley values of the families themselves, in the
path-dependent TreeSHAP game LightGBM's ``pred_contrib`` uses (Lundberg et al. 2020, Algorithm 1):
the value of a coalition S of families is the tree's output with the splits on S's features
following the item and every other split averaged by the training counts.

Why this is fast. For one leaf l of one tree, that game is a product over the families on l's path:

    g_l(S) = value_l × Π_{F on the path} (a_lF if F ∈ S else b_lF)

with ``b_lF`` the product of the count ratios of the path's splits on family F (a constant of the
model) and ``a_lF`` ∈ {0, 1} whether the item follows all of them. A leaf's Shapley values
therefore depend on the item only through the bit pattern ``a_l`` (at most 2^k patterns for k
families on the path; there are 7 families), and are tabulated once per model. Scoring an item is
then: every split's direction (one vectorised comparison per split), each leaf's pattern, one table
look-up per (leaf, family on its path), and a sum per family. A tree's Shapley values are the sum
of its leaves' (the game is linear in the leaves), a model's the sum of its trees'.

With one feature per family this equals ``pred_contrib`` exactly (``tests/test_family_shap.py``);
with several features per family it is the families' own Shapley value, which like the sum of
their features' TreeSHAP values adds up to the item's log-odds minus the model's expected value
(and is what the reasons need: a family's share, not its features').
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
MAX_FAMILIES_ON_A_PATH = 12  # tables hold 2^k × k values a leaf
ROW_BLOCK = 8  # rows per vectorised block: the (rows × path steps) temporaries stay in cache


@dataclass
class FamilyShapTables:
    n_families: int
    expected_value: float
    # every internal node of every tree
    node_feature: np.ndarray  # int64
    node_threshold: np.ndarray  # float64 (numerical splits)
    node_missing: np.ndarray  # int8: 0 None, 1 Zero, 2 NaN
    node_default_left: np.ndarray  # bool
    cat_nodes: np.ndarray  # positions of the categorical splits among the nodes
    cat_member: np.ndarray  # (categorical splits × categories) bool: category goes left
    # the path steps of every leaf, grouped by leaf: the node, the side taken, the family's slot on the path
    step_node: np.ndarray
    step_left: np.ndarray  # bool
    step_bit: np.ndarray  # uint8 (uint16 past 8 families): 1 << the slot of the step's family on the leaf's path
    leaf_step_start: np.ndarray  # first step of each leaf (leaves with ≥ 1 step, in step order)
    leaf_full: np.ndarray  # uint8: every family slot of the leaf's path set
    # one entry per (leaf, family on its path), sorted by family: where its value sits in ``table``
    slot_leaf: np.ndarray  # index into the leaves above
    slot_base: np.ndarray  # table offset of the leaf + j (its slot)
    slot_k: np.ndarray  # the leaf's number of families (the pattern's stride)
    family_slot_start: np.ndarray  # first slot of each family present (for reduceat)
    family_present: np.ndarray  # the families that have slots
    table: np.ndarray  # float64: per leaf, 2^k patterns × k values (leaf value included)

    # ---- per item ---------------------------------------------------------------------------------
    def go_left(self, X: np.ndarray) -> np.ndarray:
        """(rows × nodes) whether each row goes left at each split, as LightGBM decides it."""
        fval = X[:, self.node_feature]
        nan = np.isnan(fval)
        missing = self.node_missing
        num = np.where(nan & (missing != 2), 0.0, fval)
        default = ((missing == 1) & (np.abs(num) <= ZERO_THRESHOLD)) | ((missing == 2) & nan)
        with np.errstate(invalid="ignore"):
            left = np.where(default, self.node_default_left, num <= self.node_threshold)
        if len(self.cat_nodes):
            cf = fval[:, self.cat_nodes]
            cnan = np.isnan(cf)
            ci = np.where(cnan, 0.0, cf)
            ci = np.trunc(np.clip(ci, -1.0, float(self.cat_member.shape[1]))).astype(np.int64)
            ok = (ci >= 0) & (ci < self.cat_member.shape[1]) & ~(cnan & (missing[self.cat_nodes] == 2))
            member = self.cat_member[np.arange(len(self.cat_nodes))[None, :], np.where(ok, ci, 0)]
            left[:, self.cat_nodes] = ok & member
        return left

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(rows × families) Shapley values of the families, in log-odds."""
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros((len(X), self.n_families))
        if not len(self.slot_leaf) or not len(X):
            return out
        for s in range(0, len(X), ROW_BLOCK):
            xb = X[s:s + ROW_BLOCK]
            left = self.go_left(xb)
            failed = np.take(left, self.step_node, axis=1) != self.step_left
            fail_bits = np.bitwise_or.reduceat(failed.astype(self.step_bit.dtype) * self.step_bit, self.leaf_step_start, axis=1)
            pattern = self.leaf_full & ~fail_bits  # (rows × leaves)
            values = np.take(self.table, self.slot_base + np.take(pattern, self.slot_leaf, axis=1) * self.slot_k)
            out[s:s + ROW_BLOCK, self.family_present] = np.add.reduceat(values, self.family_slot_start, axis=1)
        return out


def _shapley_of_products(b: np.ndarray) -> np.ndarray:
    """For leaves with k families and count-ratio products ``b`` (leaves × k): the Shapley values of
    g(S) = Π_j (a_j if j ∈ S else b_j) for every pattern a ∈ {0,1}^k, as (leaves × 2^k × k).

    φ_j = (a_j − b_j) Σ_m m!(k−1−m)!/k! · e_m, with e_m the coefficient of t^m in Π_{i≠j} (b_i + a_i t).
    """
    n, k = b.shape
    patterns = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float64)  # (2^k × k)
    a = np.broadcast_to(patterns[None], (n, 2 ** k, k))
    bb = np.broadcast_to(b[:, None, :], (n, 2 ** k, k))
    weights = np.array([math.factorial(m) * math.factorial(k - 1 - m) / math.factorial(k) for m in range(k)])
    phi = np.empty((n, 2 ** k, k))
    for j in range(k):
        poly = np.zeros((n, 2 ** k, k))
        poly[..., 0] = 1.0
        for i in range(k):
            if i == j:
                continue
            shifted = np.concatenate([np.zeros((n, 2 ** k, 1)), poly[..., :-1]], axis=-1)
            poly = poly * bb[..., i:i + 1] + shifted * a[..., i:i + 1]
        phi[..., j] = (a[..., j] - bb[..., j]) * (poly @ weights)
    return phi


def build_tables(booster: lgb.Booster, feature_family: Sequence[int], n_families: int) -> FamilyShapTables:
    """The tables of a fitted binary model; ``feature_family[j]``: the family of feature column j."""
    fam_of = np.asarray(feature_family, dtype=np.int64)
    dump: dict[str, Any] = booster.dump_model()
    nodes: list[tuple[int, float, int, bool]] = []  # feature, threshold, missing, default_left
    cat_sets: dict[int, list[int]] = {}  # node → categories going left
    leaves: list[tuple[float, list[tuple[int, bool, int]], dict[int, float]]] = []  # value, steps, family → b
    expected = 0.0

    def walk(node: dict[str, Any], steps: list[tuple[int, bool, int]], ratio: dict[int, float],
             root_count: float) -> float:
        if "leaf_value" in node:
            leaves.append((float(node["leaf_value"]), steps, ratio))
            return float(node["leaf_value"]) * float(node.get("leaf_count", 0)) / max(root_count, 1.0)
        nid = len(nodes)
        feat = int(node["split_feature"])
        if node["decision_type"] == "==":
            cat_sets[nid] = [int(c) for c in str(node["threshold"]).split("||")]
            thr = 0.0
        else:
            thr = float(node["threshold"])
        nodes.append((feat, thr, _MISSING[node["missing_type"]], bool(node["default_left"])))
        fam = int(fam_of[feat])
        count = float(node["internal_count"])
        total = 0.0
        for side, child in ((True, node["left_child"]), (False, node["right_child"])):
            child_count = float(child.get("internal_count", child.get("leaf_count", 0)))
            r = dict(ratio)
            r[fam] = r.get(fam, 1.0) * (child_count / count if count > 0 else 0.0)
            total += walk(child, [*steps, (nid, side, fam)], r, root_count)
        return total

    for tree in dump["tree_info"]:
        root = tree["tree_structure"]
        if "leaf_value" in root:  # a tree without splits: a constant
            expected += float(root["leaf_value"])
            continue
        expected += walk(root, [], {}, float(root["internal_count"]))

    n_nodes = len(nodes)
    node_feature = np.array([n[0] for n in nodes], dtype=np.int64)
    node_threshold = np.array([n[1] for n in nodes], dtype=np.float64)
    node_missing = np.array([n[2] for n in nodes], dtype=np.int8)
    node_default_left = np.array([n[3] for n in nodes], dtype=bool)
    cat_nodes = np.array(sorted(cat_sets), dtype=np.int64)
    n_cats = max((max(v) for v in cat_sets.values()), default=-1) + 1
    cat_member = np.zeros((len(cat_nodes), max(n_cats, 1)), dtype=bool)
    for r, nid in enumerate(cat_nodes):
        cat_member[r, cat_sets[int(nid)]] = True

    # per leaf: its families in a fixed order (slot j), the steps with their slot bit, b per slot
    step_node: list[int] = []
    step_left: list[bool] = []
    step_bit: list[int] = []
    leaf_step_start: list[int] = []
    leaf_fams: list[list[int]] = []
    leaf_b: list[list[float]] = []
    leaf_value: list[float] = []
    for value, steps, ratio in leaves:
        fams = sorted(ratio)
        slot = {f: j for j, f in enumerate(fams)}
        leaf_step_start.append(len(step_node))
        for nid, side, fam in steps:
            step_node.append(nid)
            step_left.append(side)
            step_bit.append(1 << slot[fam])
        leaf_fams.append(fams)
        leaf_b.append([ratio[f] for f in fams])
        leaf_value.append(value)

    ks = np.array([len(f) for f in leaf_fams], dtype=np.int64)
    max_k = int(ks.max()) if len(ks) else 0
    if max_k > MAX_FAMILIES_ON_A_PATH:
        raise ValueError(f"a path splits on {max_k} families: too many for tables of 2^k patterns")
    bits = np.uint8 if max_k <= 8 else np.uint16
    offsets = np.zeros(len(ks), dtype=np.int64)
    if len(ks):
        sizes = (2 ** ks) * ks
        offsets[1:] = np.cumsum(sizes)[:-1]
        table = np.zeros(int(sizes.sum()))
    else:
        table = np.zeros(0)
    for k in np.unique(ks):
        idx = np.flatnonzero(ks == k)
        phi = _shapley_of_products(np.array([leaf_b[i] for i in idx], dtype=np.float64))
        phi *= np.array([leaf_value[i] for i in idx])[:, None, None]
        span = (2 ** int(k)) * int(k)
        table[(offsets[idx][:, None] + np.arange(span)[None, :]).ravel()] = phi.reshape(len(idx), span).ravel()

    slot_leaf = np.repeat(np.arange(len(ks)), ks)
    slot_j = np.concatenate([np.arange(k) for k in ks]) if len(ks) else np.zeros(0, dtype=np.int64)
    slot_family = np.concatenate([np.array(f, dtype=np.int64) for f in leaf_fams]) if len(ks) else slot_j
    order = np.argsort(slot_family, kind="stable")
    slot_leaf, slot_j, slot_family = slot_leaf[order], slot_j[order], slot_family[order]
    family_present, family_slot_start = np.unique(slot_family, return_index=True)
    return FamilyShapTables(
        n_families=n_families, expected_value=expected,
        node_feature=node_feature, node_threshold=node_threshold, node_missing=node_missing,
        node_default_left=node_default_left, cat_nodes=cat_nodes, cat_member=cat_member,
        step_node=np.array(step_node, dtype=np.intp), step_left=np.array(step_left, dtype=bool),
        step_bit=np.array(step_bit, dtype=bits), leaf_step_start=np.array(leaf_step_start, dtype=np.intp),
        leaf_full=np.bitwise_or.reduceat(np.array(step_bit, dtype=bits), np.array(leaf_step_start, dtype=np.intp)),
        slot_leaf=slot_leaf, slot_base=offsets[slot_leaf] + slot_j, slot_k=ks[slot_leaf],
        family_slot_start=family_slot_start.astype(np.int64), family_present=family_present.astype(np.int64),
        table=table) if n_nodes else _empty(n_families, expected)


def _empty(n_families: int, expected: float) -> FamilyShapTables:
    z = np.zeros(0, dtype=np.int64)
    return FamilyShapTables(n_families, expected, z, np.zeros(0), np.zeros(0, dtype=np.int8), np.zeros(0, dtype=bool),
                            z, np.zeros((0, 1), dtype=bool), z, np.zeros(0, dtype=bool), z, z, z, z, z, z, z, z,
                            np.zeros(0))
