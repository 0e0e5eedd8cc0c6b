"""Settings (reads env, .env and a data set's TOML profile) and its frozen sections."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from retail_forecast.errors import ConfigError
from retail_forecast.settings_profile import (
    ACTIVE_PROFILE,
    ColumnMapping,
    FileMapping,
    ProfileSource,
    unmapped,
)


class Section(BaseModel):
    """A frozen settings section handed to library code."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(Section):
    data_dir: str = "data/default"
    processed_dir: Path = Path("data/processed")
    quarantine_dir: Path = Path("data/quarantine")
    max_quarantine_share: float = Field(default=0.001, ge=0.0, le=1.0)
    # promise 21: any duplicate-key or unknown-store row fails the run (after quarantine).
    fail_on_key_rules: bool = True
    # A user layout (README "Bring your own data"); left out of the dump when empty, so the
    # Kaggle layout's import run ids stay what they were (promise 23)
    columns: ColumnMapping = Field(default=ColumnMapping(), exclude_if=unmapped)
    files: FileMapping = Field(default=FileMapping(), exclude_if=unmapped)


Days = Annotated[int, Field(ge=1)]
# What each name computes: features/builder.py (FeatureBuilder), from features/calendar.py.
DateFeature = Literal["day_of_week", "month", "year", "day_of_month", "is_national_holiday"]


class FeatureConfig(Section):
    """The XGBoost features, declared as data (as mlforecast's lags, lag_transforms, date_features).

    Lags and means read log1p(sales) of days before the forecast day; promo means read
    onpromotion up to the forecast day (known in advance). Columns come in this order: lags,
    rolling means, seasonal means, promo means, date features, then onpromotion, store_nbr and
    family, which every set holds. The defaults won the backtest (bench/RESULTS.md,
    backtest_xgboost and features); ``FEATURE_PRESETS["required"]`` is the seed's 11 features.
    """

    lags: tuple[Days, ...] = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)  # lag_k: day t-k
    rolling_means: tuple[Days, ...] = (7, 14, 28, 56)  # roll_w_mean: days t-1 .. t-w
    seasonal_means: tuple[Days, ...] = (4, 8)  # dow_mean_n: the same weekday, last n weeks
    date_features: tuple[DateFeature, ...] = (
        "day_of_week",
        "month",
        "year",
        "day_of_month",  # paydays fall on the 15th and the month end
        "is_national_holiday",  # from the holidays table given to the model
    )
    # promo_mean_w: mean onpromotion of days t-w+1 .. t, known in advance (bench/RESULTS.md,
    # features: better on every fold of the real data and of three generated shapes)
    promo_means: tuple[Days, ...] = (7, 28)

    @field_validator(
        "lags",
        "rolling_means",
        "seasonal_means",
        "date_features",
        "promo_means",
    )
    @classmethod
    def _no_repeats(cls, values: tuple[object, ...]) -> tuple[object, ...]:
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"repeats {', '.join(repeated)}: one column per value")
        return values

    @model_validator(mode="after")
    def _reads_history(self) -> FeatureConfig:
        if not (self.lags or self.rolling_means or self.seasonal_means):
            raise ValueError("lags, rolling_means and seasonal_means are all empty: declare one")
        return self


FEATURE_PRESETS: dict[str, FeatureConfig] = {
    "required": FeatureConfig(
        lags=(1, 7, 14),
        rolling_means=(7, 14),
        seasonal_means=(),
        date_features=("day_of_week", "month", "year"),
        promo_means=(),
    ),
    "extended": FeatureConfig(),
}


class XGBoostConfig(Section):
    # eta 0.1 + early_stop_once: the 10-minute train budget (bench/RESULTS.md, train_full)
    n_estimators: int = Field(default=2000, ge=1)  # early stopping ends at ~200-450
    learning_rate: float = Field(default=0.1, gt=0)
    max_depth: int = Field(default=8, ge=1)
    min_child_weight: float = 1.0
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    max_bin: int = Field(default=256, ge=16)
    early_stopping_rounds: int = Field(default=50, ge=1)
    nthread: int = Field(default=2, ge=1)
    seed: int = 0
    # The training window, relative to the data's end: the last train_days days before the
    # origin (valid slice included); None trains on all history. train_start is an absolute
    # first day for a data set's profile (profiles/favorita.toml); with both, the later wins.
    train_days: int | None = Field(default=None, ge=1)
    train_start: str | None = None
    dead_series_days: int = Field(default=21, ge=0)
    valid_days: int = Field(default=16, ge=1)  # early stopping on the last days before the origin
    refit_full: bool = True  # retrain on train + valid slice with the best round count
    # A fixed round count: no early stopping, every row (valid slice included) is trained on.
    rounds: int | None = Field(default=None, ge=1)
    # train/backtest: early-stop once, on the oldest backtest fold (its valid days precede every
    # test window); the later folds and the final fit train that many rounds (`rounds`)
    early_stop_once: bool = True
    drop_before_first_sale: bool = True  # a series' days before its first sale are not trained
    # training days left out, as inclusive ISO (start, end) pairs: a data set's own shocks (its
    # profile's, e.g. Favorita's April 2016 earthquake), never a code default
    exclude_ranges: tuple[tuple[str, str], ...] = ()

    @model_validator(mode="after")
    def _window_holds_valid_slice(self) -> XGBoostConfig:
        if self.train_days is not None and self.train_days <= self.valid_days:
            raise ValueError(
                f"train_days ({self.train_days}) must exceed valid_days ({self.valid_days}): "
                "the early-stopping slice is the window's last valid_days days"
            )
        return self

    @field_validator("train_start")
    @classmethod
    def _iso_start(cls, value: str | None) -> str | None:
        if value is not None:
            _iso_day(value, "train_start")
        return value

    @field_validator("exclude_ranges")
    @classmethod
    def _ordered_ranges(cls, ranges: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for start, end in ranges:
            if _iso_day(start, "exclude_ranges") > _iso_day(end, "exclude_ranges"):
                raise ValueError(f"exclude_ranges: ({start}, {end}) ends before it starts")
        return ranges


def _iso_day(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


class LSTMConfig(Section):
    window: int = Field(default=56, ge=7)
    hidden_size: int = Field(default=64, ge=4)
    embedding_dim: int = Field(default=8, ge=1)
    num_layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    batch_size: int = Field(default=512, ge=1)
    epochs: int = Field(default=4, ge=1)  # 12: ~0.01 better alone, 3x the time (bench)
    windows_per_epoch: int = Field(default=65536, ge=1)
    windows_per_series: int = Field(default=36, ge=1)  # per epoch, capped by the above
    learning_rate: float = Field(default=3e-3, gt=0)
    patience: int = Field(default=3, ge=1)
    seed: int = 0
    # 1 thread: on a busy 2-core machine 2 threads ran ~20x slower (bench/RESULTS.md lstm_quick)
    num_threads: int = Field(default=1, ge=1)
    # Per-series scaler: mean/std of log1p sales over the last scaler_days training days.
    scaler_days: int = Field(default=365, ge=7)
    min_std: float = Field(default=0.1, gt=0)
    # Training origins are drawn with weight 0.5 ** (age / recency_halflife_days).
    recency_halflife_days: float = Field(default=365.0, gt=0)
    level_days: int = Field(default=14, ge=0)  # the net predicts around the mean of the last days
    skip_days: int = Field(default=14, ge=0)  # last scaled days fed straight to the horizon head
    grad_clip: float = Field(default=1.0, gt=0)
    lr_decay: float = Field(default=1.0, gt=0, le=1)  # learning rate x lr_decay after every epoch
    day_of_month: bool = True  # day-of-month embedding (paydays): -0.007 RMSLE on F1
    dead_series_days: int = Field(default=21, ge=0)  # no sale on its open days this long -> 0
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ForecastConfig(Section):
    """The data set's forecast horizon: a fact of the data set, so a profile may set it.

    Days after the history's last day that train, backtest, forecast and serve cover; the
    backtest's windows, XGBoost's recursion and the LSTM's direct head follow it, and a bundle
    records it (serving reads the bundle's, never this setting).
    """

    horizon: int = Field(default=16, ge=1, le=366)


class BacktestConfig(Section):
    folds: int = Field(default=4, ge=1)
    step: int | None = Field(default=None, ge=1)  # days between fold starts; None: the horizon
    # train/backtest fit XGBoost and the LSTM side by side, each in its own thread; XGBoost
    # then gets xgboost.nthread - lstm.num_threads threads (>= 1) so the two fill the cores
    parallel_models: bool = True


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=50_000, ge=1)
    request_timeout_s: float = Field(default=10.0, gt=0)
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    # inference threads per worker; 2 measured best on 2 cores (bench/RESULTS.md serve)
    threads: int = Field(default=2, ge=1)
    # XGBoost's threads for a request of several series (e.g. all series); single-series
    # requests never reach XGBoost (bench/RESULTS.md, serve). Not related to micro-batching.
    # Also the threads of an explanation's TreeSHAP (models/explain.py).
    xgboost_threads: int = Field(default=2, ge=1)
    # server processes (uvicorn workers); each loads the bundle and shares the history file
    workers: int = Field(default=1, ge=1, le=32)
    # per worker; more gets 503 + Retry-After (promise 6)
    max_in_flight: int = Field(default=64, ge=1)
    # /predict bodies of up to micro_batch_body_bytes that arrive while the pool is busy are
    # answered together, up to this many per model call (0: each alone); bench/RESULTS.md serve
    micro_batch_requests: int = Field(default=16, ge=0)
    micro_batch_body_bytes: int = Field(default=16_384, ge=0)
    # a keep-alive connection gets `Connection: close` after this many requests (0: never), so
    # clients reconnect and the kernel spreads connections over the workers again
    max_requests_per_connection: int = Field(default=0, ge=0)
    retry_after_s: int = Field(default=1, ge=1)
    # LocalPredictor's history store: <history_dir>/<bundle version>.sqlite (survives restarts)
    history_dir: Path = Path("data/history")
    # "sagemaker": models run on the endpoints named in AwsConfig (plain PREDICTOR_BACKEND too)
    predictor_backend: Literal["local", "sagemaker"] = "local"

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> ApiConfig:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError("cors_origins='*' cannot be combined with credentials")
        return self


class AwsConfig(Section):
    region: str = "us-east-1"
    endpoint_url: str | None = None
    bucket: str | None = None
    prefix: str = "retail-forecast"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 70.0
    max_attempts: int = Field(default=3, ge=1)
    # SageMaker (`aws deploy`, SageMakerPredictor). The plain names XGBOOST_ENDPOINT_NAME,
    # LSTM_ENDPOINT_NAME and SAGEMAKER_ROLE_ARN fill these when RF_AWS__... is not set
    # (retail_forecast.aws.env.resolve_aws_config). Credentials never live here: boto3 reads
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE from the environment or .env.
    role_arn: str | None = None
    xgboost_image_uri: str | None = None  # None: the PyTorch CPU training image (see deploy.py)
    pytorch_training_image_uri: str | None = None
    pytorch_inference_image_uri: str | None = None
    xgboost_instance_type: str = "ml.m5.xlarge"
    lstm_instance_type: str = "ml.m5.xlarge"
    endpoint_instance_type: str = "ml.m5.large"
    xgboost_endpoint_name: str = "retail-forecast-xgboost"
    lstm_endpoint_name: str = "retail-forecast-lstm"
    max_runtime_s: int = Field(default=6 * 3600, ge=60)
    # SageMakerPredictor: InvokeEndpoint body cap per call (SageMaker allows 6 MB), the time
    # budget of one call's retries, and the runtime endpoint (None: AWS, or boto3's
    # AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME; the tests point it at a local stand-in,
    # tests/inference/sagemaker_runtime_server.py)
    invoke_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=6_000_000)
    invoke_budget_s: float = Field(default=8.0, gt=0)
    runtime_endpoint_url: str | None = None
    volume_size_gb: int = Field(default=30, ge=1)


class MonitoringConfig(Section):
    db_path: Path = Path("data/monitoring.sqlite")
    drift_threshold: float = Field(default=0.1, gt=0)
    degradation_ratio: float = Field(default=1.2, gt=1)
    window_days: int = Field(default=7, ge=1)
    # Drift (monitoring/drift.py). Evidently's defaults: Wasserstein (normed) for numeric and
    # Jensen-Shannon for categorical columns above 1,000 rows, threshold 0.1 for each.
    numeric_test: Literal["wasserstein", "psi", "ks"] = "wasserstein"
    categorical_test: Literal["jensenshannon", "psi"] = "jensenshannon"
    feature_tests: dict[str, Literal["wasserstein", "psi", "ks", "jensenshannon"]] = {}
    feature_thresholds: dict[str, float] = {}  # per-feature override of drift_threshold
    # zero-sales share and share of rows on promotion: absolute change; mean onpromotion:
    # relative change; vanished series: share of the reference's series absent from the window
    zero_share_threshold: float = Field(default=0.05, gt=0)
    promo_share_threshold: float = Field(default=0.1, gt=0)
    promo_mean_threshold: float = Field(default=0.25, gt=0)
    vanished_series_threshold: float = Field(default=0.05, gt=0)
    # per family: low-volume families swing 0.1-0.2 month to month on the real data
    zero_share_family_threshold: float = Field(default=0.2, gt=0)
    # |change of mean log1p(sales)|: 0.1 = a ~10% level shift, which the pooled per-feature
    # tests miss (the spread across series dwarfs it: 0.1 is ~0.04 reference std)
    sales_level_threshold: float = Field(default=0.1, gt=0)
    min_rows: int = Field(default=100, ge=1)  # fewer non-missing values -> insufficient_data
    drift_window_days: int = Field(default=28, ge=1)  # recent days `monitor drift` compares
    min_accuracy_rows: int = Field(default=100, ge=1)  # joined rows needed before an alert
    db_timeout_s: float = Field(default=2.0, gt=0)  # SQLite busy timeout, then the write drops
    # API: served predictions wait for the log writer thread in a queue bounded by rows;
    # past it a batch is dropped (counted, logged), never waited for (promise 26)
    log_queue_rows: int = Field(default=200_000, ge=1)
    # series_jump check (monitoring/checks.py): a series whose highest recent sales exceed
    # factor x max(its median over the drift window, floor), or factor x the reference's top
    # sales quantile. 50: no series in most 28-day windows of the Favorita data, up to 3 real
    # outliers around December; factor 10 flags 3-50 series in every window
    series_jump_factor: float = Field(default=50.0, gt=1)
    series_jump_floor: float = Field(default=10.0, ge=0)


class ActualsConfig(Section):
    """Plausibility of POST /api/v1/actuals (storage/plausibility.py).

    A value above spike_factor x max(the series' highest sales in the stored history window,
    spike_floor) is refused (422) unless its row says ``confirm_spike``; 10 and 10 refuse ~20
    real days in two years of Favorita data, besides the first days of new stores.
    """

    spike_factor: float = Field(default=10.0, gt=1)
    spike_floor: float = Field(default=10.0, ge=0)


class Settings(BaseSettings):
    """Every setting: CLI flags > env (``RF_XGBOOST__MAX_DEPTH=8``) > ``.env`` > profile > defaults.

    The profile is a data set's TOML file (``[xgboost]`` etc.), given by :func:`settings_for`.
    """

    model_config = SettingsConfigDict(
        env_prefix="RF_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    log_level: str = "INFO"
    log_dir: Path = Path("logs")
    artifacts_dir: Path = Path("artifacts")
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    xgboost: XGBoostConfig = XGBoostConfig()
    lstm: LSTMConfig = LSTMConfig()
    forecast: ForecastConfig = ForecastConfig()
    backtest: BacktestConfig = BacktestConfig()
    api: ApiConfig = ApiConfig()
    aws: AwsConfig = AwsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    actuals: ActualsConfig = ActualsConfig()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        allowed = {"DEBUG", "INFO", "WARNING", "ERROR"}
        if value.upper() not in allowed:
            raise ValueError(f"log_level must be one of {sorted(allowed)}, got {value!r}")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        profile = ACTIVE_PROFILE.get()
        if profile is None:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        source = ProfileSource(settings_cls, toml_file=profile)
        return init_settings, env_settings, dotenv_settings, source, file_secret_settings


def settings_for(profile: Path | None = None, **init: Any) -> Settings:
    """Build Settings with ``profile`` (a TOML file) under env and ``.env``; None: no profile."""
    if profile is not None and not profile.is_file():
        raise ConfigError(f"profile {profile}: no such file")
    token = ACTIVE_PROFILE.set(profile)
    try:
        return Settings(**init)
    finally:
        ACTIVE_PROFILE.reset(token)
