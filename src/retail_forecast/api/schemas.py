"""Request and response models of the HTTP API (strict: no coercion, no extra fields)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any, Final, Literal, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from retail_forecast.config import ActualsConfig
from retail_forecast.models.quantiles import MAX_LEVELS
from retail_forecast.storage.plausibility import MAX_SALES, SpikeRule

INT64_MAX: Final = 2**63 - 1
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_iso_date(value: object) -> dt.date:
    """Accept only a ``YYYY-MM-DD`` string naming a real calendar day."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be an ISO date string YYYY-MM-DD")
    return _parse_iso_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_iso_text(value: str) -> dt.date:
    # A request repeats its window's dates thousands of times; only 10-character strings get here.
    if _ISO_DATE.fullmatch(value) is None:
        raise ValueError("must be an ISO date string YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date YYYY-MM-DD") from None


IsoDate = Annotated[dt.date, BeforeValidator(parse_iso_date)]
RowId = Annotated[int, Field(ge=0, le=INT64_MAX)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # an optional integer, never null: state no null default


class StrictModel(BaseModel):
    """Strict types (``"1"``, ``1.0`` and ``true`` are not integers) and no extra fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


# Rows are TypedDicts, not models: validating 28,512 rows is ~3x faster (measured) and the
# JSON schema is the same (strict, additionalProperties false).
_ROW_CONFIG: Final = ConfigDict(strict=True, extra="forbid")
Family = Annotated[str, Field(max_length=64, description="A product family of the bundle.")]
Store = Annotated[int, Field(description="A store of the serving bundle.")]
Promo = Annotated[int, Field(ge=0, description="Items of the family on promotion that day.")]
OPEN_VALUES: Final = (0, 1)
OpenFlag = Annotated[
    int,
    Field(
        ge=0,
        le=1,
        json_schema_extra={"enum": list(OPEN_VALUES)},
        description=(
            "1 (the default when absent): the store is open that day. 0: the data set closes"
            " the store that day (like test.csv's open column): the row is answered sales 0,"
            ' model "closed", closed true, and later days of the series read it as a closure,'
            " not a demand of 0. On /actuals an open 0 row must have sales 0."
        ),
    ),
]


class PredictRow(TypedDict):
    """One row to forecast, shaped like a row of Kaggle's test.csv."""

    __pydantic_config__ = _ROW_CONFIG  # type: ignore[misc]
    id: NotRequired[RowId]
    date: Annotated[IsoDate, Field(description="A day of the forecast window.")]
    store_nbr: Store
    family: Family
    onpromotion: Promo
    open: NotRequired[OpenFlag]


Sales = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_SALES,
        allow_inf_nan=False,
        description=(
            f"Observed sales, 0 to {MAX_SALES:g} (the hard ceiling). Above the series' own bound"
            " (x-spike-rule: factor x max(its highest sales in the stored history, floor)) the"
            " row needs confirm_spike: true; x-plausible-maximum is accepted for every series."
        ),
    ),
]
ConfirmSpike = Annotated[
    bool,
    Field(
        description=(
            "true: the sales value is real although it is far above the series' history (a"
            " store opening, a bulk order); without it such a value is refused (422)."
        )
    ),
]
Correction = Annotated[
    bool,
    Field(
        description=(
            "true: replace a different stored actual of this (date, store_nbr, family) in the"
            " history and the prediction log, audited (old and new value, time, request id);"
            " without it a different value is a conflict (409). Only days of the stored history"
            " window can be corrected."
        )
    ),
]


class ActualsRow(TypedDict):
    """One observed day of one series."""

    __pydantic_config__ = _ROW_CONFIG  # type: ignore[misc]
    date: IsoDate
    store_nbr: Store
    family: Family
    onpromotion: Promo
    sales: Sales
    open: NotRequired[OpenFlag]
    confirm_spike: NotRequired[ConfirmSpike]
    correction: NotRequired[Correction]


QuantileLevel = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
QUANTILES_REQUEST: Final = (
    f"Optional: 1 to {MAX_LEVELS} distinct levels, each a JSON number strictly between 0 and 1"
    " (e.g. [0.1, 0.5, 0.9]; M5's nine: 0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975,"
    " 0.995). Each prediction then carries its quantiles at these levels. Left out, the answer"
    " is point forecasts only. A model version without a quantile calibration answers 409."
)
QUANTILES_RESPONSE: Final = (
    "Only when the request named quantiles: level -> quantile of that day's sales, in the"
    ' request\'s order. Keys are the levels as shortest decimal strings ("0.1", "0.975").'
    " Values are >= 0 and never decrease as the level grows; 0 at every level on a closed day"
    ' and for the dead-series rule (model "closed" or "zero_rule").'
)


EXPLAIN_REQUEST: Final = (
    "Optional JSON boolean (default false; 1, 0 or a string are refused). true: each prediction"
    " also carries an explanation: the tree model's (XGBoost) exact TreeSHAP contributions in"
    " log1p space on the feature row the served recursion predicted that day (the 8 largest by"
    " absolute value, the bias, and the sum of the others), the hybrid's XGBoost weight, and a"
    " note that the LSTM part is not explained. Closed and zero-rule rows carry the reason"
    " instead. Only the local backend explains: another backend answers 409 explain_unavailable."
)
EXPLANATION_RESPONSE: Final = (
    "Only when the request said explain: true. explained true: bias + the contributions +"
    " other = tree_log1p (up to float32 rounding), the tree model's log1p prediction of that"
    " day; the hybrid serves expm1(xgboost_weight * max(tree_log1p, 0) + lstm_weight *"
    " log1p(lstm)). explained false: reason says why no model ran (closed, zero_rule)."
)


class FeatureContribution(BaseModel):
    feature: str = Field(description="A feature of the tree model (models/explain.py).")
    value: float | None = Field(
        description="The feature's value in the row (log1p sales for lags and means; category"
        " codes for store_nbr and family)."
    )
    contribution: float | None = Field(description="Its TreeSHAP value, in log1p space.")


class Explanation(BaseModel):
    explained: bool
    reason: str | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    tree_log1p: float | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    bias: float | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    contributions: list[FeatureContribution] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )
    other: float | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    xgboost_weight: float | SkipJsonSchema[None] = Field(
        default=None, ge=0, le=1, json_schema_extra=_no_default
    )
    lstm_weight: float | SkipJsonSchema[None] = Field(
        default=None, ge=0, le=1, json_schema_extra=_no_default
    )
    note: str | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)


def _quantiles_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # optional, never null
    schema["uniqueItems"] = True


class PredictRequest(StrictModel):
    rows: list[PredictRow] = Field(min_length=1)
    quantiles: (
        Annotated[list[QuantileLevel], Field(min_length=1, max_length=MAX_LEVELS)]
        | SkipJsonSchema[None]
    ) = Field(default=None, description=QUANTILES_REQUEST, json_schema_extra=_quantiles_schema)
    explain: bool = Field(default=False, description=EXPLAIN_REQUEST)


class ActualsRequest(StrictModel):
    rows: list[ActualsRow] = Field(min_length=1)


ModelLiteral = Literal["hybrid", "xgboost", "lstm", "zero_rule", "closed"]


class Prediction(BaseModel):
    id: RowId | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    date: dt.date
    store_nbr: int
    family: str
    sales: float = Field(ge=0)
    model: ModelLiteral
    closed: bool = False
    quantiles: dict[str, Annotated[float, Field(ge=0)]] | SkipJsonSchema[None] = Field(
        default=None, description=QUANTILES_RESPONSE, json_schema_extra=_no_default
    )
    explanation: Explanation | SkipJsonSchema[None] = Field(
        default=None, description=EXPLANATION_RESPONSE, json_schema_extra=_no_default
    )


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[Prediction]


class ActualsResponse(BaseModel):
    model_version: str
    received: int
    appended: int = Field(
        description="Rows that changed the history: new actuals and corrected values."
    )
    history_end: dt.date


def state_sales_bounds(components: dict[str, Any], config: ActualsConfig) -> None:
    """Publish the plausibility rule of ``ActualsRow.sales`` in an OpenAPI schema's components.

    ``maximum`` (the hard ceiling) is in the static schema; ``x-plausible-maximum`` is the
    largest value every series accepts without ``confirm_spike`` (factor x floor), so a client
    or a fuzzer can produce actuals the service accepts.
    """
    rule = SpikeRule.from_config(config)
    sales = components["ActualsRow"]["properties"]["sales"]
    sales["x-plausible-maximum"] = rule.lowest_bound
    sales["x-spike-rule"] = {"factor": rule.factor, "floor": rule.floor}


class ErrorItem(BaseModel):
    loc: list[str | int]
    field: str
    type: str
    msg: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a machine-readable ``error`` code plus a message; never the input."""

    error: str
    message: str
    request_id: str | None = None
    detail: list[ErrorItem] | SkipJsonSchema[None] = None
    bad_rows: list[int] | SkipJsonSchema[None] = None
    missing_rows: list[dict[str, Any]] | SkipJsonSchema[None] = None
    allowed: dict[str, Any] | SkipJsonSchema[None] = None


class HealthResponse(BaseModel):
    status: Literal["ok", "failed"]


class ReadyResponse(BaseModel):
    status: Literal["loading", "ready", "degraded", "failed"]  # degraded: 200, see /ready
    model_version: str | None = None
    reason: str | None = None


class DomainResponse(BaseModel):
    stores: list[int]
    families: list[str]
    history_end: dt.date
    first_date: dt.date
    last_date: dt.date
    horizon: int
    onpromotion_cap: int


class ModelsResponse(BaseModel):
    model_version: str
    domain: DomainResponse
    details: dict[str, Any]
