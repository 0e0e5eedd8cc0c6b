"""The predict service: a /predict body -> validated rows -> one model call -> JSON bytes.

One code path for POST /api/v1/predict (a request alone or micro-batched with others, see
:mod:`retail_forecast.api.runtime.batching`), the parity tests and ``bench/api_overhead.py``.
Every predictor's answer passes :func:`~retail_forecast.inference.postprocess.checked_frame`
once here, whatever the backend (local, SageMaker, a test double).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.api.deps import ServiceState
from retail_forecast.api.explain_request import (
    can_explain,
    check_explain_served,
    explanation_tails,
    extract_predict_body,
)
from retail_forecast.api.jsonbody import parse_json_body
from retail_forecast.api.quantile_request import check_quantiles_served
from retail_forecast.api.runtime.recorder import ServedForecasts
from retail_forecast.api.schemas import PredictRow
from retail_forecast.api.validation import (
    Problems,
    RowBatch,
    check_domain,
    check_duplicates,
    check_horizon_prefix,
    raise_if_any,
    validate_types,
)
from retail_forecast.features.calendar import from_ordinals
from retail_forecast.features.keys import family_dtype
from retail_forecast.inference.postprocess import checked_frame
from retail_forecast.inference.predictor import Predictor, ServingDomain, served_calibration
from retail_forecast.models.quantiles import QuantileCalibration, zero_rows
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE

logger = logging.getLogger(__name__)

Bands = npt.NDArray[np.float64]  # (rows, levels): a request's quantiles, in its level order
Answer = tuple[bytes, ServedForecasts]  # the JSON body, and what monitoring logs about it


@dataclass(frozen=True)
class PredictJob:
    """One /predict body waiting for a micro-batch (see :func:`answer_batch`)."""

    body: bytes
    predictor: Predictor
    max_rows: int


async def serve_request(
    state: ServiceState,
    predictor: Predictor,
    body: bytes,
    *,
    deadline: float,
    received: dt.datetime,
) -> bytes:
    """Answer one request body in the bounded pool; hand what was served to monitoring.

    Parsing, validation and the model all run in the pool, never on the event loop. Small
    bodies (``api.micro_batch_body_bytes``) that arrive together are answered by one model
    call (``api.micro_batch_requests``). ``received``: when the request arrived (logged).
    """
    api = state.settings.api
    if api.micro_batch_requests and len(body) <= api.micro_batch_body_bytes:
        job = PredictJob(body, predictor, api.max_rows)
        content, served = await state.batcher("predict", answer_batch).submit(
            job, deadline=deadline
        )
    else:
        work = functools.partial(
            answer_and_record, body, predictor=predictor, max_rows=api.max_rows
        )
        content, served = await state.run(work, deadline=deadline)
    # Only answered forecasts are logged, by the writer thread (an O(1) hand-over here).
    state.recorder.record_predictions(replace(served, request_time=received))
    return content


def answer_predict(body: bytes, *, predictor: Predictor, max_rows: int) -> bytes:
    """Answer the whole request synchronously: parse -> validate -> predict -> JSON bytes."""
    return answer_and_record(body, predictor=predictor, max_rows=max_rows)[0]


def answer_and_record(body: bytes, *, predictor: Predictor, max_rows: int) -> Answer:
    """Answer like :func:`answer_predict`; also return what monitoring logs about it."""
    domain = predictor.domain  # one snapshot for the whole request
    calibration = served_calibration(predictor)
    batch = validated_rows(
        body,
        domain=domain,
        max_rows=max_rows,
        calibration=calibration,
        explainable=can_explain(predictor),
    )
    return answer_validated([batch], predictor, domain)[0]


def answer_batch(jobs: Sequence[PredictJob]) -> list[Answer | Exception]:
    """Answer several requests together: one outcome per job, in order (MicroBatcher's call).

    Each body is validated on its own (a bad one gets its own 4xx); the valid ones share one
    domain snapshot and one model call per group of requests with no series in common (two
    requests for the same series would share its recursion). When a shared call fails, each
    request of the group is answered alone, so one culprit does not fail the others. The jobs
    come from one worker, whose predictor is set once, when it becomes ready.
    """
    predictor = jobs[0].predictor
    domain = predictor.domain
    calibration = served_calibration(predictor)
    explainable = can_explain(predictor)
    outcomes: list[Answer | Exception] = [RuntimeError("unanswered")] * len(jobs)
    valid: list[tuple[int, RowBatch]] = []
    for i, job in enumerate(jobs):
        try:
            batch = validated_rows(
                job.body,
                domain=domain,
                max_rows=job.max_rows,
                calibration=calibration,
                explainable=explainable,
            )
            valid.append((i, batch))
        except Exception as exc:  # the job's own answer (ApiError: its 4xx)
            outcomes[i] = exc
    for group in _disjoint_series(valid):
        answers = _answer_group([batch for _, batch in group], predictor, domain)
        for (i, _), answer in zip(group, answers, strict=True):
            outcomes[i] = answer
    return outcomes


def validated_rows(
    body: bytes,
    *,
    domain: ServingDomain,
    max_rows: int,
    calibration: QuantileCalibration | None = None,
    explainable: bool = False,
) -> RowBatch:
    """Parse and validate a /predict body against ``domain``; ApiError (4xx) names every field.

    ``calibration``: the serving model's (None: a request naming quantiles gets a 409);
    ``explainable``: whether the backend explains (False: a request with explain gets a 409).
    """
    rows, levels, explain = extract_predict_body(parse_json_body(body), max_rows=max_rows)
    problems = Problems()
    batch = validate_types(rows, PredictRow, problems)
    check_domain(batch, domain, problems)
    check_duplicates(batch, problems)
    check_horizon_prefix(batch, domain, problems)
    raise_if_any(problems, domain, len(rows))
    batch.levels = levels
    batch.explain = explain
    check_quantiles_served(batch, calibration, domain)
    check_explain_served(batch, explainable=explainable)
    return batch


def answer_validated(
    batches: Sequence[RowBatch], predictor: Predictor, domain: ServingDomain
) -> list[Answer]:
    """Forecast validated requests in one model call; render each in its own request order.

    The quantiles of every request that asks for them come from one vectorised calibration
    call over the points just forecast (:func:`quantile_batches`); the explanations of a
    request that asks for them come from its own TreeSHAP call (:func:`_explanations`).
    """
    forecasts = forecast_batches(batches, predictor, domain=domain)
    bands = quantile_batches(batches, forecasts, served_calibration(predictor), domain)
    version = predictor.model_version
    answered = dt.datetime.now(dt.UTC)
    return [
        (
            render_predictions(
                batch, sales, models, version, band, _explanations(batch, models, predictor, domain)
            ),
            ServedForecasts(
                model_version=version,
                history_end=domain.history_end,
                request_time=answered,
                dates=batch.date,
                stores=batch.store_nbr,
                families=batch.family,
                sales=sales,
                models=models,
                quantiles=_logged_quantiles(batch.levels, band),
            ),
        )
        for batch, (sales, models), band in zip(batches, forecasts, bands, strict=True)
    ]


def quantile_batches(
    batches: Sequence[RowBatch],
    forecasts: Sequence[tuple[list[float], list[str]]],
    calibration: QuantileCalibration | None,
    domain: ServingDomain,
) -> list[Bands | None]:
    """Quantiles of the batches that ask for them: one calibration call over all their rows.

    The levels are the union of the requests' (each request then takes its own columns, in
    its order); the horizon day is ``date - history_end`` of the request's domain snapshot;
    closed (a yearly closure or ``open`` 0) and zero-rule rows are 0 at every level.
    """
    out: list[Bands | None] = [None] * len(batches)
    wanted = [i for i, batch in enumerate(batches) if batch.levels]
    if not wanted:
        return out
    if calibration is None:  # validated_rows refuses such requests (409) before the model
        raise RuntimeError("quantiles requested from a predictor without a calibration")
    levels = sorted({level for i in wanted for level in batches[i].levels or ()})
    point = np.concatenate([np.asarray(forecasts[i][0], dtype=np.float64) for i in wanted])
    labels = np.concatenate([np.asarray(forecasts[i][1], dtype=object) for i in wanted])
    end = domain.history_end.toordinal()
    days = np.fromiter(
        (day.toordinal() - end for i in wanted for day in batches[i].date), np.int64, point.size
    )
    values = calibration.quantiles(point, days, levels, zero=zero_rows(point, labels))
    column = {level: j for j, level in enumerate(levels)}
    start = 0
    for i in wanted:
        size = len(batches[i].date)
        out[i] = values[start : start + size, [column[level] for level in batches[i].levels or ()]]
        start += size
    return out


def _explanations(
    batch: RowBatch, models: list[str], predictor: Predictor, domain: ServingDomain
) -> list[str] | None:
    """Return the rows' ``"explanation"`` tails when the request asks for them, else None."""
    if not batch.explain:
        return None
    positions = list(range(len(batch.date)))
    frame = model_rows([(batch, k) for k in positions], domain)
    return explanation_tails(models, positions, frame, predictor, domain)


def _logged_quantiles(
    levels: tuple[float, ...] | None, band: Bands | None
) -> dict[float, list[float]] | None:
    """Return what the prediction log stores: level -> values aligned with the rows."""
    if not levels or band is None:
        return None
    return {level: band[:, j].tolist() for j, level in enumerate(levels)}


def forecast_batches(
    batches: Sequence[RowBatch], predictor: Predictor, *, domain: ServingDomain
) -> list[tuple[list[float], list[str]]]:
    """Send every row of all ``batches`` in one call; closed days are answered 0 here.

    A closed row (``open`` 0, or one of the bundle's yearly closures) is sent with
    ``is_closed`` True, so the recursion reads it as a closure (not a demand of 0) on the
    series' later days, as the batch forecast does, and is answered 0 with the model "closed"
    here, whatever the predictor gives it. ``domain``: the request's snapshot (not read again
    here). Returns (sales, model) lists per batch, in its row order.
    """
    results = [([0.0] * len(batch.date), ["closed"] * len(batch.date)) for batch in batches]
    picked = [(batch, k) for batch in batches for k in range(len(batch.date))]
    if not picked:
        return results
    frame = model_rows(picked, domain)
    sales, labels = checked_frame(predictor.predict(frame), len(picked))
    predicted: list[float] = sales.tolist()
    model_col: list[str] = labels.tolist()
    closed = frame[IS_CLOSED].tolist() if IS_CLOSED in frame.columns else [False] * len(picked)
    j = 0
    for batch, (batch_sales, batch_models) in zip(batches, results, strict=True):
        for k in range(len(batch.date)):
            if not closed[j]:  # a closed row keeps its 0 and "closed"
                batch_sales[k], batch_models[k] = predicted[j], model_col[j]
            j += 1
    return results


def model_rows(picked: Sequence[tuple[RowBatch, int]], domain: ServingDomain) -> pd.DataFrame:
    """Build the predictor's input frame (canonical dtypes): row ``k`` of each picked batch.

    The ``is_closed`` column is added only when a row is closed (``open`` 0, or a yearly
    closure of the bundle without ``open`` 1: RowBatch.is_closed), so a request without
    closures reaches the models as it is.
    """
    dtype, code = family_dtype(domain.families)  # validated: every family is known
    frame = pd.DataFrame(
        {
            DATE: from_ordinals([batch.date[k].toordinal() for batch, k in picked]),
            STORE: np.array([batch.store_nbr[k] for batch, k in picked], dtype=np.int64),
            FAMILY: pd.Categorical.from_codes(
                [code[batch.family[k]] for batch, k in picked], dtype=dtype
            ),
            PROMO: np.array([batch.onpromotion[k] for batch, k in picked], dtype=np.int64),
        }
    )
    yearly = domain.closures
    if any(yearly.is_closed(day) for day in domain.window()):  # 16 dates, not every row
        closed = np.array([batch.is_closed(k, yearly) for batch, k in picked], dtype=np.bool_)
    else:
        closed = np.array([batch.closed[k] for batch, k in picked], dtype=np.bool_)
    if closed.any():
        frame[IS_CLOSED] = closed
    return frame


def _answer_group(
    batches: list[RowBatch], predictor: Predictor, domain: ServingDomain
) -> list[Answer | Exception]:
    try:
        return list(answer_validated(batches, predictor, domain))
    except Exception as exc:
        if len(batches) == 1:
            return [exc]
        logger.info("a micro-batch of %d requests failed; answering them one by one", len(batches))
        return [_answer_group([batch], predictor, domain)[0] for batch in batches]


def _disjoint_series(
    valid: list[tuple[int, RowBatch]],
) -> list[list[tuple[int, RowBatch]]]:
    """Greedy groups of requests that share no (store_nbr, family) series, in order."""
    groups: list[tuple[set[tuple[int, str]], list[tuple[int, RowBatch]]]] = []
    for item in valid:
        series = set(zip(item[1].store_nbr, item[1].family, strict=True))
        for seen, members in groups:
            if seen.isdisjoint(series):
                seen |= series
                members.append(item)
                break
        else:
            groups.append((series, [item]))
    return [members for _, members in groups]


def render_predictions(
    batch: RowBatch,
    sales: list[float],
    models: list[str],
    model_version: str,
    band: Bands | None = None,
    explained: list[str] | None = None,
) -> bytes:
    """Serialize in request order; every value was validated or checked, so a template is safe.

    Families come from the bundle's set and models from MODEL_NAMES; sales and quantiles are
    finite floats (``repr`` is valid JSON for those). A template is much faster than json.dumps
    of one dict per row on a full-domain request (bench/api_overhead.py). ``band``: the rows'
    quantiles at ``batch.levels`` (a ``"quantiles"`` object per row); None: the point-only
    answer, byte for byte as before quantiles existed. ``explained``: each row's
    ``"explanation"`` tail (:mod:`retail_forecast.api.explain_request`); None: none.
    """
    iso: dict[dt.date, str] = {}
    fam: dict[str, str] = {}
    tails = _quantile_tails(batch.levels, band) if band is not None else None
    parts: list[str] = []
    for k in range(len(batch.index)):
        day, family = batch.date[k], batch.family[k]
        date_text = iso.get(day) or iso.setdefault(day, day.isoformat())
        family_json = fam.get(family) or fam.setdefault(family, json.dumps(family))
        ident = "" if batch.id[k] is None else f'"id": {int(batch.id[k] or 0)}, '
        closed = "true" if models[k] == "closed" else "false"
        tail = "" if tails is None else tails[k]
        if explained is not None:
            tail += explained[k]
        parts.append(
            f'{{{ident}"date": "{date_text}", "store_nbr": {int(batch.store_nbr[k])}, '
            f'"family": {family_json}, "sales": {float(sales[k])!r}, "model": "{models[k]}", '
            f'"closed": {closed}{tail}}}'
        )
    head = json.dumps(model_version)
    return f'{{"model_version": {head}, "predictions": [{", ".join(parts)}]}}'.encode()


def _quantile_tails(levels: tuple[float, ...] | None, band: Bands) -> list[str]:
    """``, "quantiles": {"0.1": 3.2, ...}`` per row; keys are the levels' shortest repr."""
    keys = [json.dumps(repr(float(level))) for level in levels or ()]
    return [
        ', "quantiles": {'
        + ", ".join(f"{key}: {value!r}" for key, value in zip(keys, row, strict=True))
        + "}"
        for row in band.tolist()
    ]
