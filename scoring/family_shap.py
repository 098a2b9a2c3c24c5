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

from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
MAX_FAMILIES_ON_A_PATH = 12  # tables hold 2^k × k values a leaf
TABLE_BATCH = 2 ** 18  # table values computed at once while building
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

    φ_j = (a_j − b_j) Σ_S |S|!(k−1−|S|)!/k! Π_{i∈S} a_i Π_{i∉S, i≠j} b_i
        = (a_j − b_j) ∫_0^1 Π_{i≠j} (u a_i + (1 − u) b_i) du,
    a polynomial of degree k − 1 in u, integrated exactly by Gauss–Legendre with ⌈k/2⌉ points.
    """
    n, k = b.shape
    patterns = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float64)  # (2^k × k)
    x, w = np.polynomial.legendre.leggauss(max(1, -(-k // 2)))
    u, w = (x + 1.0) / 2.0, w / 2.0
    # players first: each cumulative product runs over whole contiguous (leaves × patterns × points) blocks
    f = u * patterns.T[:, None, :, None] + (1.0 - u) * b.T[:, :, None, None]  # (k × leaves × 2^k × points)
    ones = np.ones((1,) + f.shape[1:])
    before = np.cumprod(np.concatenate([ones, f[:-1]]), axis=0)
    after = np.cumprod(np.concatenate([ones, f[:0:-1]]), axis=0)[::-1]
    integral = (before * after) @ w  # (k × leaves × 2^k): ∫ Π_{i≠j} over u
    return (patterns[None] - b[:, None, :]) * integral.transpose(1, 2, 0)


def _trees(booster: lgb.Booster) -> list[dict[str, str]]:
    """The fields of each tree in LightGBM's model text (parsed as text: ``dump_model``'s JSON is ~5×
    slower to build and decode for a 300-tree model)."""
    text = booster.model_to_string()
    body = text[text.index("\nTree="):text.index("\nend of trees")]
    return [dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
            for block in body.split("\nTree=")[1:]]


def _nums(field: str, dtype: type) -> np.ndarray:
    return np.array(field.split(), dtype=dtype)


def build_tables(booster: lgb.Booster, feature_family: Sequence[int], n_families: int) -> FamilyShapTables:
    """The tables of a fitted binary model; ``feature_family[j]``: the family of feature column j."""
    fam_of = np.asarray(feature_family, dtype=np.int64)
    feats, thrs, dtypes, parents, sides, counts = [], [], [], [], [], []
    leaf_parent, leaf_side, leaf_count, leaf_value, leaf_root = [], [], [], [], []
    cat_nodes: list[int] = []
    cat_sets: list[np.ndarray] = []
    expected = 0.0
    n_nodes = 0
    for tree in _trees(booster):
        values = _nums(tree["leaf_value"], np.float64)
        if int(tree["num_leaves"]) == 1:  # a tree without splits: a constant
            expected += float(values[0])
            continue
        left, right = _nums(tree["left_child"], np.int64), _nums(tree["right_child"], np.int64)
        internal = _nums(tree["internal_count"], np.float64)
        lcount = _nums(tree["leaf_count"], np.float64)
        dt = _nums(tree["decision_type"], np.int64)
        thr = _nums(tree["threshold"], np.float64)
        m = len(left)
        parent = np.full(m, -1, dtype=np.int64)
        side = np.zeros(m, dtype=bool)
        lp = np.empty(len(values), dtype=np.int64)
        ls = np.empty(len(values), dtype=bool)
        for is_left, child in ((True, left), (False, right)):
            inner = child >= 0
            parent[child[inner]] = np.flatnonzero(inner)
            side[child[inner]] = is_left
            lp[~child[~inner]] = np.flatnonzero(~inner)
            ls[~child[~inner]] = is_left
        if int(tree.get("num_cat", "0")) > 0:
            bounds = _nums(tree["cat_boundaries"], np.int64)
            words = _nums(tree["cat_threshold"], np.uint64)
            for i in np.flatnonzero(dt & 1):
                w = words[bounds[int(thr[i])]:bounds[int(thr[i]) + 1]]
                bits = (w[:, None] >> np.arange(32, dtype=np.uint64)[None, :]) & np.uint64(1)
                cat_nodes.append(n_nodes + int(i))
                cat_sets.append(np.flatnonzero(bits.ravel()))
        feats.append(_nums(tree["split_feature"], np.int64))
        thrs.append(thr)
        dtypes.append(dt)
        parents.append(np.where(parent >= 0, parent + n_nodes, -1))
        sides.append(side)
        counts.append(internal)
        leaf_parent.append(lp + n_nodes)
        leaf_side.append(ls)
        leaf_count.append(lcount)
        leaf_value.append(values)
        leaf_root.append(np.full(len(values), internal[0]))
        n_nodes += m
    if not n_nodes:
        return _empty(n_families, expected)
    node_feature = np.concatenate(feats)
    node_dt = np.concatenate(dtypes)
    node_parent = np.concatenate(parents)
    node_side = np.concatenate(sides)
    node_count = np.concatenate(counts)
    node_family = fam_of[node_feature]
    l_parent, l_side = np.concatenate(leaf_parent), np.concatenate(leaf_side)
    l_count, l_value = np.concatenate(leaf_count), np.concatenate(leaf_value)
    expected += float(np.sum(l_value * l_count / np.concatenate(leaf_root)))
    n_leaves = len(l_value)

    # every leaf's path, climbed from the leaf to its root for all leaves at once
    s_leaf, s_node, s_left, s_ratio = [], [], [], []
    leaf = np.arange(n_leaves)
    cur, went_left = l_parent, l_side
    ratio = l_count / node_count[cur]
    while len(leaf):
        s_leaf.append(leaf)
        s_node.append(cur)
        s_left.append(went_left)
        s_ratio.append(ratio)
        up = node_parent[cur]
        keep = up >= 0
        leaf, went_left = leaf[keep], node_side[cur[keep]]
        ratio = node_count[cur[keep]] / node_count[up[keep]]
        cur = up[keep]
    step_leaf, step_node = np.concatenate(s_leaf), np.concatenate(s_node)
    step_left, step_ratio = np.concatenate(s_left), np.concatenate(s_ratio)
    order = np.argsort(step_leaf, kind="stable")
    step_leaf, step_node, step_left, step_ratio = step_leaf[order], step_node[order], step_left[order], step_ratio[order]
    step_fam = node_family[step_node]

    present = np.zeros((n_leaves, n_families), dtype=bool)
    present[step_leaf, step_fam] = True
    b = np.ones((n_leaves, n_families))
    np.multiply.at(b, (step_leaf, step_fam), step_ratio)
    slot = np.cumsum(present, axis=1) - 1
    ks = present.sum(axis=1).astype(np.int64)
    max_k = int(ks.max())
    if max_k > MAX_FAMILIES_ON_A_PATH:
        raise ValueError(f"a path splits on {max_k} families: too many for tables of 2^k patterns")
    bit_type = np.uint8 if max_k <= 8 else np.uint16
    step_bit = (1 << slot[step_leaf, step_fam]).astype(bit_type)
    leaf_step_start = np.flatnonzero(np.r_[True, step_leaf[1:] != step_leaf[:-1]])

    sizes = (2 ** ks) * ks
    offsets = np.zeros(n_leaves, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)[:-1]
    table = np.zeros(int(sizes.sum()))
    for k in np.unique(ks):
        span = (2 ** int(k)) * int(k)
        same_k = np.flatnonzero(ks == k)
        step = max(1, TABLE_BATCH // span)  # a few MiB of temporaries at a time
        for s in range(0, len(same_k), step):
            idx = same_k[s:s + step]
            phi = _shapley_of_products(b[idx][present[idx]].reshape(len(idx), int(k)))
            phi *= l_value[idx][:, None, None]
            table[(offsets[idx][:, None] + np.arange(span)[None, :]).ravel()] = phi.reshape(len(idx), span).ravel()

    slot_leaf, slot_family = np.nonzero(present)  # leaf-major, families ascending: slot order
    slot_j = slot[slot_leaf, slot_family]
    order = np.argsort(slot_family, kind="stable")
    slot_leaf, slot_j, slot_family = slot_leaf[order], slot_j[order], slot_family[order]
    family_present, family_slot_start = np.unique(slot_family, return_index=True)

    n_cats = max((int(c.max()) + 1 for c in cat_sets if len(c)), default=1)
    cat_member = np.zeros((len(cat_nodes), n_cats), dtype=bool)
    for r, cats in enumerate(cat_sets):
        cat_member[r, cats] = True
    return FamilyShapTables(
        n_families=n_families, expected_value=expected,
        node_feature=node_feature, node_threshold=np.where(node_dt & 1, 0.0, np.concatenate(thrs)),
        node_missing=((node_dt >> 2) & 3).astype(np.int8), node_default_left=(node_dt & 2) > 0,
        cat_nodes=np.array(cat_nodes, dtype=np.int64), cat_member=cat_member,
        step_node=step_node.astype(np.intp), step_left=step_left, step_bit=step_bit,
        leaf_step_start=leaf_step_start.astype(np.intp),
        leaf_full=np.bitwise_or.reduceat(step_bit, leaf_step_start),
        slot_leaf=slot_leaf, slot_base=offsets[slot_leaf] + slot_j, slot_k=ks[slot_leaf],
        family_slot_start=family_slot_start.astype(np.int64), family_present=family_present.astype(np.int64),
        table=table)


def _empty(n_families: int, expected: float) -> FamilyShapTables:
    z = np.zeros(0, dtype=np.int64)
    return FamilyShapTables(n_families, expected, z, np.zeros(0), np.zeros(0, dtype=np.int8), np.zeros(0, dtype=bool),
                            z, np.zeros((0, 1), dtype=bool), z, np.zeros(0, dtype=bool), z, z, z, z, z, z, z, z,
                            np.zeros(0))
