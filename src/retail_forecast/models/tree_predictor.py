"""TreePredictor: the seam for evaluating a booster's trees on feature rows, and the one choice.

Two implementations stand behind it: :class:`InplacePredictor` (XGBoost's own
``inplace_predict``) and :class:`~retail_forecast.models.tree_walker.NumpyTreeWalker` (the
booster's trees walked as NumPy arrays). Both give the same float32 predictions bit for bit.
:func:`tree_predictor` is the only place that picks between them: XGBoost for training-time
forecasts and backtests, and for serving the walker up to ``WALKER_MAX_ROWS`` rows a call with
XGBoost above. treelite's GTIL was measured as a third one and not kept (bench/RESULTS.md,
forest: ``bench/forest.py`` shows it through the same seam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from retail_forecast.models.tree_walker import NumpyTreeWalker

F32Array = npt.NDArray[np.float32]
# Up to this many rows a call runs on the walker, above it on XGBoost, whose cost grows more
# slowly with the rows: the walker's lead shrinks as rows are added (bench/RESULTS.md, forest).
WALKER_MAX_ROWS = 32


class TreePredictor(Protocol):
    """Float32 predictions of a booster's trees for the rows of ``x`` ([rows, features])."""

    def predict(self, x: F32Array) -> F32Array: ...


@dataclass(frozen=True)
class InplacePredictor:
    """XGBoost's ``inplace_predict`` on the booster, with the booster's own thread count."""

    booster: xgb.Booster

    def predict(self, x: F32Array) -> F32Array:
        return np.asarray(self.booster.inplace_predict(x, validate_features=False), np.float32)


@dataclass(frozen=True)
class ByRowCount:
    """``small`` for calls of up to ``max_small_rows`` rows, ``large`` for bigger ones."""

    small: TreePredictor
    large: TreePredictor
    max_small_rows: int

    def predict(self, x: F32Array) -> F32Array:
        chosen = self.small if len(x) <= self.max_small_rows else self.large
        return chosen.predict(x)


def tree_predictor(booster: xgb.Booster, *, serving: bool) -> TreePredictor:
    """Return XGBoost alone for ``booster``, or for serving the walker before it for few rows.

    A served forecast steps one row a series (a single-series request, or a micro-batch of a
    few), where XGBoost's per-call setup dominates; many series at once stay on XGBoost. The
    walker reads the booster's trees now: a later change to the booster needs a new predictor.
    """
    plain = InplacePredictor(booster)
    if not serving:
        return plain
    walker = NumpyTreeWalker.from_booster(booster)
    return ByRowCount(small=walker, large=plain, max_small_rows=WALKER_MAX_ROWS)
