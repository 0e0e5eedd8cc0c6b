"""LSTMForecaster: windowing, per-series scaling, fit, forecasts, save/load (net: lstm_net.py)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from pydantic import ValidationError

from retail_forecast.config import LSTMConfig
from retail_forecast.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    NotFittedError,
    UnknownSeriesError,
)
from retail_forecast.features.keys import family_positions
from retail_forecast.features.sequences import (
    ENCODER_FEATURES,
    FUT,
    FUTURE_FEATURES,
    SeriesPanel,
    build_panel,
    calendar_array,
    check_net_inputs,
    day_numbers,
    day_timestamp,
    dead_series,
    encoder_array,
    fit_scaler,
    future_array,
)
from retail_forecast.models.lstm_net import (
    FORMAT,
    FORMAT_VERSION,
    PREDICT_BATCH,
    LSTMNet,
    read_preprocessor,
    read_weights,
    torch_settings,
    write_weights,
)
from retail_forecast.models.lstm_training import WindowBatches, train_net
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.utils.io import write_json_atomic

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

PREPROCESSOR_FILE: Final = "preprocessor_nn.json"
WEIGHTS_FILE: Final = "lstm/weights.safetensors"
# expm1 of a larger log1p value overflows to inf. The net extrapolates linearly, so an absurd
# value in the history (one written before actuals had a ceiling) could get there; capping the
# log value there changes no finite forecast, and postprocess then sees a finite number.
LOG_SALES_MAX: Final = float(np.log(np.finfo(np.float64).max))


@dataclass(frozen=True)
class LSTMInputs:
    """Net inputs for a batch of series plus what turns scaled outputs back into sales."""

    x_enc: F32Array  # [batch, window, len(ENCODER_FEATURES)]
    x_fut: F32Array  # [batch, horizon, len(FUTURE_FEATURES)]
    mean: FloatArray  # [batch] scaler mean of log1p sales
    std: FloatArray  # [batch]
    is_dead: BoolArray  # [batch] no sales over the last dead_series_days days
    rows: IntArray  # per future row: its position in the batch
    steps: IntArray  # per future row: horizon step 0..horizon-1


class LSTMForecaster:
    """Global LSTM over all series: windowing, per-series scaling, fit loop, save/load."""

    def __init__(self, config: LSTMConfig | None = None, *, horizon: int) -> None:
        self.config = config if config is not None else LSTMConfig.model_validate({})
        self.horizon = horizon  # the direct head's length: forecast.horizon, or the bundle's

    # --- fit -----------------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame) -> Self:
        """Train on ``history``; its last ``horizon`` days are the early-stopping validation."""
        cfg = self.config
        if max(cfg.level_days, cfg.skip_days) > cfg.window:
            raise ConfigError("level_days and skip_days must not exceed window")
        self.stores_ = sorted(int(s) for s in history[STORE].unique())
        self.families_ = sorted(str(f) for f in history[FAMILY].unique())
        panel = build_panel(history, stores=self.stores_, families=self.families_)
        horizon = self.horizon
        val_start = panel.n_days - horizon
        if val_start < 2 * horizon:
            raise DataValidationError(f"history too short: {panel.n_days} days")
        self._fit_scaler(panel, val_start)
        z = self._scaled(panel)
        device = self._device()
        if device.type == "cuda":  # deterministic cuBLAS needs a fixed workspace
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        with torch_settings(threads=cfg.num_threads, deterministic=True):
            torch.manual_seed(cfg.seed)
            rng = np.random.default_rng(cfg.seed)
            net = self._new_net().to(device)
            windows = WindowBatches(
                panel, z, self._series_scale(panel)[1], cfg.window, horizon, device
            )
            trained = train_net(net, windows, config=cfg, val_start=val_start, rng=rng)
        if trained.best_epoch is not None:
            self.best_epoch_ = trained.best_epoch
        self.val_rmsle_ = trained.val_rmsle
        self.net_ = net.cpu().eval()
        self.origin_ = panel.dates[-1]
        self.trained_on_ = {
            "device": device.type,
            "threads": cfg.num_threads,
            "torch": torch.__version__,
        }
        return self

    def _device(self) -> torch.device:
        wanted = self.config.device
        if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    def _new_net(self) -> LSTMNet:
        cfg = self.config
        return LSTMNet(
            n_stores=len(self.stores_),
            n_families=len(self.families_),
            horizon=self.horizon,
            hidden_size=cfg.hidden_size,
            embedding_dim=cfg.embedding_dim,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            level_days=cfg.level_days,
            skip_days=cfg.skip_days,
            day_of_month=cfg.day_of_month,
        )

    def _fit_scaler(self, panel: SeriesPanel, end: int) -> None:
        """Fit the per-series scaler on days [end - scaler_days, end) only."""
        cfg = self.config
        mean, std = fit_scaler(panel, end=end, days=cfg.scaler_days, min_std=cfg.min_std)
        n_flat = len(self.stores_) * len(self.families_)
        self.scaler_mean_, self.scaler_std_ = np.zeros(n_flat), np.ones(n_flat)
        flat = panel.store_pos * len(self.families_) + panel.family_pos
        self.scaler_mean_[flat], self.scaler_std_[flat] = mean, std

    def _series_scale(self, panel: SeriesPanel) -> tuple[FloatArray, FloatArray]:
        flat = panel.store_pos * len(self.families_) + panel.family_pos
        return self.scaler_mean_[flat], self.scaler_std_[flat]

    def _scaled(self, panel: SeriesPanel) -> FloatArray:
        mean, std = self._series_scale(panel)
        return np.asarray((panel.log_sales - mean[:, None]) / std[:, None])

    # --- predict -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("LSTMForecaster is not fitted; call fit() or load()")

    def build_inputs(self, history: pd.DataFrame, future: pd.DataFrame) -> LSTMInputs:
        """Net inputs for every series in ``future``; no sales after the origin are read.

        The origin is the last date of ``history``; ``future`` dates must lie in
        origin+1 .. origin+horizon.
        """
        self._check_fitted()
        history_days = day_numbers(history[DATE])
        origin_day = int(history_days.max())
        origin = day_timestamp(origin_day)
        step = day_numbers(future[DATE]) - origin_day - 1
        horizon = self.horizon
        if len(future) == 0 or step.min() < 0 or step.max() >= horizon:
            raise DataValidationError(
                f"future dates must lie in {origin.date() + pd.Timedelta(days=1)} .. "
                f"{origin.date() + pd.Timedelta(days=horizon)} and future must not be empty"
            )
        flat = self._flat_keys(future)
        wanted = np.unique(flat)
        # Only the last window (and the dead-series look-back) is read: cut the rest early.
        look_back = max(self.config.window, self.config.dead_series_days)
        recent = history.iloc[np.flatnonzero(history_days > origin_day - look_back)]
        requested = np.isin(self._flat_keys(recent, unknown_ok=True), wanted)
        hist = recent.iloc[np.flatnonzero(requested)]
        panel = build_panel(hist, stores=self.stores_, families=self.families_, end=origin)
        panel_flat = panel.store_pos * len(self.families_) + panel.family_pos
        missing = np.setdiff1d(wanted, panel_flat)
        if missing.size:
            raise UnknownSeriesError(f"no sales history for {len(missing)} requested series")
        rows = np.searchsorted(panel_flat, flat)
        promo = np.zeros((panel.n_series, horizon))
        promo[rows, step] = future[PROMO].to_numpy(dtype=np.float64)
        days = pd.date_range(origin + pd.Timedelta(days=1), periods=horizon, freq="D")
        closed = np.zeros(promo.shape, dtype=np.bool_)
        if IS_CLOSED in future.columns:  # the data set's closures, as in training
            closed[rows, step] |= future[IS_CLOSED].to_numpy(dtype=np.bool_)
        x_fut = future_array(promo, calendar=calendar_array(days)[None], closed=closed)
        last = np.full(panel.n_series, panel.n_days - 1)
        z = self._scaled(panel)
        x_enc = encoder_array(
            z, panel, rows=np.arange(panel.n_series), origins=last, window=self.config.window
        )
        mean, std = self._series_scale(panel)
        dead_days = self.config.dead_series_days
        is_dead = np.zeros(panel.n_series, dtype=bool)
        if dead_days > 0:
            is_dead = dead_series(panel, dead_days)
        return LSTMInputs(
            x_enc, x_fut, mean, std, is_dead, rows.astype(np.int64), step.astype(np.int64)
        )

    def _flat_keys(self, frame: pd.DataFrame, *, unknown_ok: bool = False) -> IntArray:
        """Flat series position ``store_pos * n_families + family_pos`` per row (-1: unknown)."""
        stores = pd.Index(self.stores_).get_indexer(pd.Index(frame[STORE].to_numpy()))
        families = family_positions(frame, self.families_)
        bad = (stores < 0) | (families < 0)
        if bad.any() and not unknown_ok:
            first = frame.loc[bad, [STORE, FAMILY]].drop_duplicates().head(5)
            raise UnknownSeriesError(
                f"series not in the trained model: {first.to_dict('records')}; retrain"
            )
        return np.where(bad, -1, stores * len(self.families_) + families).astype(np.int64)

    def predict_scaled(self, x_enc: F32Array, x_fut: F32Array) -> F32Array:
        """Scaled log1p predictions [batch, horizon] from the two 3-D input arrays.

        This is the tensor-level entry point (e.g. a SageMaker handler); inputs are
        [batch, window, len(ENCODER_FEATURES)] and [batch, horizon, len(FUTURE_FEATURES)].
        """
        self._check_fitted()
        x_enc = np.asarray(x_enc, dtype=np.float32)
        x_fut = np.asarray(x_fut, dtype=np.float32)
        check_net_inputs(
            x_enc,
            x_fut,
            window=self.config.window,
            horizon=self.horizon,
            n_stores=len(self.stores_),
            n_families=len(self.families_),
        )
        out = np.empty((x_enc.shape[0], self.horizon), dtype=np.float32)
        self.net_.eval()
        # One thread for small batches: on a busy machine a second thread only adds waiting.
        threads = 1 if len(out) < PREDICT_BATCH else self.config.num_threads
        with torch_settings(threads=threads), torch.no_grad():
            for s in range(0, len(out), PREDICT_BATCH):
                part = slice(s, s + PREDICT_BATCH)
                pred = self.net_(torch.from_numpy(x_enc[part]), torch.from_numpy(x_fut[part]))
                out[part] = pred.numpy()
        return out

    def predict(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """Return ``future`` with a float ``sales`` column (original scale, clipped >= 0)."""
        inputs = self.build_inputs(history, future)
        scaled = self.predict_scaled(inputs.x_enc, inputs.x_fut).astype(np.float64)
        log_sales = scaled * inputs.std[:, None] + inputs.mean[:, None]
        sales = np.clip(np.expm1(np.minimum(log_sales, LOG_SALES_MAX)), 0.0, None)
        sales[inputs.is_dead] = 0.0
        closed = inputs.x_fut[..., FUT["is_closed"]] > 0
        sales[closed] = 0.0
        out = future.copy()
        out[TARGET] = sales[inputs.rows, inputs.steps]
        return out

    # --- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> list[Path]:
        """Write ``preprocessor_nn.json`` and ``lstm/weights.safetensors`` under ``directory``."""
        self._check_fitted()
        directory = Path(directory)
        weights = directory / WEIGHTS_FILE
        weights.parent.mkdir(parents=True, exist_ok=True)
        write_weights(weights, self.net_)
        pre = directory / PREPROCESSOR_FILE
        write_json_atomic(pre, self._preprocessor())
        return [pre, weights]

    def _preprocessor(self) -> dict[str, Any]:
        n_fam = len(self.families_)
        scalers = [
            {STORE: store, FAMILY: family, "mean": float(m), "std": float(sd)}
            for i, (m, sd) in enumerate(zip(self.scaler_mean_, self.scaler_std_, strict=True))
            for store, family in [(self.stores_[i // n_fam], self.families_[i % n_fam])]
        ]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "window": self.config.window,
            "horizon": self.horizon,
            "origin": str(self.origin_.date()),
            "stores": self.stores_,
            "families": self.families_,
            "encoder_features": list(ENCODER_FEATURES),
            "future_features": list(FUTURE_FEATURES),
            "target_transform": "log1p, then (x - mean) / std per series",
            "scalers": scalers,
            "best_epoch": getattr(self, "best_epoch_", None),
            "val_rmsle": getattr(self, "val_rmsle_", None),
            "trained_on": getattr(self, "trained_on_", None),
        }

    @classmethod
    def from_preprocessor(cls, path: Path) -> Self:
        """Rebuild config, vocabularies and scalers from ``preprocessor_nn.json`` (no weights)."""
        pre = read_preprocessor(path)
        try:
            self = cls(LSTMConfig.model_validate(pre["config"]), horizon=pre["horizon"])
            self.stores_ = [int(s) for s in pre["stores"]]
            self.families_ = [str(f) for f in pre["families"]]
            self.origin_ = pd.Timestamp(pre["origin"])
            n_fam = len(self.families_)
            self.scaler_mean_ = np.zeros(len(self.stores_) * n_fam)
            self.scaler_std_ = np.ones(len(self.stores_) * n_fam)
            for rec in pre["scalers"]:
                i = self.stores_.index(int(rec[STORE])) * n_fam + self.families_.index(rec[FAMILY])
                self.scaler_mean_[i], self.scaler_std_[i] = float(rec["mean"]), float(rec["std"])
            if pre.get("best_epoch") is not None:
                self.best_epoch_, self.val_rmsle_ = int(pre["best_epoch"]), float(pre["val_rmsle"])
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise ArtifactError(f"{path}: malformed ({exc})") from exc
        return self

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a forecaster from ``save``'s files; anything unexpected raises ArtifactError."""
        directory = Path(directory)
        self = cls.from_preprocessor(directory / PREPROCESSOR_FILE)
        net = self._new_net()
        net.load_state_dict(read_weights(directory / WEIGHTS_FILE, net))
        self.net_ = net.eval()
        return self
