"""NumpyTreeWalker: an XGBoost tree ensemble as flat NumPy arrays, walked for small batches.

XGBoost's ``inplace_predict`` has a per-call cost that grows with the number of trees (it
rebuilds a model view and per-tree tables on every call), and a served forecast is 16 recursive
calls of one row a series. Walking all trees of all rows at once as array operations (one gather
per tree level) costs a fraction of that for a few rows; large batches (the all-series request,
backtests) stay on XGBoost, which is faster per row (the crossover, and why treelite's GTIL
does not replace the walker: bench/RESULTS.md, forest).

The arrays come from the booster's own JSON dump (``save_raw("json")``; no pickle). The result
is bit-identical to ``inplace_predict`` for ``reg:squarederror`` models (tested): every split
compares in float32 as XGBoost does, missing values follow ``default_left``, a categorical
split sends the categories in its set to the right child (XGBoost's ``Decision``), and the
leaf values are accumulated in float32, tree by tree, from ``base_score``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from retail_forecast.errors import ArtifactError

IntArray = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
SUPPORTED_OBJECTIVES = ("reg:squarederror",)
I32Array = npt.NDArray[np.int32]
# The fast path stores every tree complete: 2**depth slots a tree (depth 8: 256)
COMPLETE_MAX_DEPTH = 10


@dataclass(frozen=True)
class NumpyTreeWalker:
    """All trees' nodes in flat arrays; a leaf's children point at itself."""

    feature: IntArray
    threshold: F32Array  # split condition; the leaf value on leaves
    left: IntArray
    right: IntArray
    default_left: BoolArray
    cat_row: IntArray  # row of ``cat_right`` for a categorical split, -1 otherwise
    cat_right: BoolArray  # [categorical split, category]: True = goes right
    cat_feature: IntArray  # the feature each categorical split reads
    roots: IntArray
    depth: int
    base_score: np.float32
    n_features: int
    cat_features: IntArray = field(init=False, compare=False, repr=False)
    _cat_tables: tuple[F32Array, ...] = field(init=False, compare=False, repr=False)
    _thread: threading.local = field(default_factory=threading.local, compare=False, repr=False)
    _level_feature: tuple[I32Array, ...] = field(init=False, compare=False, repr=False)
    _level_threshold: tuple[F32Array, ...] = field(init=False, compare=False, repr=False)
    _roots_slot: I32Array = field(init=False, compare=False, repr=False)
    _leaf_value: F32Array = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # the distinct features that categorical splits read (the memo key of a row)
        object.__setattr__(self, "cat_features", np.unique(self.cat_feature))
        feature = self._numbered_categorical_features()
        if self.depth <= COMPLETE_MAX_DEPTH:
            self._build_complete_layout(feature)

    def _numbered_categorical_features(self) -> IntArray:
        """Each node's feature for the fast path, categorical splits as extra row features.

        A categorical split reads an extra feature of the row, 1.0 when the row's category goes
        right and 0.0 when it goes left, against the threshold 0.5, so every split of the fast
        path is ``value >= threshold -> right``. The extra features are numbered feature by
        feature (all store splits, then all family splits): a row's extra values are one row of
        a per-feature table (``_cat_tables``) per categorical feature.
        """
        by_feature = np.argsort(self.cat_feature, kind="stable")  # split ids, feature by feature
        extra = np.empty(len(by_feature), dtype=np.int64)
        extra[by_feature] = np.arange(len(by_feature))
        n_categories = self.cat_right.shape[1]
        tables = []
        for f in self.cat_features:
            splits = by_feature[self.cat_feature[by_feature] == f]
            table = np.zeros((n_categories + 1, len(splits)), dtype=np.float32)  # last: invalid
            table[:n_categories] = self.cat_right[splits].T
            tables.append(table)
        object.__setattr__(self, "_cat_tables", tuple(tables))
        if not len(extra):  # no categorical split in any tree: every node reads its feature
            return self.feature
        extra_feature = self.n_features + extra[np.maximum(self.cat_row, 0)]
        return np.where(self.cat_row >= 0, extra_feature, self.feature)

    def _build_complete_layout(self, feature: IntArray) -> None:
        """Every tree as a complete binary tree of ``depth`` levels, stored level by level.

        Level ``L`` holds ``2**L`` slots per tree, tree after tree, so one level of all trees
        is one small contiguous block and slot ``k`` of a level (tree ``t``'s slot ``s``, at
        ``t * 2**L + s``) has its children at ``2k`` and ``2k + 1`` of the next level: no child
        pointers or per-tree offsets to load. A leaf above the last level fills its subtree
        (threshold +inf: always left) and its value lands in every last-level slot below it.
        """
        categorical = self.cat_row >= 0
        threshold = np.where(categorical, np.float32(0.5), self.threshold).astype(np.float32)
        node = self.roots[:, None]
        features, thresholds = [], []
        for _ in range(self.depth):
            leaf = self.left[node] == node
            features.append(np.where(leaf, 0, feature[node]).astype(np.int32).reshape(-1))
            thresholds.append(np.where(leaf, np.inf, threshold[node]).astype(np.float32).ravel())
            node = np.stack([self.left[node], self.right[node]], axis=2).reshape(self.n_trees, -1)
        object.__setattr__(self, "_level_feature", tuple(features))
        object.__setattr__(self, "_level_threshold", tuple(thresholds))
        object.__setattr__(self, "_roots_slot", np.arange(self.n_trees, dtype=np.int32))
        object.__setattr__(self, "_leaf_value", self.threshold[node].reshape(-1))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @classmethod
    def from_booster(cls, booster: xgb.Booster) -> NumpyTreeWalker:
        """Flatten a single-output gbtree regression booster (raises ArtifactError otherwise)."""
        dump = booster_dump(booster)
        return _flatten(dump.trees, base_score=dump.base_score, n_features=dump.n_features)

    def predict(self, x: F32Array) -> F32Array:
        """Predictions for the rows of ``x`` (float32, [rows, features])."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected [rows, {self.n_features}] features, got {x.shape}")
        leaves = self._leaf_values(x)
        start = np.full((len(x), 1), self.base_score, dtype=np.float32)
        # cumsum adds left to right in float32, tree by tree, as XGBoost does.
        total = np.cumsum(np.concatenate([start, leaves], axis=1), axis=1, dtype=np.float32)
        return np.ascontiguousarray(total[:, -1])

    def _leaf_values(self, x: F32Array) -> F32Array:
        """Leaf value per (row, tree): the complete layout for rows without a missing value."""
        if self.depth > COMPLETE_MAX_DEPTH:
            return self.threshold[self._leaves(x)]
        missing = np.isnan(x).any(axis=1)
        if not missing.any():
            return self._complete_leaf_values(self._with_categorical_values(x))
        out = np.empty((len(x), self.n_trees), dtype=np.float32)
        out[missing] = self.threshold[self._leaves(x[missing])]  # missing: default_left
        if not missing.all():
            complete = self._with_categorical_values(np.ascontiguousarray(x[~missing]))
            out[~missing] = self._complete_leaf_values(complete)
        return out

    def _complete_leaf_values(self, extended: F32Array) -> F32Array:
        """Walk every tree's complete layout for all rows at once: one gather a level.

        ``extended``: rows followed by their categorical split values (2-D, no NaN). One row
        (every step of a single-series request) walks 1-D arrays: fewer index operations.
        """
        one = len(extended) == 1
        flat = extended.ravel()
        width = extended.shape[1]
        row_start = np.arange(0, len(extended) * width, width, dtype=np.int32)[:, None]
        slot = self._roots_slot  # level 0: tree t's root is slot t
        if not one:
            slot = np.broadcast_to(slot, (len(extended), self.n_trees))
        for level in range(self.depth):
            feature = self._level_feature[level][slot]
            right = (
                flat[feature if one else row_start + feature] >= self._level_threshold[level][slot]
            )
            slot = 2 * slot + right
        leaves: F32Array = self._leaf_value[slot]
        return leaves[None, :] if one else leaves

    def _leaves(self, x: F32Array) -> IntArray:
        """Leaf node per (row, tree) of a 2-D ``x``, following pointers (any value missing)."""
        node = np.broadcast_to(self.roots, (len(x), self.n_trees))
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            value = x[rows, self.feature[node]]
            go_left = value < self.threshold[node]
            if len(self.cat_right):
                self._categorical(node, value, go_left)
            node = self._step(node, value, go_left)
        return node

    def _step(self, node: IntArray, value: F32Array, go_left: BoolArray) -> IntArray:
        missing = np.isnan(value)
        if missing.any():
            go_left = np.where(missing, self.default_left[node], go_left)
        return np.where(go_left, self.left[node], self.right[node])

    def _with_categorical_values(self, x: F32Array) -> F32Array:
        """Rows ``x`` followed by every categorical split's value (1.0: goes right).

        A batch's 16 recursive steps share their categorical values (the same series), so
        each thread keeps the extended rows of its last batch and only overwrites the leading
        ``n_features`` columns; the buffer is this thread's own, used before its next call.
        """
        if not len(self.cat_right):
            return x
        values = x[:, self.cat_features]
        key = values.tobytes()  # the rows' count and their categorical values
        last: tuple[bytes, F32Array] | None = getattr(self._thread, "rows", None)
        if last is not None and last[0] == key:
            last[1][:, : self.n_features] = x
            return last[1]
        n_categories = self.cat_right.shape[1]
        # XGBoost's category of a value: its integer part; out of range -> every split goes left
        valid = (values >= 0) & (values < n_categories)
        codes = np.where(valid, values, n_categories).astype(np.int64).T
        extended = np.concatenate(
            [x, *(t[c] for t, c in zip(self._cat_tables, codes, strict=True))], axis=1
        )
        self._thread.rows = (key, extended)
        return extended

    def _categorical(self, node: IntArray, value: F32Array, go_left: BoolArray) -> None:
        """Overwrite ``go_left`` where ``node`` is a categorical split (in place)."""
        row = self.cat_row[node]
        at = row >= 0
        if not at.any():
            return
        go_left[at] = self._goes_left(row[at], value[at])

    def _goes_left(self, split: IntArray, value: F32Array) -> BoolArray:
        """XGBoost's categorical decision: a category outside the split's set goes left.

        So do NaN, negative and out-of-range values (NaN is then overridden by
        ``default_left``, as for numeric splits).
        """
        valid = (value >= 0) & (value < self.cat_right.shape[1])
        code = np.where(valid, value, 0).astype(np.int64)
        return np.asarray(~(self.cat_right[split, code] & valid), dtype=np.bool_)


@dataclass(frozen=True)
class BoosterDump:
    """A booster's trees as XGBoost's JSON dump holds them, its base score and feature count."""

    trees: list[dict[str, Any]]
    base_score: np.float32  # the margin every tree adds to (squared error: no link)
    n_features: int


def booster_dump(booster: xgb.Booster) -> BoosterDump:
    """Read a single-output squared-error gbtree booster (raises ArtifactError otherwise)."""
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    objective = learner["objective"]["name"]
    model = learner["gradient_booster"]
    if model.get("name") != "gbtree" or objective not in SUPPORTED_OBJECTIVES:
        raise ArtifactError(f"cannot walk a {model.get('name')}/{objective} model")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")) > 1:
        raise ArtifactError("cannot walk a multi-output model")
    base = json.loads(params["base_score"]) if params["base_score"].startswith("[") else None
    base_score = np.float32(base[0] if base is not None else float(params["base_score"]))
    return BoosterDump(model["model"]["trees"], base_score, int(params["num_feature"]))


def _flatten(
    trees: list[dict[str, Any]], *, base_score: np.float32, n_features: int
) -> NumpyTreeWalker:
    feature, threshold, left, right, default_left, cat_row, roots = [], [], [], [], [], [], []
    cat_sets: list[list[int]] = []
    depth = 0
    offset = 0
    for tree in trees:
        lc = np.asarray(tree["left_children"], dtype=np.int64)
        rc = np.asarray(tree["right_children"], dtype=np.int64)
        n = len(lc)
        own = np.arange(n, dtype=np.int64)
        leaf = lc < 0
        left.append(np.where(leaf, own, lc) + offset)
        right.append(np.where(leaf, own, rc) + offset)
        feature.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
        threshold.append(np.asarray(tree["split_conditions"], dtype=np.float32))
        default_left.append(np.asarray(tree["default_left"], dtype=np.bool_))
        cat_row.append(categorical_rows(tree, n, cat_sets))
        roots.append(offset)
        depth = max(depth, _depth(lc, rc))
        offset += n
    cat_rows = np.concatenate(cat_row)
    cat_right = category_table(cat_sets)
    return NumpyTreeWalker(
        feature=np.concatenate(feature),
        threshold=np.concatenate(threshold),
        left=np.concatenate(left),
        right=np.concatenate(right),
        default_left=np.concatenate(default_left),
        cat_row=cat_rows,
        cat_right=cat_right,
        cat_feature=_split_features(cat_rows, np.concatenate(feature)),
        roots=np.asarray(roots, dtype=np.int64),
        depth=depth,
        base_score=base_score,
        n_features=n_features,
    )


def category_table(cat_sets: list[list[int]]) -> BoolArray:
    """[categorical split, category]: True where the category is in the split's set (right)."""
    n_categories = max((max(s) + 1 for s in cat_sets if s), default=0)
    table = np.zeros((len(cat_sets), n_categories), dtype=np.bool_)
    for i, members in enumerate(cat_sets):
        table[i, members] = True
    return table


def categorical_rows(tree: dict[str, Any], n_nodes: int, cat_sets: list[list[int]]) -> IntArray:
    """Append the tree's categorical splits to ``cat_sets``; return each node's row (-1: none)."""
    rows = np.full(n_nodes, -1, dtype=np.int64)
    categories = tree.get("categories", [])
    nodes = tree.get("categories_nodes", [])
    segments = tree.get("categories_segments", [])
    sizes = tree.get("categories_sizes", [])
    for node_id, seg, size in zip(nodes, segments, sizes, strict=True):
        rows[node_id] = len(cat_sets)
        cat_sets.append([int(c) for c in categories[seg : seg + size]])
    return rows


def _split_features(cat_rows: IntArray, feature: IntArray) -> IntArray:
    """Return the feature of each categorical split, in ``cat_right`` row order."""
    nodes = np.flatnonzero(cat_rows >= 0)
    out = np.empty(len(nodes), dtype=np.int64)
    out[cat_rows[nodes]] = feature[nodes]
    return out


def _depth(left: IntArray, right: IntArray) -> int:
    """Edges on the longest root-to-leaf path."""
    depth = 0
    frontier = np.zeros(1, dtype=np.int64)
    while True:
        inner = frontier[left[frontier] >= 0]
        if not len(inner):
            return depth
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1
