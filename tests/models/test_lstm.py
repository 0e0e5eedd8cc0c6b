"""LSTMForecaster: interface, no leakage, training-only scaler, determinism, safe persistence."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from retail_forecast.config import LSTMConfig
from retail_forecast.errors import (
    ArtifactError,
    DataValidationError,
    NotFittedError,
    UnknownSeriesError,
)
from retail_forecast.features.sequences import ENCODER_FEATURES, FUTURE_FEATURES
from retail_forecast.models.lstm import (
    LOG_SALES_MAX,
    PREPROCESSOR_FILE,
    WEIGHTS_FILE,
    LSTMForecaster,
    LSTMNet,
)
from retail_forecast.schema import (
    CANONICAL_COLUMNS,
    DATE,
    FAMILY,
    IS_CLOSED,
    PROMO,
    STORE,
    TARGET,
)

HORIZON = 16  # the default forecast.horizon

# --- a tiny canonical panel (weekly pattern, promotions, a store opening, a dead series) ---
FAMILIES = ("BEVERAGES", "DAIRY", "GROCERY I")
STORES = (1, 2)
START = "2016-11-01"
# Store 2 / DAIRY opens late: zero sales before this day index (a store-opening series).
OPENING = ("DAIRY", 2, 90)
# Store 1 / GROCERY I stops selling 45 days before the end (a dead series).
DEAD = ("GROCERY I", 1, 45)


def make_panel(n_days: int = 140, seed: int = 0) -> pd.DataFrame:
    """Return a complete canonical frame: 2 stores x 3 families x n_days, Dec 25 closed."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, periods=n_days, freq="D")
    frames = []
    for store in STORES:
        for k, family in enumerate(FAMILIES):
            level = 20.0 * (k + 1) * store
            weekly = 1.0 + 0.4 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
            promo = rng.poisson(1.0, n_days) * (rng.random(n_days) < 0.3)
            sales = rng.poisson(level * weekly * (1 + 0.2 * promo)).astype(np.float64)
            if (family, store) == OPENING[:2]:
                sales[: OPENING[2]] = 0.0
            if (family, store) == DEAD[:2]:
                sales[-DEAD[2] :] = 0.0
            closed = (dates.month == 12) & (dates.day == 25)
            sales[closed] = 0.0
            promo[closed] = 0
            frames.append(
                pd.DataFrame(
                    {
                        DATE: dates,
                        STORE: store,
                        FAMILY: family,
                        TARGET: sales,
                        PROMO: promo.astype(np.int64),
                        IS_CLOSED: np.asarray(closed),
                    }
                )
            )
    frame = pd.concat(frames, ignore_index=True)
    frame[STORE] = frame[STORE].astype("int64")
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=sorted(FAMILIES))
    return frame[list(CANONICAL_COLUMNS)]


def split(frame: pd.DataFrame, horizon: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History up to the origin and the last ``horizon`` days (with their true sales)."""
    origin = frame[DATE].max() - pd.Timedelta(days=horizon)
    history = frame[frame[DATE] <= origin].reset_index(drop=True)
    window = frame[frame[DATE] > origin].reset_index(drop=True)
    return history, window


def tiny_config(**overrides: object) -> LSTMConfig:
    """A config small enough to train in about a second on one thread."""
    base: dict[str, object] = {
        "window": 14,
        "hidden_size": 8,
        "embedding_dim": 2,
        "batch_size": 64,
        "epochs": 2,
        "windows_per_epoch": 256,
        "patience": 5,
        "num_threads": 1,
        "scaler_days": 60,
        "level_days": 7,
        "skip_days": 7,
        "device": "cpu",
    }
    base.update(overrides)
    return LSTMConfig.model_validate(base)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    history, window = split(make_panel())
    return history, window, window[[DATE, STORE, FAMILY, PROMO]]


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> LSTMForecaster:
    return LSTMForecaster(tiny_config(), horizon=HORIZON).fit(data[0])


@pytest.mark.parametrize("day_of_month", [False, True])
def test_net_maps_tensors_to_horizon(day_of_month: bool) -> None:
    net = LSTMNet(
        n_stores=2,
        n_families=3,
        horizon=HORIZON,
        hidden_size=8,
        embedding_dim=2,
        level_days=7,
        skip_days=7,
        day_of_month=day_of_month,
    )
    x_enc = torch.zeros(5, 14, len(ENCODER_FEATURES))
    x_fut = torch.ones(5, HORIZON, len(FUTURE_FEATURES))
    for name in ("month", "day_of_month"):
        x_enc[..., ENCODER_FEATURES.index(name)] = 3
    out = net(x_enc, x_fut)
    assert out.shape == (5, HORIZON)
    # the day of month reaches the output only when enabled
    x_fut[..., FUTURE_FEATURES.index("day_of_month")] = 15
    assert torch.equal(net(x_enc, x_fut), out) is not day_of_month


def test_predict_keeps_rows_and_clips(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, _, future = data
    shuffled = future.sample(frac=1.0, random_state=1)
    out = fitted.predict(history, shuffled)
    assert list(out.index) == list(shuffled.index)
    assert out[TARGET].dtype == np.float64
    assert (out[TARGET] >= 0).all()
    assert np.isfinite(out[TARGET]).all()
    pd.testing.assert_frame_equal(out.drop(columns=TARGET), shuffled)
    by_key = fitted.predict(history, future).set_index([DATE, STORE, FAMILY])[TARGET]
    again = out.set_index([DATE, STORE, FAMILY])[TARGET]
    assert np.array_equal(by_key.loc[again.index].to_numpy(), again.to_numpy())


def test_dead_series_zero_and_opening_series_forecast(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, _, future = data
    out = fitted.predict(history, future)
    dead = out[(out[FAMILY] == DEAD[0]) & (out[STORE] == DEAD[1])][TARGET]
    opened = out[(out[FAMILY] == OPENING[0]) & (out[STORE] == OPENING[1])][TARGET]
    alive = out[(out[FAMILY] == DEAD[0]) & (out[STORE] != DEAD[1])][TARGET]
    assert (dead == 0).all()
    assert (opened > 0).all()
    assert (alive > 0).all()


def test_subset_of_series_and_days(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, _, future = data
    full = fitted.predict(history, future)
    part = future[
        (future[STORE] == 2) & (future[DATE] <= future[DATE].min() + pd.Timedelta(days=3))
    ]
    sub = fitted.predict(history, part)
    np.testing.assert_allclose(sub[TARGET], full.loc[part.index, TARGET], rtol=1e-6)


def test_future_sales_never_enter_the_encoder(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, window, _ = data
    with_truth = window.drop(columns="is_closed")  # a future frame that carries true sales
    base = fitted.predict(history, with_truth)[TARGET].to_numpy()
    tampered = with_truth.assign(**{TARGET: with_truth[TARGET] * 50 + 1000})
    assert np.array_equal(fitted.predict(history, tampered)[TARGET].to_numpy(), base)
    # ...while the last known day (the origin) does move the forecast.
    last = history[DATE] == history[DATE].max()
    moved = history.copy()
    moved.loc[last, TARGET] = moved.loc[last, TARGET] * 20 + 500
    assert not np.allclose(fitted.predict(moved, with_truth)[TARGET].to_numpy(), base)


def _weights(model: LSTMForecaster) -> dict[str, torch.Tensor]:
    return dict(model.net_.state_dict())


def test_validation_slice_never_trains_the_model(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    """One epoch (so early stopping cannot choose): perturbing the validation slice changes
    neither the scaler nor a single weight; perturbing a training day changes both."""
    history = data[0]
    cfg = tiny_config(epochs=1)
    base = LSTMForecaster(cfg, horizon=HORIZON).fit(history)
    val_days = history[DATE] > history[DATE].max() - pd.Timedelta(days=HORIZON)
    perturbed = history.copy()
    perturbed.loc[val_days, TARGET] = perturbed.loc[val_days, TARGET] * 30 + 7
    other = LSTMForecaster(cfg, horizon=HORIZON).fit(perturbed)
    assert np.array_equal(other.scaler_mean_, base.scaler_mean_)
    assert np.array_equal(other.scaler_std_, base.scaler_std_)
    assert all(torch.equal(v, _weights(other)[k]) for k, v in _weights(base).items())
    assert other.val_rmsle_ != base.val_rmsle_
    train_day = history[DATE] == history[DATE].max() - pd.Timedelta(days=HORIZON + 3)
    moved = history.copy()
    moved.loc[train_day, TARGET] = moved.loc[train_day, TARGET] * 30 + 7
    third = LSTMForecaster(cfg, horizon=HORIZON).fit(moved)
    assert not np.array_equal(third.scaler_mean_, base.scaler_mean_)
    assert not all(torch.equal(v, _weights(third)[k]) for k, v in _weights(base).items())


def test_scaler_statistics_are_training_rows_only(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history = data[0]
    cfg = fitted.config
    end = history[DATE].max() - pd.Timedelta(days=HORIZON)  # last training (non-validation) day
    rows = history[
        (history[DATE] <= end)
        & (history[DATE] > end - pd.Timedelta(days=cfg.scaler_days))
        & ~history["is_closed"]
    ]
    series = rows[(rows[STORE] == 1) & (rows[FAMILY] == "BEVERAGES")]
    log_sales = np.log1p(series[TARGET].to_numpy())
    i = fitted.stores_.index(1) * len(fitted.families_) + fitted.families_.index("BEVERAGES")
    assert fitted.scaler_mean_[i] == pytest.approx(log_sales.mean(), rel=1e-12)
    assert fitted.scaler_std_[i] == pytest.approx(log_sales.std(), rel=1e-12)


def test_p24_same_seed_same_weights(data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    history = data[0]
    first = _weights(LSTMForecaster(tiny_config(), horizon=HORIZON).fit(history))
    second = _weights(LSTMForecaster(tiny_config(), horizon=HORIZON).fit(history))
    other_seed = _weights(LSTMForecaster(tiny_config(seed=1), horizon=HORIZON).fit(history))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)


def test_fit_restores_torch_global_settings(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    LSTMForecaster(tiny_config(epochs=1, num_threads=1), horizon=HORIZON).fit(data[0])
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_save_load_round_trip_is_bit_identical(
    fitted: LSTMForecaster,
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    history, _, future = data
    paths = fitted.save(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == sorted(
        [PREPROCESSOR_FILE, WEIGHTS_FILE]
    )
    loaded = LSTMForecaster.load(tmp_path)
    assert loaded.config == fitted.config
    before = fitted.predict(history, future)[TARGET].to_numpy()
    after = loaded.predict(history, future)[TARGET].to_numpy()
    assert np.array_equal(before, after)
    assert all(torch.equal(v, _weights(loaded)[k]) for k, v in _weights(fitted).items())


class _Canary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def test_p11_load_refuses_pickled_weights(fitted: LSTMForecaster, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    canary = tmp_path / "canary"
    torch.save({"x": _Canary(canary)}, tmp_path / WEIGHTS_FILE)
    with pytest.raises(ArtifactError, match=r"weights\.safetensors"):
        LSTMForecaster.load(tmp_path)
    assert not canary.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage_header", "wrong_shapes", "missing"])
def test_load_refuses_tampered_weights(fitted: LSTMForecaster, tmp_path: Path, damage: str) -> None:
    fitted.save(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    raw = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage_header":
        weights.write_bytes(b"\xff" * 8 + raw[8:])
    elif damage == "wrong_shapes":
        save_file({k: torch.zeros(3) for k in _weights(fitted)}, str(weights))
    else:
        weights.unlink()
    with pytest.raises(ArtifactError, match=r"weights"):
        LSTMForecaster.load(tmp_path)


def test_load_refuses_foreign_preprocessor(fitted: LSTMForecaster, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    (tmp_path / PREPROCESSOR_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(ArtifactError, match="preprocessor"):
        LSTMForecaster.load(tmp_path)


def test_inputs_and_scaled_predictions_compose(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, _, future = data
    inputs = fitted.build_inputs(history, future)
    assert inputs.x_enc.shape == (6, fitted.config.window, len(ENCODER_FEATURES))
    assert inputs.x_fut.shape == (6, HORIZON, len(FUTURE_FEATURES))
    scaled = fitted.predict_scaled(inputs.x_enc, inputs.x_fut)
    sales = np.expm1(scaled.astype(np.float64) * inputs.std[:, None] + inputs.mean[:, None])
    expected = np.clip(sales, 0, None)[inputs.rows, inputs.steps]
    got = fitted.predict(history, future)[TARGET].to_numpy()
    alive = ~inputs.is_dead[inputs.rows]
    assert np.array_equal(got[alive], expected[alive])
    with pytest.raises(DataValidationError):
        fitted.predict_scaled(inputs.x_enc[:, :5], inputs.x_fut)
    bad = inputs.x_enc.copy()
    bad[0, 0, ENCODER_FEATURES.index("store_index")] = 99
    with pytest.raises(DataValidationError, match="store_index"):
        fitted.predict_scaled(bad, inputs.x_fut)


def test_errors_are_typed(
    fitted: LSTMForecaster, data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    history, _, future = data
    with pytest.raises(NotFittedError):
        LSTMForecaster(tiny_config(), horizon=HORIZON).predict(history, future)
    unknown = future.head(2).assign(**{STORE: 99})
    with pytest.raises(UnknownSeriesError):
        fitted.predict(history, unknown)
    too_far = future.head(1).assign(**{DATE: future[DATE].max() + pd.Timedelta(days=1)})
    with pytest.raises(DataValidationError, match="future dates"):
        fitted.predict(history, too_far)


# --- CUDA (run where a GPU is present; skipped elsewhere) ------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@needs_cuda
def test_cuda_fit_is_deterministic_and_serves_from_cpu_weights(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    history, _, future = data
    first = LSTMForecaster(tiny_config(device="cuda"), horizon=HORIZON).fit(history)
    second = LSTMForecaster(tiny_config(device="cuda"), horizon=HORIZON).fit(history)
    assert first.trained_on_["device"] == "cuda"
    weights, again = _weights(first), _weights(second)
    assert all(t.device.type == "cpu" for t in weights.values())
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    predicted = first.predict(history, future)[TARGET].to_numpy()
    assert np.isfinite(predicted).all()
    assert (predicted >= 0).all()
    first.save(tmp_path)
    loaded = LSTMForecaster.load(tmp_path).predict(history, future)[TARGET].to_numpy()
    assert np.array_equal(loaded, predicted)


@needs_cuda
def test_cuda_and_cpu_training_agree(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    history, _, future = data
    on_cpu = LSTMForecaster(tiny_config(), horizon=HORIZON).fit(history).predict(history, future)
    on_gpu = (
        LSTMForecaster(tiny_config(device="cuda"), horizon=HORIZON)
        .fit(history)
        .predict(history, future)
    )
    gap = np.abs(np.log1p(on_cpu[TARGET].to_numpy()) - np.log1p(on_gpu[TARGET].to_numpy()))
    assert gap.max() < 1e-2  # same init, same windows; only float rounding differs


def test_p32_an_extreme_net_output_never_overflows_the_forecast(
    fitted: LSTMForecaster,
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """expm1 of the log forecast is capped near float64's largest value, never inf."""
    history, _, future = data
    normal = fitted.predict(history, future)[TARGET].to_numpy()

    def extreme(x_enc: np.ndarray, x_fut: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        out = np.full((len(x_enc), HORIZON), 1e4, dtype=np.float32)  # ~e^(1e4 x std): overflows
        out[1:] = fitted.__class__.predict_scaled(fitted, x_enc, x_fut)[1:]
        return out

    monkeypatch.setattr(fitted, "predict_scaled", extreme)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in expm1" fails too
        capped = fitted.predict(history, future)[TARGET].to_numpy()
    cap = np.expm1(LOG_SALES_MAX)
    assert np.isfinite(cap)
    assert np.isfinite(capped).all()
    changed = capped != normal
    assert changed.any()
    assert (capped[changed] == cap).all()  # only the overflowing forecasts; no normal number
