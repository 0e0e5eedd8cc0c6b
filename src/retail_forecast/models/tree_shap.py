"""Exact TreeSHAP for a few rows, leaf path by leaf path (the C kernel ``_treeshap.c``).

XGBoost's ``pred_contribs`` walks every node of every tree for each row with the recursive
algorithm, O(leaves x depth^2) a tree; on the served Favorita model that is ~100 ms for one
series' 16 rows on two threads, several plain requests. The kernel computes the same values
(path-dependent TreeSHAP, Lundberg et al. 2020) in O(leaves x depth) a row from a table per
leaf over the subsets of its path's features, built once per model (the formula:
``_treeshap.c``). The result equals ``pred_contribs`` up to float32 rounding (tests compare
both on boosters with numeric, categorical and missing values); bench/dashboard.py times both.

The kernel is a C extension built at install when a compiler is there (``pyproject.toml``
marks it optional); without it :func:`tree_shap` returns None and the caller keeps XGBoost's
own ``pred_contribs``. The tree structure comes from the booster's JSON dump (no pickle).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from retail_forecast.errors import ArtifactError
from retail_forecast.models.tree_walker import booster_dump, categorical_rows, category_table

logger = logging.getLogger(__name__)
F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]
I32Array = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]
U8Array = npt.NDArray[np.uint8]
KERNEL_MODULE = "retail_forecast.models._treeshap"
MAX_DEPTH = 64  # the kernel's stack (_treeshap.c)


def _pointer(dtype: type[np.generic]) -> Any:
    return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")


@cache
def kernel() -> ctypes.CDLL | None:
    """Load the compiled kernel; None where the extension was not built (no compiler)."""
    spec = importlib.util.find_spec(KERNEL_MODULE)
    if spec is None or spec.origin is None or not spec.origin.endswith((".so", ".pyd")):
        return None
    lib = ctypes.CDLL(spec.origin)
    i64, i32 = ctypes.c_int64, ctypes.c_int32
    lib.tshap_prepare.restype = i64
    lib.tshap_prepare.argtypes = [
        i64, i32, _pointer(np.int32), _pointer(np.int32), _pointer(np.float64),
        _pointer(np.int32), _pointer(np.int32), _pointer(np.float64), _pointer(np.int32),
        _pointer(np.int64),
    ]  # fmt: skip
    lib.tshap_tables.restype = None
    lib.tshap_tables.argtypes = [
        i64, i32, _pointer(np.int32), _pointer(np.float64), _pointer(np.int64),
        _pointer(np.float32), _pointer(np.float64),
    ]  # fmt: skip
    lib.tshap_contribs.restype = None
    lib.tshap_contribs.argtypes = [
        i64, _pointer(np.float32), i64, _pointer(np.int64), _pointer(np.int64),
        _pointer(np.int64), _pointer(np.int32), _pointer(np.float32), _pointer(np.uint8),
        _pointer(np.int32), _pointer(np.int64), i32, _pointer(np.float64), _pointer(np.int32),
        _pointer(np.int32), _pointer(np.float64), _pointer(np.int64), _pointer(np.float32),
        _pointer(np.float64), _pointer(np.uint32), _pointer(np.float64),
    ]  # fmt: skip
    return lib


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """Threads that run the kernel on a part of the trees each (one pool per thread count)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="treeshap")


@dataclass(frozen=True)
class _Nodes:
    """Every tree's nodes in flat arrays (leaves: ``left == -1``)."""

    left: I64Array
    right: I64Array
    feature: I64Array
    threshold: F32Array  # split condition; the leaf value on leaves
    default_left: npt.NDArray[np.bool_]
    cover: F64Array
    cat_split: I64Array  # the node's row in ``cat_right``, -1 for a numeric split
    cat_right: npt.NDArray[np.bool_]  # [categorical split, category]: True = goes right
    roots: I64Array


@dataclass(frozen=True)
class TreeShap:
    """Leaf paths and their tables; :meth:`contributions` is ``pred_contribs`` for a few rows."""

    n_features: int
    depth: int  # the longest leaf path's number of splits
    bias: float  # base_score + each tree's cover-weighted mean leaf value
    roots: I64Array
    left: I64Array
    right: I64Array
    col: I32Array  # the column of the extended row a split reads
    threshold: F32Array
    default_left: U8Array
    node_slot: I32Array
    node_leaf: I64Array  # a leaf's number, -1 for a split
    leaf_value: F64Array
    n_slot: I32Array
    slot_feature: I32Array  # [leaf * depth + u]: the path's distinct features, then (1 - z) / z
    slot_coef: F64Array
    table_offset: I64Array
    table: F32Array
    cat_feature: I64Array  # the feature each categorical split reads (its extra column's source)
    cat_right: npt.NDArray[np.bool_]
    leaves_before: I64Array  # [tree]: the leaves of the trees up to and including it

    @property
    def table_bytes(self) -> int:
        return int(self.table.nbytes)

    def contributions(self, x: F32Array, *, threads: int = 1) -> F64Array:
        """One value per feature, then the bias, per row of ``x`` (rows x features + 1).

        ``threads`` > 1 splits the trees between threads (the kernel runs without the GIL),
        each adding into its own array.
        """
        rows = self._extended(np.asarray(x, dtype=np.float32))
        if not len(rows):
            return np.zeros((0, self.n_features + 1), dtype=np.float64)
        columns = np.ascontiguousarray(rows.T)  # the kernel reads a feature of all rows at once
        parts = self._tree_chunks(max(1, threads))
        out = np.zeros((len(parts), self.n_features + 1, len(rows)), dtype=np.float64)
        if len(parts) == 1:
            self._run(columns, parts[0], out[0])
        else:
            pool = _pool(len(parts))
            done = [pool.submit(self._run, columns, p, o) for p, o in zip(parts, out, strict=True)]
            for future in done:
                future.result()
        total = out.sum(axis=0)
        total[-1] = self.bias
        return np.ascontiguousarray(total.T)

    def _tree_chunks(self, threads: int) -> list[I64Array]:
        """Cut the roots into ``threads`` runs of trees with about as many leaves each."""
        if threads == 1 or len(self.roots) < threads:
            return [self.roots]
        cuts = np.searchsorted(
            self.leaves_before, np.arange(1, threads) * self.leaves_before[-1] / threads
        )
        return [np.ascontiguousarray(r) for r in np.split(self.roots, cuts) if len(r)]

    def _run(self, columns: F32Array, roots: I64Array, out: F64Array) -> None:
        lib = kernel()
        if lib is None:
            raise RuntimeError("the TreeSHAP kernel is not built")
        n_rows = columns.shape[1]
        masks = np.empty((2 * self.depth + 2) * max(n_rows, 1), dtype=np.uint32)
        lib.tshap_contribs(
            n_rows, columns, len(roots), roots, self.left, self.right, self.col,
            self.threshold, self.default_left, self.node_slot, self.node_leaf, self.depth,
            self.leaf_value, self.n_slot, self.slot_feature, self.slot_coef, self.table_offset,
            self.table, out, masks, np.empty(max(n_rows, 1)),
        )  # fmt: skip

    def _extended(self, x: F32Array) -> F32Array:
        """Rows followed by one column per categorical split: 1.0 goes right, 0.0 left.

        As XGBoost decides: a category in the split's set goes right; a value out of range
        goes left; NaN stays NaN (the split's default direction).
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected [rows, {self.n_features}] features, got {x.shape}")
        if not len(self.cat_feature):
            return x
        values = x[:, self.cat_feature]
        n_categories = self.cat_right.shape[1]
        valid = (values >= 0) & (values < n_categories)
        codes = np.where(valid, values, 0).astype(np.int64)
        split = np.arange(len(self.cat_feature))[None, :]
        right = self.cat_right[split, codes] & valid
        extra = np.where(np.isnan(values), np.nan, right.astype(np.float32))
        return np.concatenate([x, extra.astype(np.float32)], axis=1)


def tree_shap(booster: xgb.Booster) -> TreeShap | None:
    """Build the kernel's view of ``booster``; None where the kernel is not built."""
    lib = kernel()
    if lib is None:
        return None
    try:  # the walker's models: dart's tree weights, several outputs, a link are not
        dump = booster_dump(booster)
    except ArtifactError:
        return None  # pred_contribs explains them
    try:
        return _paths(
            lib, _nodes(dump.trees), base_score=float(dump.base_score), n_features=dump.n_features
        )
    except ValueError as exc:  # paths too long for the kernel: pred_contribs explains them
        logger.warning("exact TreeSHAP falls back to XGBoost's pred_contribs: %s", exc)
        return None


def _nodes(trees: list[dict[str, Any]]) -> _Nodes:
    parts: dict[str, list[Any]] = {k: [] for k in ("l", "r", "f", "t", "d", "c", "cat", "root")}
    cat_sets: list[list[int]] = []
    offset = 0
    for tree in trees:
        lc = np.asarray(tree["left_children"], dtype=np.int64)
        rc = np.asarray(tree["right_children"], dtype=np.int64)
        leaf = lc < 0
        parts["l"].append(np.where(leaf, -1, lc + offset))
        parts["r"].append(np.where(leaf, -1, rc + offset))
        parts["f"].append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
        parts["t"].append(np.asarray(tree["split_conditions"], dtype=np.float32))
        parts["d"].append(np.asarray(tree["default_left"], dtype=np.bool_))
        parts["c"].append(np.asarray(tree["sum_hessian"], dtype=np.float64))
        parts["cat"].append(categorical_rows(tree, len(lc), cat_sets))
        parts["root"].append(offset)
        offset += len(lc)
    return _Nodes(
        left=np.concatenate(parts["l"]),
        right=np.concatenate(parts["r"]),
        feature=np.concatenate(parts["f"]),
        threshold=np.concatenate(parts["t"]),
        default_left=np.concatenate(parts["d"]),
        cover=np.concatenate(parts["c"]),
        cat_split=np.concatenate(parts["cat"]),
        cat_right=category_table(cat_sets),
        roots=np.asarray(parts["root"], dtype=np.int64),
    )


def _leaf_paths(nodes: _Nodes) -> tuple[I64Array, I64Array, I64Array]:
    """Every leaf, the split nodes of its path (n, depth; -1 pads) and its tree's root.

    Walks all trees level by level at once.
    """
    frontier = nodes.roots
    root = nodes.roots
    path = np.empty((len(frontier), 0), dtype=np.int64)
    done: list[tuple[I64Array, I64Array, I64Array]] = []
    while len(frontier):
        leaf = nodes.left[frontier] < 0
        done.append((frontier[leaf], path[leaf], root[leaf]))
        inner = frontier[~leaf]
        path = np.concatenate([np.repeat(path[~leaf], 2, axis=0), np.repeat(inner, 2)[:, None]], 1)
        root = np.repeat(root[~leaf], 2)
        frontier = np.stack([nodes.left[inner], nodes.right[inner]], axis=1).reshape(-1)
    depth = max(p.shape[1] for _, p, _ in done)
    leaves = np.concatenate([d[0] for d in done])
    split = np.concatenate(
        [np.pad(p, ((0, 0), (0, depth - p.shape[1])), constant_values=-1) for _, p, _ in done]
    )
    return leaves, split, np.concatenate([d[2] for d in done])


def _paths(lib: ctypes.CDLL, nodes: _Nodes, *, base_score: float, n_features: int) -> TreeShap:
    leaf, split, root = _leaf_paths(nodes)
    n_leaves = len(leaf)
    if split.shape[1] == 0:  # every tree a single leaf
        split = np.full((n_leaves, 1), -1, dtype=np.int64)
    depth = split.shape[1]
    if depth > MAX_DEPTH:
        raise ValueError(f"a leaf path has {depth} splits; the kernel walks at most {MAX_DEPTH}")
    used = split >= 0  # padding (-1) only follows a path's last split
    at = np.where(used, split, 0)
    after = np.concatenate([split[:, 1:], np.full((n_leaves, 1), -1)], axis=1)
    child = np.where(after >= 0, after, leaf[:, None])  # the node each split sends the path to
    # number the leaves in the order the kernel visits them (tree by tree, left child first),
    # so that it reads the leaves' tables front to back (bench/RESULTS.md, dashboard)
    went_right = used & (nodes.right[at] == child)
    order = np.lexsort((*went_right.T[::-1], root))
    leaf, split, root, at, child = leaf[order], split[order], root[order], at[order], child[order]
    used = used[order]
    n_split = used.sum(axis=1).astype(np.int32)
    ratio = np.where(used, nodes.cover[child] / np.maximum(nodes.cover[at], 1e-300), 1.0)
    leaf_value = nodes.threshold[leaf].astype(np.float64)
    feature = np.ascontiguousarray(np.where(used, nodes.feature[at], -1), dtype=np.int32)
    ratio = np.ascontiguousarray(ratio, dtype=np.float64)
    split_slot = np.zeros((n_leaves, depth), dtype=np.int32)
    slot_feature = np.zeros((n_leaves, depth), dtype=np.int32)
    slot_z = np.ones((n_leaves, depth), dtype=np.float64)
    n_slot = np.zeros(n_leaves, dtype=np.int32)
    offset = np.zeros(n_leaves, dtype=np.int64)
    total = lib.tshap_prepare(
        n_leaves, depth, n_split, feature, ratio, split_slot, slot_feature, slot_z, n_slot, offset
    )
    if total < 0:
        raise ValueError("a leaf path splits on more than 30 distinct features")
    table = np.zeros(int(total), dtype=np.float32)
    width = int(n_slot.max(initial=0))
    scratch = np.zeros(max((1 << width) * max(width, 1), 1), dtype=np.float64)
    lib.tshap_tables(n_leaves, depth, n_slot, slot_z, offset, table, scratch)
    mean = leaf_value * nodes.cover[leaf] / nodes.cover[root]
    cat_feature = np.empty(len(nodes.cat_right), dtype=np.int64)
    cat_nodes = np.flatnonzero(nodes.cat_split >= 0)
    cat_feature[nodes.cat_split[cat_nodes]] = nodes.feature[cat_nodes]
    # a split's slot is the same in every leaf path through it (the distinct features of the
    # path above it come first, in the same order)
    node_slot = np.zeros(len(nodes.left), dtype=np.int32)
    node_slot[split[used]] = split_slot[used]
    node_leaf = np.full(len(nodes.left), -1, dtype=np.int64)
    node_leaf[leaf] = np.arange(n_leaves)
    node_categorical = nodes.cat_split >= 0
    return TreeShap(
        n_features=n_features,
        depth=depth,
        bias=base_score + float(mean.sum()),
        roots=np.ascontiguousarray(nodes.roots),
        left=np.ascontiguousarray(nodes.left),
        right=np.ascontiguousarray(nodes.right),
        col=np.ascontiguousarray(
            np.where(node_categorical, n_features + nodes.cat_split, nodes.feature), np.int32
        ),
        threshold=np.where(node_categorical, np.float32(0.5), nodes.threshold).astype(np.float32),
        default_left=np.ascontiguousarray(nodes.default_left, dtype=np.uint8),
        node_slot=node_slot,
        node_leaf=node_leaf,
        leaf_value=leaf_value,
        n_slot=n_slot,
        slot_feature=slot_feature,
        slot_coef=(1.0 - slot_z) / slot_z,
        table_offset=offset,
        table=table,
        cat_feature=cat_feature,
        cat_right=nodes.cat_right,
        leaves_before=np.cumsum(
            np.bincount(
                np.searchsorted(nodes.roots, root, side="right") - 1, minlength=len(nodes.roots)
            )
        ),
    )
