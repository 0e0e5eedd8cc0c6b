"""XGBForecaster: a global XGBoost model on log1p sales, recursive 16-day forecasts, .ubj files.

Training rows are every (series, day) of the history with all lags known (or of its last
``train_days`` days, or from ``train_start``: a data set's profile),
minus closed days (schema.IS_CLOSED) and, by default, the days before a
series' first sale (store not open yet). The last ``valid_days`` days before the origin are the
early-stopping slice.

Forecasts are recursive: day h's prediction (log1p) is written into the history window and
feeds day h+1's lags and rolling means; each of the 16 steps is one call of a ``TreePredictor``
(models/tree_predictor.py) over all requested series at once. Series without sales in the last
``dead_series_days`` days get 0.
The date feature ``is_national_holiday`` (a default) needs Kaggle's holidays_events table
(``holidays=``); its national holiday dates are stored in ``preprocessor_xgboost.json`` with the
feature spec, so serving needs no table.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from retail_forecast.bundle_contents import recorded_horizon
from retail_forecast.closed_days import YearlyClosures, closed_rows
from retail_forecast.config import FeatureConfig, XGBoostConfig
from retail_forecast.errors import (
    ArtifactError,
    DataValidationError,
    NotFittedError,
    UnknownSeriesError,
)
from retail_forecast.features.builder import (
    FeatureBuilder,
    FeatureSpec,
    Panel,
    panel_from_frame,
    promo_history,
    silent_series,
)
from retail_forecast.features.calendar import days_after, national_holiday_dates
from retail_forecast.features.keys import series_keys
from retail_forecast.models.tree_predictor import TreePredictor, tree_predictor
from retail_forecast.models.tree_shap import TreeShap, tree_shap
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.utils.io import read_json, write_json_atomic

logger = logging.getLogger(__name__)
_TREE_SHAP_LOCK = threading.Lock()  # one build of the TreeSHAP tables per forecaster

MODEL_FILE = Path("xgboost") / "model.ubj"
PREPROCESSOR_FILE = Path("preprocessor_xgboost.json")
FORMAT_VERSION = 1
FloatArray = npt.NDArray[np.float64]


class TrainingRows(NamedTuple):
    """A panel's training matrix: features, log1p target, and the rows each slice uses."""

    x: npt.NDArray[np.float32]
    y: FloatArray
    train_rows: npt.NDArray[np.intp]
    valid_rows: npt.NDArray[np.intp]


class XGBForecaster:
    """Global XGBoost forecaster over all (store_nbr, family) series."""

    def __init__(
        self,
        config: XGBoostConfig,
        features: FeatureConfig | None = None,
        *,
        horizon: int,
        holidays: pd.DataFrame | None = None,
    ) -> None:
        self.config = config
        self.horizon = horizon  # the recursion's longest run: forecast.horizon, or the bundle's
        self.holidays = holidays
        self.features = features if features is not None else FeatureConfig.model_validate({})
        self.serving_trees_: TreePredictor | None = None  # set by prepare_serving
        self.tree_shap_: tuple[TreeShap | None] | None = None  # built by tree_shap()
        self.serving_threads_ = 1  # threads of a large request, and of an explanation

    # --- training -------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> Self:
        """Train on the canonical frame up to the origin (its last day)."""
        builder = self.feature_builder(history)
        panel = panel_from_frame(history)
        rows = self.training_rows(builder, panel)
        started = time.perf_counter()
        booster = self._train(builder, rows.x, rows.y, rows.train_rows, rows.valid_rows)
        self.set_fitted(
            builder,
            booster,
            origin=pd.Timestamp(panel.dates[-1]),
            seconds=time.perf_counter() - started,
            rows=(len(rows.train_rows), len(rows.valid_rows)),
        )
        return self

    def feature_builder(
        self, history: pd.DataFrame, *, yearly_closures: YearlyClosures | None = None
    ) -> FeatureBuilder:
        """Return the builder a fit on ``history`` uses (vocabularies of the whole frame).

        ``yearly_closures``: when ``history`` is not the whole frame (learned from it if None).
        """
        spec = FeatureSpec.from_config(self.features)
        holiday_dates = national_holiday_dates(self.holidays)
        if "is_national_holiday" in spec.date_features and not holiday_dates:
            logger.warning("the features want is_national_holiday but no holidays were given")
        return FeatureBuilder.from_frame(
            history, spec, holiday_dates=holiday_dates, yearly_closures=yearly_closures
        )

    def training_rows(self, builder: FeatureBuilder, panel: Panel) -> TrainingRows:
        """Return the training matrix of ``panel``: features, log1p target, train/valid rows.

        Rows are independent per series, so the rows of a panel split by series are the
        rows of the whole panel, split the same way (the Dask engine builds them per
        partition: retail_forecast/distributed/).
        """
        first_day = self._first_train_day(panel, builder.spec)
        x = builder.panel_features(panel, first_day=first_day)
        y = panel.log_sales[:, first_day:].reshape(-1)
        keep = self._train_mask(panel, first_day)
        n_days = panel.log_sales.shape[1] - first_day
        day_index = np.tile(np.arange(first_day, first_day + n_days), panel.n_series)
        is_valid = day_index >= panel.log_sales.shape[1] - self.config.valid_days
        return TrainingRows(x, y, np.flatnonzero(keep & ~is_valid), np.flatnonzero(keep & is_valid))

    def set_fitted(
        self,
        builder: FeatureBuilder,
        booster: xgb.Booster,
        *,
        origin: pd.Timestamp,
        seconds: float,
        rows: tuple[int, int],
    ) -> None:
        """Record a trained booster and its builder (the state :meth:`save` writes)."""
        self.booster_ = booster
        self.serving_trees_ = None
        self.tree_shap_ = None
        self.fit_seconds_ = seconds
        self.builder_ = builder
        self.n_train_rows_ = rows[0] + rows[1]
        self.origin_ = origin
        logger.info(
            "xgboost fit origin=%s rows=%d valid=%d rounds=%d seconds=%.1f",
            self.origin_.date(),
            rows[0],
            rows[1],
            booster.num_boosted_rounds(),
            seconds,
        )

    def _first_train_day(self, panel: Panel, spec: FeatureSpec) -> int:
        first = spec.lookback
        if self.config.train_days is not None:  # relative to the data's end (the origin)
            first = max(first, len(panel.dates) - self.config.train_days)
        if self.config.train_start is not None:
            start = pd.Timestamp(self.config.train_start)
            first = max(first, int(panel.dates.searchsorted(start)))
        if first >= len(panel.dates) - self.config.valid_days:
            raise DataValidationError(
                f"history of {len(panel.dates)} days is too short to train "
                f"(need > {first + self.config.valid_days})"
            )
        return first

    def _train_mask(self, panel: Panel, first_day: int) -> npt.NDArray[np.bool_]:
        keep = ~panel.closed[:, first_day:]
        if self.config.drop_before_first_sale:
            opened = np.maximum.accumulate(panel.log_sales > 0, axis=1)[:, first_day:]
            keep &= opened
        dates = panel.dates[first_day:]
        for start, end in self.config.exclude_ranges:
            inside = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
            keep &= ~np.asarray(inside, dtype=np.bool_)[None, :]
        return np.asarray(keep.reshape(-1), dtype=np.bool_)

    def params(self) -> dict[str, Any]:
        """XGBoost's training parameters, from the config."""
        c = self.config
        return {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "eta": c.learning_rate,
            "max_depth": c.max_depth,
            "min_child_weight": c.min_child_weight,
            "subsample": c.subsample,
            "colsample_bytree": c.colsample_bytree,
            "max_bin": c.max_bin,
            "max_cat_to_onehot": 1,
            "nthread": c.nthread,
            "seed": c.seed,
            "eval_metric": "rmse",
        }

    def _train(
        self,
        builder: FeatureBuilder,
        x: npt.NDArray[np.float32],
        y: FloatArray,
        train_rows: npt.NDArray[np.intp],
        valid_rows: npt.NDArray[np.intp],
    ) -> xgb.Booster:
        def matrix(rows: npt.NDArray[np.intp]) -> xgb.DMatrix:
            return xgb.DMatrix(
                x[rows],
                label=y[rows],
                feature_names=builder.feature_names,
                feature_types=builder.spec.feature_types,
                enable_categorical=True,
                nthread=self.config.nthread,
            )

        if self.config.rounds is not None:  # a known round count: train on every row
            dall = matrix(np.concatenate([train_rows, valid_rows]))
            return xgb.train(self.params(), dall, num_boost_round=self.config.rounds)
        dtrain, dvalid = matrix(train_rows), matrix(valid_rows)
        booster = xgb.train(
            self.params(),
            dtrain,
            num_boost_round=self.config.n_estimators,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=self.config.early_stopping_rounds,
            verbose_eval=False,
        )
        best = booster.best_iteration + 1
        if self.config.refit_full:
            dall = matrix(np.concatenate([train_rows, valid_rows]))
            return xgb.train(self.params(), dall, num_boost_round=best)
        return booster[:best]

    # --- forecasting ----------------------------------------------------------------------

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """Return ``future`` with a ``sales`` forecast per row (recursive, original scale)."""
        origin = pd.Timestamp(history[DATE].max())
        recent = history[history[DATE] > origin - pd.Timedelta(days=self.history_days)]
        return self.predict_panel(panel_from_frame(recent), future)

    @property
    def history_days(self) -> int:
        """Days of history a forecast reads (the longest feature span or the dead-series rule)."""
        builder, _ = self._fitted()
        return max(builder.spec.lookback, self.config.dead_series_days)

    def predict_panel(self, panel: Panel, future: pd.DataFrame) -> pd.DataFrame:
        """:meth:`predict` from a history already shaped as a :class:`Panel` (serving)."""
        out = future.copy()
        out[TARGET] = self.panel_sales(panel, future)
        return out

    def panel_sales(self, panel: Panel, future: pd.DataFrame) -> FloatArray:
        """Return the ``sales`` column of :meth:`predict_panel` (no frame built)."""
        builder, _ = self._fitted()
        span = self.history_days
        if len(panel.dates) < span:
            raise DataValidationError(f"history needs the last {span} days, got fewer")
        origin = pd.Timestamp(panel.dates[-1])
        steps = _horizon_steps(future, origin, self.horizon)
        row_keys = series_keys(future, builder.families)
        if (row_keys < 0).any():
            builder.encode(future[[STORE, FAMILY]])  # raises: a family unseen in training
        series, row_series = _series_index(series_keys(panel.keys, builder.families), row_keys)
        if (series < 0).any():
            first = future.iloc[int(np.flatnonzero(series[row_series] < 0)[0])]
            raise UnknownSeriesError(
                f"store_nbr={first[STORE]}, family={first[FAMILY]!r} has no history"
            )
        keys = panel.keys.iloc[series].reset_index(drop=True)
        promo = _promo_matrix(row_series, future, steps, n_series=len(series))
        shut = None
        if IS_CLOSED in future.columns:  # the days known closed
            shut = np.zeros(promo.shape, dtype=np.bool_)
            shut[row_series, steps - 1] = future[IS_CLOSED].to_numpy(dtype=np.bool_)
        log_pred = self.forecast_log(panel, series, keys=keys, promo=promo, closed=shut)
        dead = self.dead_series(panel, series)
        self.n_dead_zeroed_ = int(dead.sum())
        if self.n_dead_zeroed_:
            logger.debug("dead-series rule zeroed %d of %d series", self.n_dead_zeroed_, len(dead))
        values = np.expm1(log_pred[row_series, steps - 1])
        values[dead[row_series]] = 0.0
        values[closed_rows(future)] = 0.0
        return np.clip(values, 0.0, None)

    def forecast_log(
        self,
        panel: Panel,
        series: npt.NDArray[np.intp],
        *,
        keys: pd.DataFrame,
        promo: FloatArray,
        closed: npt.NDArray[np.bool_] | None = None,
    ) -> FloatArray:
        """Recursive log1p forecasts (series x horizon day) for ``panel`` rows ``series``.

        ``promo`` is the onpromotion of each series on each horizon day (``[series, days]``);
        ``closed`` flags the closed days there: their cell carries the day before's
        value into the next days' features, as the history does (features/builder.py); a
        closed day on a yearly closure of the builder reads 0 there, as in the history (an
        open one, e.g. a request's ``open`` 1, is forecast).
        """
        builder, _ = self._fitted()
        lookback = builder.spec.lookback
        horizon = promo.shape[1]
        window = np.full((len(series), lookback + horizon), np.nan)
        window[:, :lookback] = builder.history_log_sales(
            panel.log_sales[series, -lookback:], panel.dates[-lookback:]
        )
        promo_window = promo_history(panel, series, promo, lookback)
        codes = builder.encode(keys)
        origin = panel.dates[-1]
        for h in range(1, horizon + 1):
            date = origin + pd.Timedelta(days=h)
            day = lookback + h - 1
            # a closed yearly closure reads 0, as in the history; any other closure carries
            yearly = builder.yearly_closures.is_closed(date)
            shut = closed[:, h - 1] if closed is not None else None
            if yearly and shut is not None and shut.all():
                window[:, day] = 0.0
                continue
            x = builder.day_features(
                window,
                day=day,
                date=date,
                promo=promo[:, h - 1],
                codes=codes,
                promo_window=promo_window,
            )
            window[:, day] = self._predict_rows(x)
            if shut is not None and shut.any():
                window[shut, day] = 0.0 if yearly else window[shut, day - 1]
        return window[:, lookback:]

    def prepare_serving(self, *, batch_threads: int = 1) -> None:
        """Set the model up for serving (docs/DESIGN.md, section 5: concurrency from requests).

        Steps of a few rows (one row per series: every single-series request and micro-batches
        of them) run on the NumPy tree walker in the calling thread; larger steps (many series,
        e.g. the all-series request) run on XGBoost with ``batch_threads`` threads, so one
        large request uses the cores (bench/RESULTS.md, serve); so does the TreeSHAP of an
        explanation (models/explain.py). The choice:
        :func:`~retail_forecast.models.tree_predictor.tree_predictor`.
        """
        _, booster = self._fitted()
        booster.set_param({"nthread": batch_threads})
        self.serving_trees_ = tree_predictor(booster, serving=True)
        self.serving_threads_ = batch_threads

    def tree_shap(self) -> TreeShap | None:
        """Return the booster's exact-TreeSHAP kernel view, built on first use; None without it.

        Built once per process (its leaf tables: bench/RESULTS.md, dashboard), under a lock
        so that concurrent ``explain`` requests build it once.
        """
        with _TREE_SHAP_LOCK:
            if self.tree_shap_ is None:
                self.tree_shap_ = (tree_shap(self._fitted()[1]),)
            return self.tree_shap_[0]

    def _predict_rows(self, x: npt.NDArray[np.float32]) -> FloatArray:
        """One recursion step: the serving predictor once set up, XGBoost's own otherwise."""
        trees = self.serving_trees_
        if trees is None:
            trees = tree_predictor(self._fitted()[1], serving=False)
        return trees.predict(x).astype(np.float64)

    def dead_series(self, panel: Panel, series: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Series that sold nothing on the open days of the last ``dead_series_days`` (0: off).

        :func:`~retail_forecast.features.builder.silent_series`: closed days do not count.
        """
        days = self.config.dead_series_days
        if days == 0:
            return np.zeros(len(series), dtype=np.bool_)
        return silent_series(panel.sales[series, -days:], panel.closed[series, -days:])

    def _fitted(self) -> tuple[FeatureBuilder, xgb.Booster]:
        if not hasattr(self, "booster_"):
            raise NotFittedError("XGBForecaster is not fitted; call fit() or load()")
        return self.builder_, self.booster_

    # --- persistence ----------------------------------------------------------------------

    def save(self, directory: Path) -> list[Path]:
        """Write ``xgboost/model.ubj`` and ``preprocessor_xgboost.json`` under ``directory``."""
        builder, booster = self._fitted()
        model_path = Path(directory) / MODEL_FILE
        model_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = model_path.with_name(f".tmp-{model_path.name}")  # keeps the .ubj suffix
        booster.save_model(str(tmp))
        tmp.chmod(0o600)  # XGBoost honours the umask (0644); every bundle file is 0600
        tmp.replace(model_path)
        prep_path = Path(directory) / PREPROCESSOR_FILE
        meta = {
            "format_version": FORMAT_VERSION,
            "model_type": "xgboost",
            "builder": builder.to_dict(),  # its "spec" holds the feature set, as data
            "dead_series_days": self.config.dead_series_days,
            "horizon": self.horizon,
            "origin": str(self.origin_.date()),
            "config": self.config.model_dump(),
        }
        write_json_atomic(prep_path, meta)
        return [model_path, prep_path]

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a forecaster from files written by :meth:`save` (no pickle)."""
        model_path = Path(directory) / MODEL_FILE
        prep_path = Path(directory) / PREPROCESSOR_FILE
        if not model_path.is_file() or not prep_path.is_file():
            raise ArtifactError(f"{directory} lacks {MODEL_FILE} or {PREPROCESSOR_FILE}")
        meta = read_json(prep_path)
        if meta.get("format_version") != FORMAT_VERSION or meta.get("model_type") != "xgboost":
            raise ArtifactError(f"{prep_path} is not an xgboost preprocessor v{FORMAT_VERSION}")
        builder = FeatureBuilder.from_dict(meta["builder"])
        forecaster = cls(
            XGBoostConfig(**meta["config"]),
            builder.spec.to_config(),
            horizon=recorded_horizon(meta, source=prep_path),
        )
        booster = xgb.Booster()
        try:
            booster.load_model(str(model_path))
        except xgb.core.XGBoostError as exc:
            raise ArtifactError(f"cannot load {model_path}: {exc}") from exc
        booster.set_param({"nthread": forecaster.config.nthread})
        forecaster.booster_ = booster
        forecaster.builder_ = builder
        forecaster.origin_ = pd.Timestamp(meta["origin"])
        return forecaster


def _horizon_steps(
    future: pd.DataFrame, origin: pd.Timestamp, horizon: int
) -> npt.NDArray[np.int64]:
    if future.empty:
        raise DataValidationError("future has no rows")
    steps = days_after(future[DATE].to_numpy(), origin)
    if (steps < 1).any() or (steps > horizon).any():
        raise DataValidationError(
            f"future dates must lie within {horizon} days after the history's last day {origin}"
        )
    return steps


def _series_index(
    panel_keys: npt.NDArray[np.int64], row_keys: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Panel rows of the distinct requested series (-1: not in the panel), each row's position."""
    wanted, row_series = np.unique(row_keys, return_inverse=True)
    order = np.argsort(panel_keys, kind="stable")
    at = np.minimum(np.searchsorted(panel_keys[order], wanted), len(order) - 1)
    found = (panel_keys[order][at] == wanted) & (wanted >= 0)
    series = np.where(found, order[at], -1)
    return np.asarray(series, dtype=np.intp), np.asarray(row_series, dtype=np.intp)


def _promo_matrix(
    row_series: npt.NDArray[np.intp],
    future: pd.DataFrame,
    steps: npt.NDArray[np.int64],
    *,
    n_series: int,
) -> FloatArray:
    """Onpromotion per (series, horizon day); days without a future row count as 0."""
    promo = np.zeros((n_series, int(steps.max())))
    promo[row_series, steps - 1] = future[PROMO].to_numpy(dtype=np.float64)
    return promo
