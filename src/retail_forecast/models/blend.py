"""Blend weights for two forecasters in log space, learned on backtest folds."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError
from retail_forecast.schema import FAMILY

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
GRID: FloatArray = np.linspace(0.0, 1.0, 21)
FOLD = "fold"
ACTUAL = "actual"


@dataclass(frozen=True)
class BlendWeights:
    """Weight of the first model (``first``) per row; the second model gets ``1 - weight``.

    ``global_weight`` applies to every family without its own entry in ``per_family``.
    A weight of exactly 1.0 or 0.0 means a single model serves (the fallback).
    """

    first: str
    second: str
    global_weight: float
    per_family: dict[str, float] = field(default_factory=dict)

    def weights_for(self, families: pd.Series) -> FloatArray:
        """Weight of ``first`` per row (a family without its own weight gets the global one)."""
        if isinstance(families.dtype, pd.CategoricalDtype):
            names = [str(c) for c in families.cat.categories]
            codes = families.cat.codes.to_numpy()  # -1 (missing) takes the last entry: global
        else:
            unique, inverse = np.unique(families.astype(str).to_numpy(), return_inverse=True)
            names, codes = [str(u) for u in unique], inverse
        table = [self.per_family.get(name, self.global_weight) for name in names]
        return np.asarray([*table, self.global_weight], dtype=np.float64)[codes]

    def blend_log(
        self, families: pd.Series, log_first: FloatArray, log_second: FloatArray
    ) -> FloatArray:
        weight = self.weights_for(families)
        return weight * log_first + (1.0 - weight) * log_second

    def model_labels(self, families: pd.Series, *, blend_name: str = "hybrid") -> npt.NDArray[Any]:
        return self.labels_for(self.weights_for(families), blend_name=blend_name)

    def labels_for(self, weight: FloatArray, *, blend_name: str = "hybrid") -> npt.NDArray[Any]:
        """Which model serves each row, given its weight (1.0: first, 0.0: second)."""
        labels = np.full(weight.shape, blend_name, dtype=object)
        labels[weight == 1.0] = self.first
        labels[weight == 0.0] = self.second
        return labels

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "global_weight": self.global_weight,
            "per_family": dict(sorted(self.per_family.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlendWeights:
        return cls(
            first=str(data["first"]),
            second=str(data["second"]),
            global_weight=float(data["global_weight"]),
            per_family={str(k): float(v) for k, v in dict(data.get("per_family", {})).items()},
        )


@dataclass(frozen=True)
class _LogFrame:
    fold: npt.NDArray[Any]
    family: npt.NDArray[Any]
    y: FloatArray
    a: FloatArray
    b: FloatArray

    def subset(self, mask: npt.NDArray[np.bool_]) -> _LogFrame:
        return _LogFrame(
            self.fold[mask], self.family[mask], self.y[mask], self.a[mask], self.b[mask]
        )


def _sse_per_weight(frame: _LogFrame) -> FloatArray:
    """Sum of squared log errors for each weight of GRID (vectorised over the grid)."""
    diff_a = frame.a - frame.y
    diff_b = frame.b - frame.y
    # (w*a + (1-w)*b - y)^2 = (w*da + (1-w)*db)^2 expanded: one pass over the rows.
    saa, sbb, sab = diff_a @ diff_a, diff_b @ diff_b, diff_a @ diff_b
    w = GRID
    return np.asarray(w * w * saa + (1 - w) ** 2 * sbb + 2 * w * (1 - w) * sab, dtype=np.float64)


def _best_weight(frame: _LogFrame) -> float:
    return float(GRID[int(np.argmin(_sse_per_weight(frame)))])


def _sse_at(frame: _LogFrame, weight: float) -> float:
    err = weight * frame.a + (1.0 - weight) * frame.b - frame.y
    return float(err @ err)


def _held_out_sse(frame: _LogFrame, choose: str) -> float:
    """Leave-one-fold-out error of a weight choice rule: 'blend', 'single', or a fixed weight."""
    total = 0.0
    for fold in np.unique(frame.fold):
        train, test = frame.subset(frame.fold != fold), frame.subset(frame.fold == fold)
        if choose == "blend":
            weight = _best_weight(train)
        else:  # the better single model on the training folds
            weight = 1.0 if _sse_at(train, 1.0) <= _sse_at(train, 0.0) else 0.0
        total += _sse_at(test, weight)
    return total


def _to_log_frame(predictions: pd.DataFrame, first: str, second: str) -> _LogFrame:
    required = {FOLD, FAMILY, ACTUAL, first, second}
    missing = required - set(predictions.columns)
    if missing:
        raise DataValidationError(f"fold predictions lack columns {sorted(missing)}")
    return _LogFrame(
        fold=predictions[FOLD].astype(str).to_numpy(),
        family=predictions[FAMILY].astype(str).to_numpy(),
        y=np.log1p(predictions[ACTUAL].to_numpy(dtype=np.float64)),
        a=np.log1p(predictions[first].to_numpy(dtype=np.float64)),
        b=np.log1p(predictions[second].to_numpy(dtype=np.float64)),
    )


def learn_blend_weights(predictions: pd.DataFrame, *, first: str, second: str) -> BlendWeights:
    """Learn blend weights from per-fold predictions (columns fold, family, actual, first, second).

    Global: the weight on a 0.05 grid minimising RMSLE over all folds, kept only if its
    leave-one-fold-out error beats the better single model's; otherwise that single model.
    Per family: a family's own weight is kept only where its leave-one-fold-out error beats the
    global rule on that family's rows.
    """
    frame = _to_log_frame(predictions, first, second)
    n_folds = len(np.unique(frame.fold))
    global_weight = _best_weight(frame)
    if n_folds > 1 and _held_out_sse(frame, "blend") >= _held_out_sse(frame, "single"):
        global_weight = 1.0 if _sse_at(frame, 1.0) <= _sse_at(frame, 0.0) else 0.0
        logger.info(
            "blend does not beat the better single model held out; using weight=%s", global_weight
        )
    per_family: dict[str, float] = {}
    if n_folds > 1:
        for family in np.unique(frame.family):
            rows = frame.subset(frame.family == family)
            own = _held_out_sse(rows, "blend")
            shared = sum(
                _sse_at(rows.subset(rows.fold == fold), global_weight)
                for fold in np.unique(rows.fold)
            )
            if own < shared:
                per_family[str(family)] = _best_weight(rows)
    logger.info(
        "blend weights learned global=%.2f per_family=%d of %d families",
        global_weight,
        len(per_family),
        len(np.unique(frame.family)),
    )
    return BlendWeights(
        first=first, second=second, global_weight=global_weight, per_family=per_family
    )
