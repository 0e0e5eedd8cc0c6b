"""The LSTM's training loop: sampled-window epochs with Adam, early stopping on validation."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from retail_forecast.config import LSTMConfig
from retail_forecast.features.sequences import (
    SeriesPanel,
    recent_sales,
    sample_windows,
    training_arrays,
)
from retail_forecast.models.lstm_net import PREDICT_BATCH, LSTMNet, train_epoch, weighted_mse

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainedNet:
    """What a fit learned besides the weights (loaded into the net in place)."""

    best_epoch: int | None  # None: no epoch had a finite validation loss
    val_rmsle: float


@dataclass(frozen=True)
class WindowBatches:
    """Encoder, future, target and loss-weight tensors of windows of one scaled panel."""

    panel: SeriesPanel
    z: FloatArray  # scaled log1p sales [series, days]
    std: FloatArray  # each series' scaler std (the loss weights)
    window: int
    horizon: int  # the direct head's length: targets are the horizon days after each origin
    device: torch.device

    def tensors(self, *, rows: IntArray, origins: IntArray) -> list[torch.Tensor]:
        """Tensors on ``device`` for the windows of ``rows`` ending at ``origins``."""
        arrays = training_arrays(
            self.z,
            self.panel,
            rows=rows,
            origins=origins,
            window=self.window,
            horizon=self.horizon,
            std=self.std,
        )
        return [
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
            for a in arrays
        ]


def train_net(
    net: LSTMNet,
    windows: WindowBatches,
    *,
    config: LSTMConfig,
    val_start: int,
    rng: np.random.Generator,
) -> TrainedNet:
    """Sampled-window epochs with Adam; ``net`` ends with the weights of the best epoch."""
    panel = windows.panel
    active = recent_sales(panel, max(config.dead_series_days, 1))
    eligible = active.copy()
    eligible[:, val_start - windows.horizon :] = False  # targets must end before the validation
    age = (val_start - 1 - np.arange(panel.n_days)).astype(np.float64)
    day_weights = 0.5 ** (age / config.recency_halflife_days)
    val_rows = np.flatnonzero(active[:, val_start - 1])
    val = windows.tensors(rows=val_rows, origins=np.full(len(val_rows), val_start - 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    best, best_state, bad, started = math.inf, copy.deepcopy(net.state_dict()), 0, time.time()
    best_epoch: int | None = None
    # An epoch scales with the panel (windows_per_series each), capped at windows_per_epoch.
    n_windows = min(config.windows_per_epoch, config.windows_per_series * panel.n_series)
    for epoch in range(config.epochs):
        rows, origins = sample_windows(
            eligible=eligible, n=n_windows, day_weights=day_weights, rng=rng
        )
        train_loss = _epoch(net, optimizer, windows, rows=rows, origins=origins, config=config)
        val_loss = weighted_mse(net, val, chunk=PREDICT_BATCH)
        schedule.step()
        logger.info(
            "lstm epoch=%d train_rmsle=%.4f val_rmsle=%.4f elapsed_s=%.1f",
            epoch,
            math.sqrt(train_loss),
            math.sqrt(val_loss),
            time.time() - started,
        )
        if val_loss < best:
            best, best_state, bad, best_epoch = val_loss, copy.deepcopy(net.state_dict()), 0, epoch
        else:
            bad += 1
            if bad >= config.patience:
                break
    net.load_state_dict(best_state)
    return TrainedNet(best_epoch=best_epoch, val_rmsle=math.sqrt(best))


def _epoch(
    net: LSTMNet,
    optimizer: torch.optim.Optimizer,
    windows: WindowBatches,
    *,
    rows: IntArray,
    origins: IntArray,
    config: LSTMConfig,
) -> float:
    size = config.batch_size
    batches = (
        windows.tensors(rows=rows[s : s + size], origins=origins[s : s + size])
        for s in range(0, len(rows), size)
    )
    return train_epoch(net, optimizer, batches, grad_clip=config.grad_clip)
