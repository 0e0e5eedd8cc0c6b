"""Boto3 clients built from AwsConfig, plain AWS env names, and s3:// URI helpers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from pydantic_settings import BaseSettings, SettingsConfigDict

from retail_forecast.config import AwsConfig
from retail_forecast.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

S3_SCHEME: Final = "s3://"
# RF_AWS__<field> wins; otherwise these plain names (what SageMaker users put in .env) apply.
PLAIN_NAMES: Final = {
    "xgboost_endpoint_name": "xgboost_endpoint_name",
    "lstm_endpoint_name": "lstm_endpoint_name",
    "sagemaker_role_arn": "role_arn",
}


class AwsEnvSettings(BaseSettings):
    """Plain (unprefixed) AWS names from the environment or ``.env``."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_profile: str | None = None
    xgboost_endpoint_name: str | None = None
    lstm_endpoint_name: str | None = None
    sagemaker_role_arn: str | None = None


def resolve_aws_config(config: AwsConfig, env: AwsEnvSettings | None = None) -> AwsConfig:
    """Fill the fields not set through ``RF_AWS__...`` from the plain names, if given."""
    env = env if env is not None else AwsEnvSettings()
    update: dict[str, Any] = {}
    for plain, field in PLAIN_NAMES.items():
        value = getattr(env, plain)
        if value and field not in config.model_fields_set:
            update[field] = value
    return config.model_copy(update=update) if update else config


def botocore_config(config: AwsConfig) -> Config:
    """Use standard retry mode (SlowDown, 5xx, throttling) and explicit timeouts (promise 27)."""
    return Config(
        region_name=config.region,
        retries={"mode": "standard", "total_max_attempts": config.max_attempts},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
    )


def _session(env: AwsEnvSettings | None) -> boto3.session.Session:
    env = env if env is not None else AwsEnvSettings()
    return boto3.session.Session(
        aws_access_key_id=env.aws_access_key_id,
        aws_secret_access_key=env.aws_secret_access_key,
        aws_session_token=env.aws_session_token,
        profile_name=env.aws_profile,
        region_name=None,
    )


def make_s3_client(config: AwsConfig, env: AwsEnvSettings | None = None) -> S3Client:
    """S3 client; ``config.endpoint_url`` lets a local S3-compatible server stand in."""
    return _session(env).client(
        "s3", endpoint_url=config.endpoint_url, config=botocore_config(config)
    )


def make_sagemaker_client(config: AwsConfig, env: AwsEnvSettings | None = None) -> SageMakerClient:
    """SageMaker control-plane client (training jobs, models, endpoints)."""
    return _session(env).client("sagemaker", config=botocore_config(config))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key/prefix`` into (bucket, key without surrounding slashes)."""
    if not uri.startswith(S3_SCHEME):
        raise ConfigError(f"not an s3:// URI: {uri[:200]!r}")
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not bucket:
        raise ConfigError(f"s3 URI without a bucket: {uri[:200]!r}")
    return bucket, key.strip("/")


def join_key(*parts: str) -> str:
    """Join key parts with single slashes, dropping empty parts."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def is_s3_uri(location: object) -> bool:
    """Tell whether ``location`` is an ``s3://...`` string."""
    return isinstance(location, str) and location.startswith(S3_SCHEME)
