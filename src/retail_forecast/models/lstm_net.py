"""LSTMNet (encoder LSTM, direct 16-day head), its training steps and safetensors I/O."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from retail_forecast.bundle_contents import recorded_horizon
from retail_forecast.errors import ArtifactError
from retail_forecast.features.sequences import ENC, ENCODER_FEATURES, FUT, FUTURE_FEATURES
from retail_forecast.utils.io import read_json

N_DOW, N_MONTH, N_DOM, SMALL_EMB = 7, 12, 31, 3
FORMAT: Final = "retail_forecast.lstm"
FORMAT_VERSION: Final = 1
# windows a forward pass without gradients takes at once (validation loss, forecasts)
PREDICT_BATCH: Final = 4096


class LSTMNet(nn.Module):
    """Encoder LSTM over the input window, direct ``horizon``-day head: tensors in, tensors out.

    ``forward(x_enc [B, L, len(ENCODER_FEATURES)], x_fut [B, H, len(FUTURE_FEATURES)])``
    returns scaled log1p sales [B, H]. The net predicts around the masked mean of the last
    ``level_days`` scaled sales (a per-window level), so it learns shapes, not levels.
    """

    def __init__(
        self,
        *,
        n_stores: int,
        n_families: int,
        horizon: int,
        hidden_size: int = 64,
        embedding_dim: int = 8,
        num_layers: int = 1,
        dropout: float = 0.0,
        level_days: int = 14,
        skip_days: int = 14,
        day_of_month: bool = False,
    ) -> None:
        super().__init__()
        self.horizon, self.level_days, self.skip_days = horizon, level_days, skip_days
        self.store_emb = nn.Embedding(n_stores, embedding_dim)
        self.family_emb = nn.Embedding(n_families, embedding_dim)
        self.dow_emb = nn.Embedding(N_DOW, SMALL_EMB)
        self.month_emb = nn.Embedding(N_MONTH, SMALL_EMB)
        self.horizon_emb = nn.Embedding(horizon, SMALL_EMB)
        # Day of month (paydays on the 15th and the last day) is optional: off by default.
        self.dom_emb = nn.Embedding(N_DOM, SMALL_EMB) if day_of_month else None
        n_cal = (3 if day_of_month else 2) * SMALL_EMB
        static = 2 * embedding_dim
        step = 5 + n_cal  # sales, before_first_sale, promo, closed, year + calendar embeddings
        self.encoder = nn.LSTM(
            step + static,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        head_in = hidden_size + static + skip_days + 3 + n_cal + SMALL_EMB
        self.head = nn.Sequential(
            nn.Linear(head_in, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
        )

    def _calendar(self, x: torch.Tensor, channels: dict[str, int]) -> torch.Tensor:
        parts = [
            self.dow_emb(x[..., channels["day_of_week"]].long()),
            self.month_emb(x[..., channels["month"]].long() - 1),
        ]
        if self.dom_emb is not None:
            parts.append(self.dom_emb(x[..., channels["day_of_month"]].long() - 1))
        return torch.cat(parts, dim=-1)

    def forward(self, x_enc: torch.Tensor, x_fut: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x_enc.shape
        seen = 1.0 - x_enc[..., ENC["before_first_sale"]]
        z = x_enc[..., ENC["sales_scaled"]]
        if self.level_days > 0:
            w = seen[:, -self.level_days :]
            level = (z[:, -self.level_days :] * w).sum(1) / w.sum(1).clamp(min=1.0)
        else:
            level = torch.zeros(batch, dtype=x_enc.dtype, device=x_enc.device)
        rel = (z - level[:, None]) * seen
        static = torch.cat(
            [
                self.store_emb(x_enc[:, 0, ENC["store_index"]].long()),
                self.family_emb(x_enc[:, 0, ENC["family_index"]].long()),
            ],
            dim=-1,
        )
        steps = torch.cat(
            [
                rel[..., None],
                x_enc[..., [ENC["before_first_sale"], ENC["onpromotion_log1p"]]],
                x_enc[..., [ENC["is_closed"], ENC["year_offset"]]],
                self._calendar(x_enc, ENC),
                static[:, None, :].expand(batch, length, -1),
            ],
            dim=-1,
        )
        _, (h_n, _) = self.encoder(steps)
        context = torch.cat([h_n[-1], static, rel[:, rel.shape[1] - self.skip_days :]], dim=-1)
        h = x_fut.shape[1]
        steps_ahead = torch.arange(h, device=x_fut.device)
        head_in = torch.cat(
            [
                context[:, None, :].expand(batch, h, -1),
                x_fut[..., [FUT["onpromotion_log1p"], FUT["is_closed"], FUT["year_offset"]]],
                self._calendar(x_fut, FUT),
                self.horizon_emb(steps_ahead)[None].expand(batch, h, -1),
            ],
            dim=-1,
        )
        out: torch.Tensor = self.head(head_in).squeeze(-1) + level[:, None]
        return out


@contextlib.contextmanager
def torch_settings(*, threads: int, deterministic: bool | None = None) -> Iterator[None]:
    """Set torch's global thread count (and determinism flag unless None), then restore them."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    if deterministic is not None:
        torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Sequence[torch.Tensor]],
    *,
    grad_clip: float,
) -> float:
    """One pass of weighted-MSE steps over ``(x_enc, x_fut, target, weight)`` batches.

    Returns the mean training loss per window (the weights make it MSE on log1p sales).
    """
    net.train()
    total, count = 0.0, 0
    for x_enc, x_fut, y, w in batches:
        loss = (w * (net(x_enc, x_fut) - y) ** 2).sum() / (w > 0).sum().clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return total / max(count, 1)


def weighted_mse(net: nn.Module, batch: Sequence[torch.Tensor], *, chunk: int) -> float:
    """Weighted mean squared error of ``net`` on one (x_enc, x_fut, target, weight) batch."""
    x_enc, x_fut, y, w = batch
    net.eval()
    total = torch.zeros((), dtype=torch.float64, device=y.device)
    with torch.no_grad():
        for s in range(0, len(y), chunk):
            part = slice(s, s + chunk)
            err = w[part] * (net(x_enc[part], x_fut[part]) - y[part]) ** 2
            total += err.sum().double()
    return float(total / (w > 0).sum().clamp(min=1))


def write_weights(path: Path, net: nn.Module) -> None:
    """Write the net's tensors (on CPU) as safetensors, atomically via a temporary name."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)


def read_weights(path: Path, net: LSTMNet) -> dict[str, torch.Tensor]:
    """Load safetensors weights (never pickle) and check names, shapes and dtypes."""
    if not path.is_file():
        raise ArtifactError(f"{path}: LSTM weights missing")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError or OSError
        raise ArtifactError(f"{path}: not a valid safetensors file ({exc})") from exc
    expected = net.state_dict()
    if set(state) != set(expected):
        raise ArtifactError(f"{path}: tensor names differ from the network's")
    for name, tensor in state.items():
        ref = expected[name]
        if tensor.shape != ref.shape or tensor.dtype != ref.dtype:
            raise ArtifactError(f"{path}: tensor {name} has shape/dtype {tensor.shape}")
    return state


def read_preprocessor(path: Path) -> dict[str, Any]:
    """Read ``preprocessor_nn.json``; refuse another format, version, horizon or feature spec."""
    try:
        pre = read_json(path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read LSTM preprocessor ({exc})") from exc
    if not isinstance(pre, dict) or pre.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an LSTM preprocessor (format != {FORMAT!r})")
    if pre.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: unsupported format_version")
    pre["horizon"] = recorded_horizon(pre, source=path)
    if (
        tuple(pre.get("encoder_features", ())) != ENCODER_FEATURES
        or tuple(pre.get("future_features", ())) != FUTURE_FEATURES
    ):
        raise ArtifactError(f"{path}: feature spec differs from this code's")
    return pre
