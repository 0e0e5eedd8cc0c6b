"""Seeded synthetic Favorita-like data in the exact Kaggle layout (built-in default data)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.config import ForecastConfig
from retail_forecast.data_processing import synthetic_calendar as cal
from retail_forecast.data_processing import synthetic_shapes as shapes
from retail_forecast.data_processing.synthetic_files import oil_frame, transactions_frame
from retail_forecast.data_processing.synthetic_parts import write_parts
from retail_forecast.data_processing.synthetic_tables import (
    FAMILY_TABLE,
    FRACTIONAL_FAMILIES,
    STRONG_PROMO_FAMILIES,
    ZERO_SERIES_WEIGHT,
    store_table,
)
from retail_forecast.data_processing.synthetic_tables import (
    families as family_names,
)
from retail_forecast.schema import (
    HOLIDAYS_COLUMNS,
    OIL_COLUMNS,
    PROMO,
    STORES_COLUMNS,
    TARGET,
    TRANSACTIONS_COLUMNS,
)
from retail_forecast.utils.io import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
FRAME_NAMES = ("train", "test", "stores", "oil", "holidays_events", "transactions")
# The generated chain closes every store on 25 December, as the Kaggle file it imitates does
# (no rows that day): a trait of this generator's data, which the product learns from the files
# (closed_days.infer_yearly_closures), not a rule of the product.
GENERATED_CLOSURES = YearlyClosures(((12, 25),))
# Panel-shape fields (synthetic_shapes): left out of synthetic_config.json while at their
# default, so the default data set's files stay byte-identical to before they existed.
SHAPE_FIELDS = (
    "start_date",
    "horizon",
    "family_list",
    "closed_sundays",
    "regional_holidays",
    "gap_stores",
    "gap_days",
    "items_per_store",
)


class SyntheticConfig(BaseModel):
    """Size, seed and the few realism knobs of a synthetic data set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_stores: int = Field(default=10, ge=1, le=999)
    n_families: int = Field(default=33, ge=1, le=len(FAMILY_TABLE))
    n_days: int = Field(
        default=730,
        ge=1,
        description="Distinct train dates (the generated chain's 25 December excluded).",
    )
    end_date: dt.date = dt.date(2017, 8, 15)
    seed: int = Field(default=0, ge=0)
    zero_series_share: float = Field(default=0.03, ge=0, le=1)
    dead_series_share: float = Field(default=0.015, ge=0, le=1)
    late_store_share: float = Field(default=0.15, ge=0, le=1)
    promo_start: dt.date = dt.date(2014, 4, 1)
    quake_date: dt.date = dt.date(2016, 4, 16)
    noise_shape: float = Field(default=30.0, gt=0, description="Gamma shape of day-to-day noise.")
    ar_coef: float = Field(default=0.98, ge=0, lt=1)
    ar_sd: float = Field(default=0.03, ge=0)
    # Panel shapes (see synthetic_shapes for how each shows in the files).
    start_date: dt.date | None = Field(
        default=None, description="First train date; end_date is then derived from n_days."
    )
    # test.csv's days: the default forecast.horizon unless a shape asks for another
    horizon: int = Field(
        default_factory=lambda: ForecastConfig().horizon,
        ge=1,
        le=366,
        description="Days of test.csv.",
    )
    family_list: tuple[str, ...] = Field(
        default=(), description="These families (any n_families is ignored); () the first n."
    )
    closed_sundays: bool = False
    regional_holidays: bool = False
    gap_stores: int = Field(default=0, ge=0, description="Stores with a gap (no rows).")
    gap_days: int = Field(default=120, ge=1, description="Length of each gap in train days.")
    items_per_store: int = Field(default=0, ge=0, description="Series a store (0: one a family).")

    @field_validator("family_list")
    @classmethod
    def _known_families(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(FAMILY_TABLE))
        if unknown or len(set(value)) != len(value):
            raise ValueError(
                f"family_list: unknown or repeated {unknown or list(value)}; "
                f"allowed: {', '.join(sorted(FAMILY_TABLE))}"
            )
        return tuple(sorted(value))

    def families(self) -> list[str]:
        """Family names of the data set, sorted."""
        return list(self.family_list) if self.family_list else family_names(self.n_families)


def default_config(full: bool = False, seed: int = 0) -> SyntheticConfig:
    """Small default (10 stores x 33 families x 730 days) or the real data's full size."""
    if full:
        return SyntheticConfig(n_stores=54, n_families=33, n_days=1684, seed=seed)
    return SyntheticConfig(seed=seed)


def _calendar(config: SyntheticConfig) -> tuple[pd.DatetimeIndex, npt.NDArray[np.bool_]]:
    """All calendar days start..end+horizon, and which of them are train dates."""
    periods = config.n_days + config.n_days // 365 + 2
    if config.start_date is not None:
        run = pd.date_range(start=pd.Timestamp(config.start_date), periods=periods)
        run = run[~GENERATED_CLOSURES.mask(run)][: config.n_days]
        end = run[-1]
    else:
        end = pd.Timestamp(config.end_date)
        run = pd.date_range(end=end, periods=periods)
        run = run[~GENERATED_CLOSURES.mask(run)][-config.n_days :]
    days = pd.date_range(run[0], end + pd.Timedelta(days=config.horizon))
    is_train = np.asarray((days <= end) & ~GENERATED_CLOSURES.mask(days))
    return days, is_train


def train_dates(config: SyntheticConfig) -> pd.DatetimeIndex:
    """Return the train dates a config produces (closed days excluded, as in Kaggle's file)."""
    days, is_train = _calendar(config)
    return days[is_train]


def _pick(rng: np.random.Generator, n: int, share: float, weights: FloatArray) -> FloatArray:
    """Choose round(share * n) items without replacement, weighted; returns a 0/1 mask."""
    k = min(round(share * n), int(np.count_nonzero(weights)))
    mask = np.zeros(n, dtype=np.float64)
    if k > 0:
        mask[rng.choice(n, size=k, replace=False, p=weights / weights.sum())] = 1.0
    return mask


def _quake(
    config: SyntheticConfig, days: pd.DatetimeIndex, stores: pd.DataFrame, rng: np.random.Generator
) -> tuple[dt.date, str] | None:
    """Place the shock: the configured date if inside the data (else the middle), one region."""
    day = _quake_day(config, days)
    if day is None:
        return None
    states = stores["state"].tolist()
    region = "Manabi" if "Manabi" in states else states[int(rng.integers(len(states)))]
    return day, region


def shock_day(config: SyntheticConfig) -> dt.date | None:
    """Return the first day of the data set's earthquake-like shock (None: too short for one)."""
    return _quake_day(config, _calendar(config)[0])


def _quake_day(config: SyntheticConfig, days: pd.DatetimeIndex) -> dt.date | None:
    if len(days) < 2 * cal.QUAKE_DAYS + config.horizon:
        return None
    day = pd.Timestamp(config.quake_date)
    if not days[cal.QUAKE_DAYS] <= day <= days[-config.horizon - cal.QUAKE_DAYS]:
        day = days[len(days) // 2]
    return day.date()


def _latent(
    shape: tuple[int, int, int], config: SyntheticConfig, rng: np.random.Generator
) -> FloatArray:
    """Draw a slow AR(1) level per series: what lags and rolling means learn and naive cannot."""
    shocks = rng.normal(0.0, config.ar_sd, size=shape)
    state = rng.normal(0.0, config.ar_sd / np.sqrt(1 - config.ar_coef**2), size=shape[:2])
    out = np.empty(shape, dtype=np.float64)
    for t in range(shape[2]):
        state = config.ar_coef * state + shocks[:, :, t]
        out[:, :, t] = state
    return out


def _activity(
    config: SyntheticConfig, days: pd.DatetimeIndex, fams: list[str], rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Where a series can sell (stores x families x days), and each store's opening day index.

    Never-sold series (weighted to the real ones: BOOKS, BABY CARE, ...), dead series (stop 21-70
    days before the end), late-opening stores, and 1 January (every store but store 1 closed).
    """
    n_stores, n_fam, n_days = config.n_stores, len(fams), len(days)
    fam_weight = np.array([_zero_weight(name) for name in fams])
    zero = _pick(rng, n_stores * n_fam, config.zero_series_share, np.tile(fam_weight, n_stores))
    dead = _pick(rng, n_stores * n_fam, config.dead_series_share, 1.0 - zero)
    last_train = n_days - config.horizon - 1
    death = np.where(dead > 0, last_train - rng.integers(21, 71, size=dead.size), n_days)
    store_weight = np.r_[0.0, np.ones(n_stores - 1)]
    late = _pick(rng, n_stores, config.late_store_share, store_weight)
    opening = np.where(
        late > 0, rng.integers(int(0.15 * n_days), int(0.75 * n_days) + 1, size=n_stores), 0
    ).astype(np.int64)
    t = np.arange(n_days)
    is_open = t[None, :] >= opening[:, None]
    new_year = np.asarray((days.month == 1) & (days.day == 1))
    is_open[1:, new_year] = False
    alive = (t[None, :] < death[:, None]) & (zero[:, None] == 0)
    return is_open[:, None, :] & alive.reshape(n_stores, n_fam, n_days), opening


def _zero_weight(family: str) -> float:
    """Relative chance that a (store, family) series is never sold."""
    return ZERO_SERIES_WEIGHT.get(family, 1.0)


def _promotions(
    config: SyntheticConfig,
    days: pd.DatetimeIndex,
    fams: list[str],
    *,
    scale: FloatArray,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Draw onpromotion counts: weekly campaigns per family; big stores promote more.

    Whether a series is on promotion is drawn per week (campaigns run for a week), the count per
    day; FAMILY_TABLE's shares include the years before promotions were recorded, hence / 0.7.
    """
    n_stores, n_fam, n_days = len(scale), len(fams), len(days)
    mean = np.array([FAMILY_TABLE[name][1] for name in fams])
    share = np.array([FAMILY_TABLE[name][2] for name in fams])
    week = (np.arange(n_days) + days[0].dayofweek) // 7
    n_weeks = int(week[-1]) + 1
    campaign = rng.lognormal(0.0, 0.4, size=(n_fam, n_weeks))
    p_on = np.clip(share[:, None] / 0.7 * campaign, 0.0, 0.97)
    is_on = (rng.random((n_stores, n_fam, n_weeks)) < p_on[None])[:, :, week]
    series = rng.lognormal(0.0, 0.3, size=(n_stores, n_fam, 1)) * np.sqrt(scale)[:, None, None]
    size = np.divide(mean, share, out=np.zeros_like(mean), where=share > 0) - 1.0
    rate = np.clip(size, 0.0, None)[None, :, None] * series * campaign[None, :, week]
    counts = np.where(is_on, 1 + rng.poisson(rate), 0)
    counts[:, :, np.asarray(days < pd.Timestamp(config.promo_start))] = 0
    return counts.astype(np.int64)


def _sales(
    log_mu: FloatArray,
    fams: list[str],
    *,
    active: npt.NDArray[np.bool_],
    config: SyntheticConfig,
    rng: np.random.Generator,
) -> FloatArray:
    """Gamma-Poisson draws around the level: counts, or kg with 3 decimals for weighed families."""
    # Low-volume families are more overdispersed (more zero days), like the real data.
    mean = np.array([FAMILY_TABLE[name][0] for name in fams])
    shape = np.clip(config.noise_shape * mean / (mean + 20.0), 4.0, None)[None, :, None]
    level = np.exp(log_mu) * active * rng.gamma(shape, 1.0 / shape, size=log_mu.shape)
    counts = rng.poisson(level).astype(np.float64)
    is_kg = np.array([name in FRACTIONAL_FAMILIES for name in fams])[None, :, None]
    return np.where(is_kg & (counts > 0), np.round(level, 3), counts)


def _log_level(
    fams: list[str],
    *,
    stores: pd.DataFrame,
    scale: FloatArray,
    effects: FloatArray,
    promo: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> FloatArray:
    """Log mean sales: family and store level, a series effect, time effects, promotion lift.

    The level is corrected for the mean of the series effect and of the promotion lift, so the
    mean sales of a family stay near the real family mean in FAMILY_TABLE.
    """
    sd = 0.4
    means = np.log([FAMILY_TABLE[name][0] for name in fams])
    series = rng.normal(-0.5 * sd**2, sd, size=(len(stores), len(fams)))
    strong = np.array([name in STRONG_PROMO_FAMILIES for name in fams])
    # beta = log-lift at the family's typical count; more items on promotion lift a bit more.
    beta = np.where(strong, 0.5, 0.25) * rng.uniform(0.8, 1.2, size=len(fams))
    typical = np.array([FAMILY_TABLE[name][1] / max(FAMILY_TABLE[name][2], 1e-3) for name in fams])
    lift = (beta / np.log1p(np.maximum(typical, 1.0)))[None, :, None] * np.log1p(promo)
    lift_mean = lift.mean(axis=(0, 2))
    base = means[None, :] - lift_mean[None, :] + np.log(scale)[:, None] + series
    return np.asarray(base[:, :, None] + effects + lift, dtype=np.float64)


def generate_frames(config: SyntheticConfig, block: int = 0) -> dict[str, pd.DataFrame]:
    """All six Kaggle files as frames, with the dtypes ``pd.read_csv`` gives for the real ones."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(9)]
    if block:  # an item block (synthetic_parts): its own series draws, the shared calendar
        seqs = np.random.SeedSequence([config.seed, block]).spawn(4)
        rngs[4], rngs[5], rngs[7], rngs[8] = (np.random.default_rng(s) for s in seqs)
    days, is_train = _calendar(config)
    fams = config.families()
    stores, scale = store_table(config.n_stores, rngs[0])
    quake = _quake(config, days, stores, rngs[1])
    holidays = cal.holidays_frame(
        years=range(days[0].year - 1, days[-1].year + 1),
        cities=sorted(set(stores["city"])),
        states=sorted(set(stores["state"])),
        quake=quake,
        rng=rngs[2],
    )
    holidays, lift, closed, gap = shapes.apply_shape(
        config, days, is_train=is_train, stores=stores, holidays=holidays
    )
    active, opening = _activity(config, days, fams, rngs[3])
    active &= ~(closed | gap)[:, None, :]
    promo = _promotions(config, days, fams, scale=scale, rng=rngs[4]) * active
    log_mu = _log_level(
        fams,
        stores=stores,
        scale=scale,
        effects=(
            cal.family_day_effect(days, fams, holidays, rngs[6])[None, :, :]
            + cal.store_day_effect(
                days, stores, holidays, opening=opening, horizon=config.horizon, rng=rngs[6]
            )[:, None, :]
            + cal.quake_effect(days, fams, stores, quake)
            + _latent(active.shape, config, rngs[7])
            + lift[:, None, :]
        ),
        promo=promo,
        rng=rngs[5],
    )
    sales = _sales(log_mu, fams, active=active, config=config, rng=rngs[8])
    is_open = np.broadcast_to(~closed[:, None, :], sales.shape).astype(np.int64)
    train, test = shapes.sales_frames(
        config,
        days,
        fams,
        is_train=is_train,
        arrays={TARGET: sales, PROMO: promo, shapes.OPEN: is_open},
        # without an open column a closed store-day has no row (as 25 December in Kaggle's)
        absent=gap if config.closed_sundays else gap | closed,
    )
    frames = {
        "train": train,
        "test": test,
        "stores": stores[list(STORES_COLUMNS)],
        "oil": oil_frame(days, rngs[1])[list(OIL_COLUMNS)],
        "holidays_events": holidays[list(HOLIDAYS_COLUMNS)],
        "transactions": transactions_frame(sales, days, is_train=is_train, rng=rngs[2])[
            list(TRANSACTIONS_COLUMNS)
        ],
    }
    logger.debug("synthetic frames generated rows=%d seed=%d", len(train), config.seed)
    return frames


def write_dataset(out_dir: Path, config: SyntheticConfig) -> dict[str, Path]:
    """Write the Kaggle-layout files (items_per_store: train_parts/) and synthetic_config.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    parts = config.items_per_store > 0  # the sales in parts, block by block
    frames = write_parts(out_dir, config, generate_frames) if parts else generate_frames(config)
    for name, frame in frames.items():
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n")
        path.chmod(0o644)  # mkstemp creates 0600; these are ordinary shareable data files
        paths[name] = path
    paths |= {"train_parts": out_dir / shapes.TRAIN_PARTS_DIR} if parts else {}
    paths["config"] = out_dir / "synthetic_config.json"
    dumped = config.model_dump(mode="json")
    default = SyntheticConfig()
    for name in SHAPE_FIELDS:
        if getattr(config, name) == getattr(default, name):
            dumped.pop(name)
    write_json_atomic(paths["config"], dumped)
    paths["config"].chmod(0o644)
    logger.info("synthetic data written dir=%s seed=%d", out_dir, config.seed)
    return paths


def shaped_config(
    shape: str = "favorita-like", *, full: bool = False, seed: int = 0, **overrides: Any
) -> SyntheticConfig:
    """Return a ``--shape`` preset (synthetic_shapes.SHAPES) over the default, then ``overrides``.

    Raises ValueError naming the allowed shapes, or pydantic's ValidationError for a bad field.
    """
    if shape not in shapes.SHAPES:
        raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(shapes.SHAPES)}")
    base = default_config(full=full, seed=seed).model_dump()
    return SyntheticConfig(**(base | shapes.SHAPES[shape] | overrides))
