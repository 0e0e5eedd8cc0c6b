"""Request rows -> checked columns: strict types, then the bundle's domain, in one pass."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from retail_forecast.api.errors import ApiError, error_item, safe_loc_part
from retail_forecast.api.schemas import OPEN_VALUES, ActualsRow, PredictRow
from retail_forecast.closed_days import YearlyClosures
from retail_forecast.inference.predictor import ServingDomain
from retail_forecast.storage.plausibility import MAX_SALES, RefusedRowsError

ACTUALS_LOOKBACK_DAYS: Final = 365
MAX_LISTED: Final = 1000
"""At most this many error items / missing rows are listed; ``bad_rows`` lists every index."""
FIELD_RULES: Final = {"open": "must be the integer 0 (closed that day) or 1 (open; the default)"}
"""Messages that name the allowed values where pydantic's own would not (``"0"``, ``true``)."""

_ADAPTERS: Final[dict[type[Any], TypeAdapter[Any]]] = {
    PredictRow: TypeAdapter(list[PredictRow]),
    ActualsRow: TypeAdapter(list[ActualsRow]),
}


@dataclass
class RowBatch:
    """Typed columns of the rows that passed type validation, with their request indices."""

    index: list[int] = field(default_factory=list)
    date: list[dt.date] = field(default_factory=list)
    store_nbr: list[int] = field(default_factory=list)
    family: list[str] = field(default_factory=list)
    onpromotion: list[int] = field(default_factory=list)
    id: list[int | None] = field(default_factory=list)
    sales: list[float] = field(default_factory=list)
    confirm_spike: list[bool] = field(default_factory=list)
    correction: list[bool] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)  # the row says open 0
    opened: list[bool] = field(default_factory=list)  # the row says open 1 (not left out)
    levels: tuple[float, ...] | None = None  # /predict's quantiles; None: point forecasts only
    explain: bool = False  # /predict's explain: per-row tree contributions

    def is_closed(self, k: int, yearly: YearlyClosures) -> bool:
        """Tell whether row ``k`` is closed: ``open`` 0, or a yearly closure without ``open`` 1.

        A planner's explicit opening wins over what the history taught.
        """
        if self.closed[k]:
            return True
        return yearly.is_closed(self.date[k]) and not (self.opened and self.opened[k])

    @classmethod
    def from_rows(cls, parsed: list[dict[str, Any]]) -> RowBatch:
        """Columns straight from validated rows (the fast path: no row failed)."""
        batch = cls(
            index=list(range(len(parsed))),
            date=[r["date"] for r in parsed],
            store_nbr=[r["store_nbr"] for r in parsed],
            family=[r["family"] for r in parsed],
            onpromotion=[r["onpromotion"] for r in parsed],
            id=[r.get("id") for r in parsed],
            closed=[r.get("open") == 0 for r in parsed],
            opened=[r.get("open") == 1 for r in parsed],
        )
        if parsed and "sales" in parsed[0]:
            batch.sales = [r["sales"] for r in parsed]
            batch.confirm_spike = [r.get("confirm_spike", False) for r in parsed]
            batch.correction = [r.get("correction", False) for r in parsed]
        return batch

    def add(self, i: int, values: dict[str, Any]) -> None:
        """Add one raw row whose fields all passed strict validation."""
        day = values["date"]
        self.index.append(i)
        self.date.append(day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)))
        self.store_nbr.append(int(values["store_nbr"]))
        self.family.append(str(values["family"]))
        self.onpromotion.append(int(values["onpromotion"]))
        self.id.append(values.get("id"))
        self.closed.append(values.get("open") == 0)  # validated: absent, 0 or 1
        self.opened.append(values.get("open") == 1)
        if values.get("sales") is not None:
            self.sales.append(float(values["sales"]))
            self.confirm_spike.append(values.get("confirm_spike") is True)
            self.correction.append(values.get("correction") is True)


@dataclass
class Problems:
    items: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)
    missing_rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, loc: list[Any], type_: str, msg: str, *, row: int | None = None) -> None:
        if row is not None:
            self.bad_rows.add(row)
        if len(self.items) < MAX_LISTED:
            self.items.append(error_item(loc, type_, msg))


def allowed_values(domain: ServingDomain) -> dict[str, Any]:
    """Return the valid range or set of every domain-checked field (sent with each 422)."""
    return {
        "store_nbr": list(domain.stores),
        "family": list(domain.families),
        "date": {"min": domain.first_date.isoformat(), "max": domain.last_date.isoformat()},
        "onpromotion": {"min": 0, "max": domain.onpromotion_cap},
        "open": list(OPEN_VALUES),
    }


def refused_rows(
    exc: RefusedRowsError, batch: RowBatch, domain: ServingDomain, n_rows: int
) -> ApiError:
    """Return the 422 of rows the history store refused by rule.

    An implausible value or a correction it cannot apply: each item names its field
    (``rows[3].sales``); ``allowed.sales`` gives each refused value's bound.
    """
    problems = Problems()
    bounds: dict[str, float] = {}
    for problem in exc.problems:
        i = batch.index[problem.position]  # the store was given the batch's rows, in order
        problems.add(["rows", i, problem.field], problem.type, problem.message, row=i)
        if problem.bound is not None:
            bounds[str(i)] = problem.bound
    bad = sorted(problems.bad_rows)
    allowed = allowed_values(domain)
    allowed["sales"] = {"min": 0.0, "max": MAX_SALES, "max_without_confirm_spike": bounds}
    return ApiError(
        422,
        f"{len(bad)} of {n_rows} rows are refused; nothing was stored",
        detail=problems.items,
        bad_rows=bad,
        allowed=allowed,
    )


def extract_rows(
    obj: Any, *, max_rows: int, optional: tuple[str, ...] = (), problems: Problems | None = None
) -> list[Any]:
    """Check the envelope ``{"rows": [...]}``; 413 past ``max_rows`` before row validation.

    ``optional``: other top-level fields the caller checks itself (and adds to ``problems``);
    any other field is refused.
    """
    if not isinstance(obj, dict):
        raise ApiError(
            422,
            'the body must be a JSON object {"rows": [...]}',
            detail=[error_item([], "model_type", "must be an object")],
        )
    problems = problems if problems is not None else Problems()
    known = " and ".join(("rows", *optional))
    only = f"the fields are {known}" if optional else "the only field is rows"
    for key in obj:
        if key != "rows" and key not in optional:
            problems.add([key], "extra_forbidden", f"unknown field; {only}")
    rows: Any = obj.get("rows")
    if rows is None:
        problems.add(["rows"], "missing", "rows is required: an array of 1 or more rows")
    elif not isinstance(rows, list):
        problems.add(["rows"], "list_type", "rows must be an array")
    elif not rows:
        problems.add(["rows"], "too_short", f"rows must hold between 1 and {max_rows} rows")
    if problems.items:
        raise ApiError(422, "the request is invalid", detail=problems.items)
    if len(rows) > max_rows:
        raise ApiError(
            413,
            f"more than {max_rows} rows in one request; split it or use batch forecasting "
            "(retail-forecast forecast)",
            error="too_many_rows",
        )
    return list(rows)


def validate_types(rows: list[Any], model: type[Any], problems: Problems) -> RowBatch:
    """Strict per-field validation; every failing row is listed, the rest are kept."""
    batch = RowBatch()
    try:
        parsed = _ADAPTERS[model].validate_python(rows)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            loc = list(err["loc"])[:2]  # rows are flat: (index, field); drop union-branch tags
            row = loc[0] if loc and isinstance(loc[0], int) else None
            problems.add(["rows", *loc], err["type"], _message(loc, err["msg"]), row=row)
        for i, raw in enumerate(rows):
            if i not in problems.bad_rows:
                batch.add(i, raw)
        return batch
    return RowBatch.from_rows(parsed)


def _message(loc: list[Any], msg: str) -> str:
    field_name = safe_loc_part(loc[1]) if len(loc) > 1 and isinstance(loc[1], str) else "row"
    return f"{field_name}: {FIELD_RULES.get(str(field_name), msg)}"


def check_domain(
    batch: RowBatch, domain: ServingDomain, problems: Problems, *, window: bool = True
) -> None:
    """Store, family, date window and promotion cap, each message naming the allowed values.

    ``window=False`` skips the forecast-window check (actuals may lie in the history).
    """
    stores, families = set(domain.stores), set(domain.families)
    first, last, cap = domain.first_date, domain.last_date, domain.onpromotion_cap
    store_text = _store_text(domain)
    for k, i in enumerate(batch.index):
        if batch.store_nbr[k] not in stores:
            problems.add(
                ["rows", i, "store_nbr"],
                "store_nbr_unknown",
                f"store_nbr must be {store_text}",
                row=i,
            )
        if batch.family[k] not in families:
            problems.add(
                ["rows", i, "family"],
                "family_unknown",
                f"family must be one of the {len(families)} families in allowed.family",
                row=i,
            )
        if window and not first <= batch.date[k] <= last:
            problems.add(
                ["rows", i, "date"],
                "date_out_of_window",
                f"date must be within the forecast window {first} .. {last} "
                f"(the model's {domain.horizon}-day horizon after {domain.history_end})",
                row=i,
            )
        if batch.onpromotion[k] > cap:
            problems.add(
                ["rows", i, "onpromotion"],
                "onpromotion_above_cap",
                f"onpromotion must be between 0 and {cap}",
                row=i,
            )


def actuals_window(domain: ServingDomain) -> tuple[dt.date, dt.date]:
    """Actuals may correct up to a year back and run up to the end of the forecast window."""
    return domain.history_end - dt.timedelta(days=ACTUALS_LOOKBACK_DAYS), domain.last_date


def check_actuals_window(batch: RowBatch, domain: ServingDomain, problems: Problems) -> None:
    first, last = actuals_window(domain)
    for k, i in enumerate(batch.index):
        if not first <= batch.date[k] <= last:
            problems.add(
                ["rows", i, "date"],
                "date_out_of_window",
                f"date must be within {first} .. {last} (history end - 365 days .. + horizon)",
                row=i,
            )


def check_closed_actuals(batch: RowBatch, problems: Problems) -> None:
    """Refuse an actual of a closed day (``open`` 0) with sales: a shut store sells nothing."""
    for k, i in enumerate(batch.index):
        if batch.closed[k] and batch.sales[k] != 0:
            problems.add(
                ["rows", i, "sales"],
                "sales_on_closed_day",
                "sales must be 0 on a closed day (open 0); send open 1 (or no open) if the"
                " store was open",
                row=i,
            )


def _store_text(domain: ServingDomain) -> str:
    if domain.is_contiguous_stores():
        return f"in the range {domain.stores[0]}-{domain.stores[-1]}"
    return f"one of the {len(domain.stores)} stores in allowed.store_nbr"


def check_duplicates(batch: RowBatch, problems: Problems) -> None:
    """Each (date, store_nbr, family) at most once; every repeated row index is listed."""
    keys = list(zip(batch.date, batch.store_nbr, batch.family, strict=True))
    if len(set(keys)) == len(keys):
        return
    seen: dict[tuple[dt.date, int, str], list[int]] = defaultdict(list)
    for k, i in enumerate(batch.index):
        seen[(batch.date[k], batch.store_nbr[k], batch.family[k])].append(i)
    for indices in seen.values():
        if len(indices) > 1:
            for i in indices:
                problems.add(
                    ["rows", i],
                    "duplicate_row",
                    f"(date, store_nbr, family) repeats at rows {indices}",
                    row=i,
                )


def check_horizon_prefix(batch: RowBatch, domain: ServingDomain, problems: Problems) -> None:
    """Require every earlier window day (bar the yearly closures) of a series asked for day d.

    Their promotions drive the recursive forecast; guessing them silently would be wrong. A day
    the data set closes is sent too, with ``open`` 0: the recursion must know it is a closure.
    """
    first, last = domain.first_date, domain.last_date
    dates: dict[tuple[int, str], set[dt.date]] = defaultdict(set)
    for k in range(len(batch.index)):
        if first <= batch.date[k] <= last:
            dates[(batch.store_nbr[k], batch.family[k])].add(batch.date[k])
    window = [d for d in domain.window() if not domain.closures.is_closed(d)]
    count = 0
    for (store, family), present in dates.items():
        latest = max(present)
        needed = [d for d in window if d < latest and d not in present]
        count += len(needed)
        for day in needed:
            if len(problems.missing_rows) < MAX_LISTED:
                problems.missing_rows.append(
                    {"date": day.isoformat(), "store_nbr": store, "family": family}
                )
    if count:
        problems.add(
            ["rows"],
            "missing_horizon_days",
            f"{count} earlier days of requested series are missing (see missing_rows); "
            "send every day from the window start up to the last day of each series",
        )


def raise_if_any(problems: Problems, domain: ServingDomain, n_rows: int) -> None:
    if not problems.items and not problems.missing_rows:
        return
    bad = sorted(problems.bad_rows)
    message = f"{len(bad)} of {n_rows} rows are invalid; nothing was predicted or stored"
    if not bad:
        message = "the request is incomplete; nothing was predicted or stored"
    raise ApiError(
        422,
        message,
        detail=problems.items,
        bad_rows=bad,
        missing_rows=problems.missing_rows or None,
        allowed=allowed_values(domain),
    )
