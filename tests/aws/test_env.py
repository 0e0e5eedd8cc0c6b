"""Client factory settings, plain AWS env names, s3:// URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from retail_forecast.aws.env import (
    AwsEnvSettings,
    is_s3_uri,
    join_key,
    make_s3_client,
    parse_s3_uri,
    resolve_aws_config,
)
from retail_forecast.config import AwsConfig
from retail_forecast.errors import ConfigError


def test_p27_client_uses_standard_retries_and_explicit_timeouts() -> None:
    config = AwsConfig(
        endpoint_url="http://127.0.0.1:9", connect_timeout_s=1.5, read_timeout_s=33.0
    )
    env = AwsEnvSettings(  # type: ignore[call-arg]
        _env_file=None,
        aws_access_key_id="a",
        aws_secret_access_key="b",  # noqa: S106 - a dummy key for a client that sends nothing
    )
    client = make_s3_client(config, env)
    meta = client.meta.config
    assert meta.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (meta.connect_timeout, meta.read_timeout) == (1.5, 33.0)
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "us-east-1"


def test_plain_names_fill_only_unset_fields() -> None:
    env = AwsEnvSettings(  # type: ignore[call-arg]
        _env_file=None,
        xgboost_endpoint_name="xgb-plain",
        lstm_endpoint_name="lstm-plain",
        sagemaker_role_arn="arn:aws:iam::1:role/plain",
    )
    config = resolve_aws_config(AwsConfig(lstm_endpoint_name="lstm-rf"), env)
    assert config.xgboost_endpoint_name == "xgb-plain"
    assert config.lstm_endpoint_name == "lstm-rf"
    assert config.role_arn == "arn:aws:iam::1:role/plain"
    untouched = resolve_aws_config(AwsConfig(), AwsEnvSettings(_env_file=None))  # type: ignore[call-arg]
    assert untouched == AwsConfig()


def test_plain_names_read_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("XGBOOST_ENDPOINT_NAME", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("XGBOOST_ENDPOINT_NAME=from-dotenv\nAWS_ACCESS_KEY_ID=AKIAFROMDOTENV\n")
    env = AwsEnvSettings(_env_file=dotenv)  # type: ignore[call-arg]
    assert env.xgboost_endpoint_name == "from-dotenv"
    assert env.aws_access_key_id == "AKIAFROMDOTENV"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bkt/a/b/", ("bkt", "a/b")),
        ("s3://bkt", ("bkt", "")),
        ("s3://bkt/models/v1/model.tar.gz", ("bkt", "models/v1/model.tar.gz")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected
    assert is_s3_uri(uri)


@pytest.mark.parametrize("uri", ["/local/dir", "s3:/bkt", "s3:///key", "http://bkt/x"])
def test_parse_s3_uri_refuses(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_s3_uri(uri)


def test_join_key_drops_empty_parts() -> None:
    assert join_key("", "/p/", "models", "v1") == "p/models/v1"
