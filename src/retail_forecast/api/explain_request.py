"""The ``explain`` field of a /predict body: checked strictly, served by the local backend only.

``"explain": true`` adds an ``explanation`` object to every prediction: the tree model's exact
TreeSHAP contributions in log space (:mod:`retail_forecast.models.explain`), computed from the
same history snapshot and feature rows as the served recursion. Only the local backend has the
booster and the history in process: any other backend (SageMaker, a test double) answers 409
``explain_unavailable`` before a model runs, and the same request without ``explain`` is served.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final

import pandas as pd

from retail_forecast.api.errors import ApiError, error_item
from retail_forecast.api.quantile_request import ALLOWED_QUANTILES, quantile_levels
from retail_forecast.api.validation import Problems, RowBatch, extract_rows
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.predictor import ServingDomain
from retail_forecast.inference.preprocess import (
    canonical_rows,
    panel_from_snapshot,
    requested_series,
)
from retail_forecast.models.explain import RowExplanation, explain_rows

EXPLAIN_RULE: Final = "explain must be a JSON boolean, true or false (not 1, 0 or a string)"
NOT_EXPLAINED: Final = {
    "closed": "closed: the store is closed that day, the answer is 0 and no model ran",
    "zero_rule": (
        "zero_rule: the series sold nothing over the dead-series window, the answer is 0 and"
        " no model ran"
    ),
}


def extract_predict_body(
    obj: Any, *, max_rows: int
) -> tuple[list[Any], tuple[float, ...] | None, bool]:
    """Return the rows, the ``quantiles`` levels and the ``explain`` flag of a /predict body."""
    problems = Problems()
    levels = quantile_levels(obj, problems) if isinstance(obj, dict) else None
    explain = explain_flag(obj, problems) if isinstance(obj, dict) else False
    try:
        rows = extract_rows(
            obj, max_rows=max_rows, optional=("quantiles", "explain"), problems=problems
        )
    except ApiError as exc:
        fields = {item["loc"][0] for item in problems.items if item["loc"]}
        allowed: dict[str, Any] = {}
        if "quantiles" in fields:
            allowed["quantiles"] = ALLOWED_QUANTILES
        if "explain" in fields:
            allowed["explain"] = [True, False]
        if allowed:
            exc.extra["allowed"] = allowed
        raise
    return rows, levels, explain


def explain_flag(obj: dict[str, Any], problems: Problems) -> bool:
    """``obj["explain"]``: absent or false -> False; anything but a JSON boolean is a problem."""
    value = obj.get("explain", False)
    if isinstance(value, bool):
        return value
    problems.add(["explain"], "bool_type", EXPLAIN_RULE)
    return False


def can_explain(predictor: object) -> bool:
    """Whether ``predictor`` holds the booster and the history in process (the local backend)."""
    return isinstance(predictor, LocalPredictor) and predictor.store is not None


def check_explain_served(batch: RowBatch, *, explainable: bool) -> None:
    """409 when the request asks for explanations the serving backend cannot give."""
    if not batch.explain or explainable:
        return
    message = (
        "explanations need the local backend (the booster and the history in process); this"
        " service forecasts through another backend: send the request without explain"
    )
    raise ApiError(
        409,
        message,
        error="explain_unavailable",
        detail=[error_item(["explain"], "explain_unavailable", message)],
    )


def explanation_tails(
    models: Sequence[str],
    positions: Sequence[int],
    rows: pd.DataFrame,
    predictor: object,
    domain: ServingDomain,
) -> list[str]:
    """``, "explanation": {...}`` per row of a batch (``models``: its rows' labels), in order.

    ``rows``: the frame the predictor was given for the batch (every row: closures and
    promotions steer the recursion), at batch ``positions``.
    Rows no model answered (closed, zero rule) get the reason instead of contributions.
    """
    found: dict[int, RowExplanation] = {}
    if any(models[k] not in NOT_EXPLAINED for k in positions):
        if not isinstance(predictor, LocalPredictor) or predictor.store is None:
            raise RuntimeError("explain reached a backend that cannot explain")
        snapshot = predictor.store.snapshot()
        if snapshot.date_index[-1].date() != domain.history_end:
            raise ApiError(
                409,
                "the history advanced while the request was answered; send it again",
                error="history_moved",
            )
        request = canonical_rows(rows, domain.families)
        panel = panel_from_snapshot(snapshot, requested_series(request))
        found = dict(zip(positions, explain_rows(predictor.model, panel, request), strict=True))
    return [
        _reason(label) if label in NOT_EXPLAINED else _tail(found[k])
        for k, label in enumerate(models)
    ]


def _reason(label: str) -> str:
    reason = NOT_EXPLAINED.get(label, f"{label}: not explained")
    return f', "explanation": {{"explained": false, "reason": "{reason}"}}'


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "null"


def _tail(e: RowExplanation) -> str:
    parts = ", ".join(
        f'{{"feature": {json.dumps(c.feature)}, "value": {_number(c.value)},'
        f' "contribution": {_number(c.contribution)}}}'
        for c in e.contributions
    )
    return (
        f', "explanation": {{"explained": true, "tree_log1p": {_number(e.tree_log1p)},'
        f' "bias": {_number(e.bias)}, "contributions": [{parts}],'
        f' "other": {_number(e.other)}, "xgboost_weight": {_number(e.xgboost_weight)},'
        f' "lstm_weight": {_number(1.0 - e.xgboost_weight)}, "note": "{e.note}"}}'
    )
