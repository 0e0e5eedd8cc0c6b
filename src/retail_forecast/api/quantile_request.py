"""The ``quantiles`` field of a /predict body: levels checked strictly, and served or not.

Each problem names its position (``quantiles[1]``) and the rule; a valid request for
quantiles that the serving model version cannot answer (a bundle without a calibration) is a
409, not a 500. The rule itself is the core's
:func:`~retail_forecast.models.quantiles.check_levels`.
"""

from __future__ import annotations

from typing import Any, Final

from retail_forecast.api.errors import ApiError, error_item
from retail_forecast.api.validation import Problems, RowBatch, extract_rows
from retail_forecast.inference.predictor import ServingDomain
from retail_forecast.models.quantiles import MAX_LEVELS, QuantileCalibration, check_levels

QUANTILE_RULE: Final = (
    f"1 to {MAX_LEVELS} distinct levels, each a JSON number strictly between 0 and 1"
    " (e.g. [0.1, 0.5, 0.9]); leave quantiles out for point forecasts only"
)
ALLOWED_QUANTILES: Final = {
    "exclusive_minimum": 0,
    "exclusive_maximum": 1,
    "max_levels": MAX_LEVELS,
    "unique": True,
}


def extract_predict(obj: Any, *, max_rows: int) -> tuple[list[Any], tuple[float, ...] | None]:
    """Return the rows and the ``quantiles`` levels of a /predict body (None when absent)."""
    problems = Problems()
    levels = quantile_levels(obj, problems) if isinstance(obj, dict) else None
    try:
        rows = extract_rows(obj, max_rows=max_rows, optional=("quantiles",), problems=problems)
    except ApiError as exc:
        if any(item["loc"][:1] == ["quantiles"] for item in problems.items):
            exc.extra["allowed"] = {"quantiles": ALLOWED_QUANTILES}
        raise
    return rows, levels


def quantile_levels(obj: dict[str, Any], problems: Problems) -> tuple[float, ...] | None:
    """Check ``obj["quantiles"]`` element by element; each problem names ``quantiles[i]``.

    Strict: a level is a JSON number (not a string, not a boolean) in (0, 1), listed once.
    """
    if "quantiles" not in obj:
        return None
    value = obj["quantiles"]
    if not isinstance(value, list) or not value:
        kind = "list_type" if not isinstance(value, list) else "too_short"
        problems.add(["quantiles"], kind, f"quantiles must be {QUANTILE_RULE}")
        return None
    before = len(problems.items)
    seen: dict[float, int] = {}
    for i, level in enumerate(value):
        number = isinstance(level, int | float) and not isinstance(level, bool)
        if not number or not 0.0 < float(level) < 1.0:
            message = "must be a JSON number strictly between 0 and 1 (not 0, 1 or a string)"
            problems.add(["quantiles", i], "quantile_level", f"quantiles[{i}] {message}")
        elif float(level) in seen:
            first = seen[float(level)]
            problems.add(
                ["quantiles", i],
                "duplicate_level",
                f"quantiles[{i}] repeats quantiles[{first}]; each level may appear once",
            )
        else:
            seen[float(level)] = i
    if len(value) > MAX_LEVELS:
        problems.add(
            ["quantiles", MAX_LEVELS],
            "too_many_levels",
            f"quantiles holds {len(value)} levels; at most {MAX_LEVELS} are allowed",
        )
    if len(problems.items) > before:
        return None
    return check_levels(value)  # the core's own rule, the same as the checks above


def check_quantiles_served(
    batch: RowBatch, calibration: QuantileCalibration | None, domain: ServingDomain
) -> None:
    """409 when the request asks for quantiles the serving model version cannot give."""
    if not batch.levels:
        return
    if calibration is None:
        cause = "its bundle has no quantile calibration (trained before quantiles existed)"
    elif batch.date and (max(batch.date) - domain.history_end).days > calibration.horizon:
        cause = f"its quantile calibration covers horizon days 1..{calibration.horizon} only"
    else:
        return
    message = (
        f"this model version serves no quantiles for this request: {cause}; send the request "
        "without quantiles for point forecasts, or deploy a bundle trained with them"
    )
    raise ApiError(
        409,
        message,
        error="quantiles_unavailable",
        detail=[error_item(["quantiles"], "quantiles_unavailable", message)],
    )
