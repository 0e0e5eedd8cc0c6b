"""DaskXGBForecaster: XGBForecaster's fit and forecast run on a Dask cluster.

The fit: the frame is split by series (distributed/partitions.py), each partition builds its
training rows with ``XGBForecaster.training_rows`` (the FeatureBuilder of the local engine,
``map_partitions``), and ``xgboost.dask`` trains on them (``DaskQuantileDMatrix``) with the
local engine's parameters, early stopping, refit and round count. Only the histogram bins
differ: the distributed sketch merges per-worker quantiles, so the trees are close to the
local engine's, not identical. The forecast: the recent history's series are split in blocks
and each block runs the local recursion (``XGBForecaster.panel_sales``) on a worker.

The fitted model is an XGBForecaster: ``save`` writes the same files, which load without Dask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from retail_forecast.closed_days import infer_yearly_closures
from retail_forecast.config import FeatureConfig, XGBoostConfig
from retail_forecast.distributed.cluster import DaskEngine, guarded
from retail_forecast.distributed.parquet_input import (
    check_span,
    check_whole_series,
    partition_keys,
)
from retail_forecast.distributed.partitions import (
    panel_block,
    partition_count,
    partitioned_frame,
    series_blocks,
)
from retail_forecast.errors import UnknownSeriesError
from retail_forecast.features.builder import FeatureBuilder, Panel, panel_from_frame
from retail_forecast.features.keys import series_keys
from retail_forecast.models.xgboost import FloatArray, XGBForecaster
from retail_forecast.schema import DATE, FAMILY, ID, IS_CLOSED, STORE, TARGET

if TYPE_CHECKING:
    import dask.dataframe as dd

LABEL = "_label"
VALID = "_valid"


class DaskXGBForecaster(XGBForecaster):
    """An XGBForecaster whose fit and forecasts run on ``engine``'s cluster."""

    def __init__(
        self,
        config: XGBoostConfig,
        features: FeatureConfig | None = None,
        *,
        horizon: int,
        holidays: pd.DataFrame | None = None,
        engine: DaskEngine,
    ) -> None:
        super().__init__(config, features, horizon=horizon, holidays=holidays)
        self.engine = engine

    @classmethod
    def from_fitted(cls, model: XGBForecaster, engine: DaskEngine) -> DaskXGBForecaster:
        """Wrap a fitted (e.g. loaded) model so its forecasts run on the cluster."""
        out = cls(model.config, model.features, horizon=model.horizon, engine=engine)
        out.builder_, out.booster_, out.origin_ = model.builder_, model.booster_, model.origin_
        return out

    def local_model(self) -> XGBForecaster:
        """Return a plain XGBForecaster of the same settings and fit: what workers run."""
        local = XGBForecaster(self.config, self.features, horizon=self.horizon)
        if hasattr(self, "booster_"):
            local.builder_, local.booster_ = self._fitted()
            local.origin_ = self.origin_
        return local

    def fit(self, history: pd.DataFrame) -> DaskXGBForecaster:
        """Train on the cluster from the canonical frame up to the origin (its last day)."""
        builder = self.feature_builder(history)
        n_series = int(history.groupby([STORE, FAMILY], observed=True).ngroups)
        n_parts = partition_count(n_series, len(history), len(self.engine.workers()))
        with guarded(self.engine, "the XGBoost fit"):
            frame = partitioned_frame(history, n_parts, self.engine.client)
            self._fit_frame(frame, builder, pd.Timestamp(history[DATE].max()))
        return self

    def fit_parts(self, frame: dd.DataFrame) -> DaskXGBForecaster:
        """Train from a lazily read whole-series dataset (distributed/parquet_input.py).

        The driver sees only each partition's series keys and days, never the rows.
        """
        with guarded(self.engine, "the XGBoost fit"):
            keys = partition_keys(frame)
            check_whole_series(keys)
            _, last = check_span(frame)
            # every series closed that day: the least is_closed of the day is 1
            flags = frame.assign(**{IS_CLOSED: frame[IS_CLOSED].astype("int8")})
            shut = flags.groupby(DATE)[IS_CLOSED].min().compute().sort_index()
            yearly = infer_yearly_closures(shut.to_numpy() == 1, shut.index.to_numpy())
            self._fit_frame(frame, self.feature_builder(keys, yearly_closures=yearly), last)
        return self

    def _fit_frame(
        self, frame: dd.DataFrame, builder: FeatureBuilder, origin: pd.Timestamp
    ) -> None:
        """Build each partition's training rows on its worker and train on them."""
        parts = training_parts(self.engine, frame, self.local_model(), builder, self.config)
        started = time.perf_counter()
        booster = dask_train(self.engine, self.params(), self.config, parts, builder)
        booster.set_param({"nthread": self.config.nthread})  # local predictions, as load() does
        self.set_fitted(
            builder,
            booster,
            origin=origin,
            seconds=time.perf_counter() - started,
            rows=parts.counts,
        )

    def predict_parts(self, frame: dd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """``predict`` from a whole-series Dask frame: each partition forecasts its own series."""
        from dask.delayed import delayed

        window = self.history_days
        origin = self.origin_
        with guarded(self.engine, "the XGBoost forecast"):
            recent = frame[frame[DATE] > origin - pd.Timedelta(days=window)]
            parts = recent.map_partitions(
                _parts_sales,
                self.local_model(),
                delayed(future, pure=True),
                meta=future.head(0).assign(**{TARGET: np.zeros(0)}),
                align_dataframes=False,
            ).compute()
        out = future.merge(parts[[ID, TARGET]], on=ID, how="left", validate="one_to_one")
        if out[TARGET].isna().any():
            first = out[out[TARGET].isna()].iloc[0]
            raise UnknownSeriesError(
                f"store_nbr={first[STORE]}, family={first[FAMILY]!r} has no history"
            )
        return out

    def panel_sales(self, panel: Panel, future: pd.DataFrame) -> FloatArray:
        """Run the local :meth:`XGBForecaster.panel_sales`, one block of series a task."""
        builder, _ = self._fitted()
        n_parts = min(panel.n_series, len(self.engine.workers()))
        known = pd.Index(series_keys(panel.keys, builder.families))
        where = known.get_indexer(pd.Index(series_keys(future, builder.families)))
        if n_parts <= 1 or (where < 0).any():  # unknown series: the local engine's error
            return super().panel_sales(panel, future)
        part = series_blocks(panel.n_series, n_parts)
        bounds = np.searchsorted(part, np.arange(n_parts + 1))
        row_part = part[where]
        values = np.zeros(len(future))
        client = self.engine.client
        with guarded(self.engine, "the XGBoost forecast"):
            model = client.scatter(self.local_model(), broadcast=True, hash=False)
            jobs = {}
            for p in np.unique(row_part):
                rows = np.flatnonzero(row_part == p)
                block = panel_block(panel, int(bounds[p]), int(bounds[p + 1]))
                jobs[int(p)] = (rows, client.submit(_block_sales, model, block, future.iloc[rows]))
            self.n_dead_zeroed_ = 0
            for rows, job in jobs.values():
                values[rows], dead = job.result()
                self.n_dead_zeroed_ += dead
        return values


def _parts_sales(piece: pd.DataFrame, model: XGBForecaster, future: pd.DataFrame) -> pd.DataFrame:
    """On a worker: the local recursion over one partition's series (their future rows)."""
    if piece.empty:
        return future.head(0).assign(**{TARGET: np.zeros(0)})
    panel = panel_from_frame(piece.reset_index(drop=True))
    keys = panel.keys.astype({FAMILY: str})
    mine = future.merge(keys, on=[STORE, FAMILY], how="inner")
    return mine.assign(**{TARGET: model.panel_sales(panel, mine)})


def _block_sales(model: XGBForecaster, panel: Panel, future: pd.DataFrame) -> tuple[Any, int]:
    """On a worker: the local recursion over one block of series."""
    values = model.panel_sales(panel, future)
    return values, int(getattr(model, "n_dead_zeroed_", 0))


def _rows_meta(builder: FeatureBuilder) -> pd.DataFrame:
    columns: dict[str, Any] = {name: np.zeros(0, np.float32) for name in builder.feature_names}
    return pd.DataFrame({**columns, LABEL: np.zeros(0), VALID: np.zeros(0, np.bool_)})


def _partition_rows(
    piece: pd.DataFrame, model: XGBForecaster, builder: FeatureBuilder
) -> pd.DataFrame:
    """On a worker: one partition's training rows (whole series), as the local fit builds them."""
    if piece.empty:
        return _rows_meta(builder)
    rows = model.training_rows(builder, panel_from_frame(piece.reset_index(drop=True)))
    slice_of = np.zeros(len(rows.y), dtype=np.int8)
    slice_of[rows.train_rows], slice_of[rows.valid_rows] = 1, 2
    kept = np.flatnonzero(slice_of)
    out = pd.DataFrame(rows.x[kept], columns=builder.feature_names)
    out[LABEL] = rows.y[kept]
    out[VALID] = slice_of[kept] == 2
    return out


@dataclass(frozen=True)
class TrainingParts:
    """Persisted features and labels on the workers: all rows, or training and validation."""

    x: dd.DataFrame
    y: dd.Series
    valid_x: dd.DataFrame | None = None
    valid_y: dd.Series | None = None

    @property
    def counts(self) -> tuple[int, int]:
        """(training rows, validation rows)."""
        return len(self.y), 0 if self.valid_y is None else len(self.valid_y)


def training_parts(
    engine: DaskEngine,
    frame: dd.DataFrame,
    model: XGBForecaster,
    builder: FeatureBuilder,
    config: XGBoostConfig,
) -> TrainingParts:
    """Build each partition's rows once and keep only what xgboost reads, persisted together.

    The rows frame itself is never persisted: its features, labels (and the validation split
    when early stopping needs it) are, in one ``persist`` call, so each partition's features
    are built once and no second full-width copy stays on the workers (bench/scale.py: the
    workers' peak memory).
    """
    rows = frame.map_partitions(
        _partition_rows, model, builder, meta=_rows_meta(builder), align_dataframes=False
    )
    names = builder.feature_names
    if config.rounds is not None:  # a known round count: every row trains
        x, y = engine.client.persist([rows[names], rows[LABEL]])
        return TrainingParts(x, y)
    train, valid = rows[~rows[VALID]], rows[rows[VALID]]
    x, y, valid_x, valid_y = engine.client.persist(
        [train[names], train[LABEL], valid[names], valid[LABEL]]
    )
    return TrainingParts(x, y, valid_x, valid_y)


def dask_train(
    engine: DaskEngine,
    params: dict[str, Any],
    config: XGBoostConfig,
    parts: TrainingParts,
    builder: FeatureBuilder,
) -> xgb.Booster:
    """``XGBForecaster._train`` on the cluster: the same rows, rounds and early stopping."""
    import dask.dataframe as dd
    import xgboost.dask as dxgb

    client = engine.client
    params = {k: v for k, v in params.items() if k != "nthread"}  # each worker's own threads

    def matrix(x: dd.DataFrame, y: dd.Series, ref: Any = None) -> Any:
        return dxgb.DaskQuantileDMatrix(
            client,
            x,
            y,
            feature_names=builder.feature_names,
            feature_types=builder.spec.feature_types,
            enable_categorical=True,
            max_bin=config.max_bin,
            ref=ref,
        )

    def train(data: Any, rounds: int, **kwargs: Any) -> xgb.Booster:
        out = dxgb.train(client, params, data, num_boost_round=rounds, verbose_eval=False, **kwargs)
        booster: xgb.Booster = out["booster"]
        return booster

    if config.rounds is not None:  # a known round count: every row (training_parts)
        return train(matrix(parts.x, parts.y), config.rounds)
    if parts.valid_x is None or parts.valid_y is None:
        raise ValueError("early stopping needs the validation rows (training_parts)")
    dtrain = matrix(parts.x, parts.y)
    dvalid = matrix(parts.valid_x, parts.valid_y, ref=dtrain)
    booster = train(
        dtrain,
        config.n_estimators,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=config.early_stopping_rounds,
    )
    best = booster.best_iteration + 1
    if config.refit_full:
        del dtrain, dvalid
        every = dd.concat([parts.x, parts.valid_x]), dd.concat([parts.y, parts.valid_y])
        return train(matrix(*every), best)
    return booster[:best]
