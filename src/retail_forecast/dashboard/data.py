"""What the dashboard reads from the serving predictor: a series' recent days, the model's facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.api.errors import ApiError
from retail_forecast.inference.predictor import (
    MonitoringSource,
    Predictor,
    ServingDomain,
    served_calibration,
)
from retail_forecast.models.blend import BlendWeights
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage.history import HistoryStore

HISTORY_DAYS = 90  # the series view's history: about a quarter, enough to see the weekly shape
BAND_LEVELS = (0.025, 0.1, 0.9, 0.975)  # the 95 % and 80 % central intervals drawn as bands


@dataclass(frozen=True)
class SeriesDays:
    """One series' last days of history (oldest first) and the forecast window's days."""

    store_nbr: int
    family: str
    dates: list[str]
    sales: list[float]
    onpromotion: list[int]
    closed: list[bool]
    window: list[dict[str, Any]]
    promo_value: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_nbr": self.store_nbr,
            "family": self.family,
            "history": {
                "dates": self.dates,
                "sales": self.sales,
                "onpromotion": self.onpromotion,
                "closed": self.closed,
            },
            "window": self.window,
            "promo_value": self.promo_value,
        }


def checked_series(
    domain: ServingDomain, store_nbr: str | None, family: str | None
) -> tuple[int, str]:
    """Return the query's series, or a 422 naming the field and the values it may take."""
    try:
        store = int(store_nbr) if store_nbr is not None and store_nbr.isdigit() else None
    except ValueError:  # a digit string too long for int() is not a store either
        store = None
    if store is None or store not in domain.stores:
        raise ApiError(
            422,
            "store_nbr must be one of the served stores",
            field="store_nbr",
            allowed={"store_nbr": list(domain.stores)},
        )
    if family not in domain.families:
        raise ApiError(
            422,
            "family must be one of the served families",
            field="family",
            allowed={"family": list(domain.families)},
        )
    return store, str(family)


def series_days(
    predictor: Predictor, store: int, family: str, days: int = HISTORY_DAYS
) -> SeriesDays:
    """Return the last ``days`` complete days of one series and the window the API forecasts."""
    frame = _recent_history(predictor, store, family, days)
    promo = frame[PROMO].to_numpy(dtype=np.int64)
    positive = promo[promo > 0]
    # what "promoted" means for this series: its usual count of items on promotion
    promo_value = int(np.median(positive)) if positive.size else 1
    domain = predictor.domain
    return SeriesDays(
        store_nbr=store,
        family=family,
        dates=[d.date().isoformat() for d in pd.to_datetime(frame[DATE])],
        sales=[round(float(v), 4) for v in frame[TARGET].to_numpy(dtype=np.float64)],
        onpromotion=[int(v) for v in promo],
        closed=[bool(v) for v in frame[IS_CLOSED].to_numpy(dtype=np.bool_)],
        window=[
            {"date": d.isoformat(), "closed": domain.closures.is_closed(d)} for d in domain.window()
        ],
        promo_value=max(1, min(promo_value, domain.onpromotion_cap)),
    )


def _recent_history(predictor: Predictor, store: int, family: str, days: int) -> pd.DataFrame:
    history_store = getattr(predictor, "store", None)
    if isinstance(history_store, HistoryStore):  # the local backend: one row of the snapshot
        snapshot = history_store.snapshot()
        row = snapshot.index.get((store, family))
        if row is None:
            return _empty()
        return pd.DataFrame(
            {
                DATE: snapshot.dates[-days:].astype("datetime64[ns]"),
                TARGET: snapshot.sales[row, -days:],
                PROMO: snapshot.onpromotion[row, -days:],
                IS_CLOSED: snapshot.is_closed[row, -days:],
            }
        )
    if isinstance(predictor, MonitoringSource):  # any other backend that shows its history
        frame = predictor.history_frame()
        mine = frame[(frame[STORE] == store) & (frame[FAMILY].astype(str) == family)]
        mine = mine.sort_values(DATE).tail(days)
        if IS_CLOSED not in mine.columns:
            mine = mine.assign(**{IS_CLOSED: False})
        return mine[[DATE, TARGET, PROMO, IS_CLOSED]]
    return _empty()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({DATE: [], TARGET: [], PROMO: [], IS_CLOSED: []})


def band_levels(predictor: Predictor) -> tuple[float, ...]:
    """Return the levels the pages ask for: the bands when the model is calibrated, else none."""
    return BAND_LEVELS if served_calibration(predictor) is not None else ()


def blend_weights(predictor: Predictor) -> dict[str, Any] | None:
    """Return the hybrid's weights (global and per family) when the predictor holds the model."""
    weights = getattr(getattr(predictor, "model", None), "weights", None)
    return weights.to_dict() if isinstance(weights, BlendWeights) else None


def backtest_table(predictor: Predictor) -> tuple[list[str], list[dict[str, Any]]]:
    """Return the backtest RMSLE per fold and the mean: models as columns, one row per fold."""
    metrics = predictor.backtest_metrics() if isinstance(predictor, MonitoringSource) else None
    if not metrics:
        return [], []
    mean = metrics.get("mean") or {}
    models = sorted(mean, key=lambda name: (mean[name] is None, mean[name]))
    rows: list[dict[str, Any]] = []
    for k, fold in enumerate(metrics.get("folds") or [], start=1):
        rmsle = fold.get("rmsle") or {}
        label = f"fold {k}: {fold.get('start', '?')} .. {fold.get('end', '?')}"
        rows.append({"label": label, **{m: rmsle.get(m) for m in models}})
    rows.append({"label": "mean", **{m: mean.get(m) for m in models}})
    return models, rows
