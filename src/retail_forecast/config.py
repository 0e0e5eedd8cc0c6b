"""Settings (reads env and .env) and its frozen sections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseModel):
    """A frozen settings section handed to library code."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(Section):
    data_dir: str = "data/default"
    processed_dir: Path = Path("data/processed")
    quarantine_dir: Path = Path("data/quarantine")
    max_quarantine_share: float = Field(0.001, ge=0.0, le=1.0)


class FeatureConfig(Section):
    feature_set: Literal["required", "extended"] = "required"
    horizon: int = Field(16, ge=1, le=64)


class XGBoostConfig(Section):
    n_estimators: int = Field(2000, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    max_depth: int = Field(8, ge=1)
    min_child_weight: float = 1.0
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    max_bin: int = Field(256, ge=16)
    early_stopping_rounds: int = Field(50, ge=1)
    nthread: int = Field(2, ge=1)
    seed: int = 0
    train_start: str | None = None
    dead_series_days: int = Field(21, ge=0)


class LSTMConfig(Section):
    window: int = Field(56, ge=7)
    hidden_size: int = Field(64, ge=4)
    embedding_dim: int = Field(8, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_size: int = Field(512, ge=1)
    epochs: int = Field(12, ge=1)
    windows_per_epoch: int = Field(65536, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    patience: int = Field(3, ge=1)
    seed: int = 0
    num_threads: int = Field(2, ge=1)


class BacktestConfig(Section):
    folds: int = Field(4, ge=1)
    horizon: int = Field(16, ge=1)
    step: int = Field(16, ge=1)


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_rows: int = Field(50_000, ge=1)
    request_timeout_s: float = Field(10.0, gt=0)
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    admin_enabled: bool = False
    threads: int = Field(4, ge=1)

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
    max_attempts: int = Field(3, ge=1)


class MonitoringConfig(Section):
    db_path: Path = Path("data/monitoring.sqlite")
    drift_threshold: float = Field(0.1, gt=0)
    degradation_ratio: float = Field(1.2, gt=1)
    window_days: int = Field(7, ge=1)


class Settings(BaseSettings):
    """Every setting; CLI flags > env (``RF_XGBOOST__MAX_DEPTH=8``) > ``.env`` > defaults."""

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
    backtest: BacktestConfig = BacktestConfig()
    api: ApiConfig = ApiConfig()
    aws: AwsConfig = AwsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        allowed = {"DEBUG", "INFO", "WARNING", "ERROR"}
        if value.upper() not in allowed:
            raise ValueError(f"log_level must be one of {sorted(allowed)}, got {value!r}")
        return value.upper()
