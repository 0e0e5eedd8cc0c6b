"""SageMaker deploy requests: checked by botocore's Stubber against the real service model."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from typer.testing import CliRunner

from retail_forecast.aws import workflows
from retail_forecast.aws.deploy import (
    DeployPlan,
    DeployRequest,
    build_deploy_plan,
    run_deploy_plan,
)
from retail_forecast.aws.env import parse_s3_uri
from retail_forecast.cli import app
from retail_forecast.config import AwsConfig, LSTMConfig, Settings, XGBoostConfig
from retail_forecast.errors import ConfigError, ForecastError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
STAMP = "20261126t210000"
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RF_AWS__ROLE_ARN", ROLE)
    monkeypatch.setenv("RF_AWS__PREFIX", "team/forecast")
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("XGBOOST_ENDPOINT_NAME", "LSTM_ENDPOINT_NAME", "SAGEMAKER_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)


def _sagemaker() -> Any:
    return botocore.session.get_session().create_client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - dummy; Stubber answers every call
    )


def _described(request: dict[str, Any], status: str = "Completed") -> dict[str, Any]:
    name = request["TrainingJobName"]
    output = request["OutputDataConfig"]["S3OutputPath"]
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"{ARN}:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "StoppingCondition": request["StoppingCondition"],
        "CreationTime": dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
        **({"FailureReason": "AlgorithmError: out of memory"} if status == "Failed" else {}),
    }


def _stub_plan(stubber: Stubber, requests: list[dict[str, Any]]) -> None:
    """Expect every request of a dry-run plan, in order, with its exact parameters."""
    jobs = [r["request"] for r in requests if r["operation"] == "CreateTrainingJob"]
    for job in jobs:
        name = job["TrainingJobName"]
        stubber.add_response(
            "create_training_job", {"TrainingJobArn": f"{ARN}:training-job/{name}"}, job
        )
    for job in jobs:  # the waiter's poll, then our status check
        for _ in range(2):
            stubber.add_response(
                "describe_training_job",
                _described(job),
                {"TrainingJobName": job["TrainingJobName"]},
            )
    responses = {
        "CreateModel": ("create_model", "ModelArn", "model/{ModelName}"),
        "CreateEndpointConfig": (
            "create_endpoint_config",
            "EndpointConfigArn",
            "endpoint-config/{EndpointConfigName}",
        ),
        "CreateEndpoint": ("create_endpoint", "EndpointArn", "endpoint/{EndpointName}"),
    }
    for item in requests[len(jobs) :]:
        method, key, suffix = responses[item["operation"]]
        arn = f"{ARN}:{suffix.format(**item['request'])}"
        stubber.add_response(method, {key: arn}, item["request"])


def _dry_run_json(*extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["aws", "deploy", "--dry-run", "--stamp", STAMP, *extra])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_deploy_sends_exactly_the_dry_run_requests(deploy_env: None, s3: Any, bucket: str) -> None:
    dry = _dry_run_json("--bucket", bucket)
    operations = [r["operation"] for r in dry["requests"]]
    assert operations == [
        "CreateTrainingJob",
        "CreateTrainingJob",
        *["CreateModel", "CreateEndpointConfig", "CreateEndpoint"] * 2,
    ]

    sagemaker = _sagemaker()
    with Stubber(sagemaker) as stubber:
        _stub_plan(stubber, dry["requests"])  # validates each request against the model
        settings = Settings()
        aws = workflows.aws_settings(settings, bucket=bucket, prefix=None)
        sent = workflows.deploy(
            settings, aws=aws, dry_run=False, stamp=STAMP, s3=s3, sagemaker=sagemaker
        )
        stubber.assert_no_pending_responses()
    assert sent == dry

    source_bucket, key = parse_s3_uri(dry["source_dir"])
    body = s3.get_object(Bucket=source_bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert {"train_xgboost.py", "train_lstm.py", "handler.py", "requirements.txt"} <= names
    assert "retail_forecast/aws/deploy.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_training_requests_follow_settings_and_script_mode(deploy_env: None) -> None:
    dry = _dry_run_json("--bucket", "rf-bucket")
    xgb_job, lstm_job = (r["request"] for r in dry["requests"][:2])

    assert xgb_job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert xgb_job["RoleArn"] == ROLE
    assert "pytorch-training" in lstm_job["AlgorithmSpecification"]["TrainingImage"]
    channel = xgb_job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://rf-bucket/team/forecast/data/"
    hyper = {k: json.loads(v) for k, v in xgb_job["HyperParameters"].items()}  # SDK encoding
    assert hyper["sagemaker_program"] == "train_xgboost.py"
    assert hyper["sagemaker_submit_directory"] == dry["source_dir"]
    assert hyper["max_depth"] == XGBoostConfig().max_depth
    lstm_hyper = {k: json.loads(v) for k, v in lstm_job["HyperParameters"].items()}
    assert lstm_hyper["sagemaker_program"] == "train_lstm.py"
    assert lstm_hyper["window"] == LSTMConfig().window

    model = dry["requests"][2]["request"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://rf-bucket/team/forecast/sagemaker/output/{xgb_job['TrainingJobName']}"
        "/output/model.tar.gz"
    )
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "handler.py"
    endpoint = dry["requests"][4]["request"]
    assert endpoint["EndpointName"] == "retail-forecast-xgboost"


def test_plain_endpoint_names_and_role_from_env(
    deploy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RF_AWS__ROLE_ARN")
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", ROLE + "-plain")
    monkeypatch.setenv("XGBOOST_ENDPOINT_NAME", "xgb-prod")
    monkeypatch.setenv("RF_AWS__LSTM_ENDPOINT_NAME", "lstm-from-rf")
    monkeypatch.setenv("LSTM_ENDPOINT_NAME", "lstm-plain-loses")
    dry = _dry_run_json("--bucket", "rf-bucket")
    endpoints = [r["request"] for r in dry["requests"] if r["operation"] == "CreateEndpoint"]
    assert [e["EndpointName"] for e in endpoints] == ["xgb-prod", "lstm-from-rf"]
    assert dry["requests"][0]["request"]["RoleArn"] == ROLE + "-plain"


def _plan() -> Any:
    aws = AwsConfig(bucket="rf-bucket", role_arn=ROLE)
    return build_deploy_plan(
        aws=aws,
        xgboost=XGBoostConfig(),
        lstm=LSTMConfig(),
        horizon=16,
        source_sha256="ab" * 32,
        stamp=STAMP,
    )


def test_failed_training_job_stops_before_hosting() -> None:
    plan = _plan()
    jobs = [r.params for r in plan.requests if r.operation == "CreateTrainingJob"]
    sagemaker = _sagemaker()
    with Stubber(sagemaker) as stubber:
        for job in jobs:
            stubber.add_response(
                "create_training_job", {"TrainingJobArn": f"{ARN}:training-job/x"}, job
            )
        for _ in range(2):
            stubber.add_response("describe_training_job", _described(jobs[0], "Failed"))
        with pytest.raises(ForecastError, match="ended Failed: AlgorithmError: out of memory"):
            run_deploy_plan(plan, client=sagemaker, wait_delay_s=1, wait_max_attempts=1)
        stubber.assert_no_pending_responses()  # no CreateModel was sent


def test_existing_endpoint_is_updated() -> None:
    plan = _plan()
    hosting = [r for r in plan.requests if r.operation != "CreateTrainingJob"][:3]
    sagemaker = _sagemaker()
    with Stubber(sagemaker) as stubber:
        stubber.add_response("create_model", {"ModelArn": f"{ARN}:model/m"}, hosting[0].params)
        stubber.add_response(
            "create_endpoint_config", {"EndpointConfigArn": f"{ARN}:ec/e"}, hosting[1].params
        )
        stubber.add_client_error(
            "create_endpoint",
            service_error_code="ValidationException",
            service_message='Cannot create already existing endpoint "arn:...".',
            http_status_code=400,
            expected_params=hosting[2].params,
        )
        stubber.add_response(
            "update_endpoint", {"EndpointArn": f"{ARN}:endpoint/e"}, hosting[2].params
        )
        run_deploy_plan(DeployPlan(plan.source_uri, tuple(hosting)), client=sagemaker)
        stubber.assert_no_pending_responses()


def test_missing_role_or_bucket_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ROLE_ARN"):
        build_deploy_plan(
            aws=AwsConfig(bucket="b-b-b"),
            xgboost=XGBoostConfig(),
            lstm=LSTMConfig(),
            horizon=16,
            source_sha256="ab" * 32,
            stamp=STAMP,
        )
    with pytest.raises(ConfigError, match="bucket"):
        build_deploy_plan(
            aws=AwsConfig(role_arn=ROLE),
            xgboost=XGBoostConfig(),
            lstm=LSTMConfig(),
            horizon=16,
            source_sha256="ab" * 32,
            stamp=STAMP,
        )


def test_unknown_region_needs_explicit_images() -> None:
    with pytest.raises(ConfigError, match="IMAGE_URI"):
        build_deploy_plan(
            aws=AwsConfig(bucket="rf-bucket", role_arn=ROLE, region="af-south-1"),
            xgboost=XGBoostConfig(),
            lstm=LSTMConfig(),
            horizon=16,
            source_sha256="ab" * 32,
            stamp=STAMP,
        )


def test_stubber_rejects_a_malformed_request() -> None:
    plan = _plan()
    job = dict(plan.requests[0].params)
    job["ResourceConfig"] = {**job["ResourceConfig"], "InstanceCount": "1"}  # str, not int
    sagemaker = _sagemaker()
    with Stubber(sagemaker) as stubber:
        stubber.add_response("create_training_job", {"TrainingJobArn": f"{ARN}:tj/x"}, job)
        with pytest.raises(ParamValidationError, match="InstanceCount"):
            run_deploy_plan(
                DeployPlan(plan.source_uri, (DeployRequest("CreateTrainingJob", job),)),
                client=sagemaker,
            )
