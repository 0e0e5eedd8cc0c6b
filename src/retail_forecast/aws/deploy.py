"""SageMaker deploy: exact training-job, model and endpoint requests, and their runner.

The requests (CreateTrainingJob, CreateModel, CreateEndpointConfig, CreateEndpoint) are built
from settings; ``run_deploy_plan`` sends them with a boto3 ``sagemaker`` client.

Both training jobs run our script-mode entry points from ``sourcedir.tar.gz`` (the package and
``requirements.txt``) the way the SageMaker Python SDK launches framework estimators: the
``sagemaker_program`` / ``sagemaker_submit_directory`` hyperparameters, every hyperparameter
JSON-encoded. Image defaults are AWS's PyTorch CPU framework containers (Python 3.11, which our
package requires; the XGBoost framework image ships an older Python), so the XGBoost job runs
in the same framework container on ``ml.m5.xlarge``; set ``RF_AWS__XGBOOST_IMAGE_URI`` to use
another image.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError, WaiterError

from retail_forecast.aws.datasets import DATA
from retail_forecast.aws.env import join_key
from retail_forecast.aws.sourcedir import (
    HANDLER_PROGRAM,
    SOURCEDIR,
    TRAIN_LSTM_PROGRAM,
    TRAIN_XGBOOST_PROGRAM,
)
from retail_forecast.config import AwsConfig, LSTMConfig, XGBoostConfig
from retail_forecast.errors import ConfigError, ForecastError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

DLC_ACCOUNT: Final = "763104351884"  # AWS Deep Learning Containers, most commercial regions
DLC_REGIONS: Final = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
        "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
    }
)  # fmt: skip
PYTORCH_TAG: Final = "2.3.0-cpu-py311"
LOG_LEVEL: Final = "20"
TAGS: Final = ({"Key": "project", "Value": "retail-forecast"},)
CREATE_OPERATIONS: Final = {
    "CreateTrainingJob": "create_training_job",
    "CreateModel": "create_model",
    "CreateEndpointConfig": "create_endpoint_config",
    "CreateEndpoint": "create_endpoint",
}


@dataclass(frozen=True)
class DeployRequest:
    """One SageMaker API call: its operation name and exact parameters."""

    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class DeployPlan:
    """Every request ``aws deploy`` sends, in order, and where the source dir goes."""

    source_uri: str
    requests: tuple[DeployRequest, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_dir": self.source_uri,
            "requests": [{"operation": r.operation, "request": r.params} for r in self.requests],
        }


def _image(configured: str | None, region: str, repository: str) -> str:
    if configured:
        return configured
    if region not in DLC_REGIONS:
        raise ConfigError(
            f"no default {repository} image for region {region!r}: set the image URI "
            "(RF_AWS__XGBOOST_IMAGE_URI / RF_AWS__PYTORCH_TRAINING_IMAGE_URI / "
            "RF_AWS__PYTORCH_INFERENCE_IMAGE_URI)"
        )
    return f"{DLC_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repository}:{PYTORCH_TAG}"


def hyperparameters(section: XGBoostConfig | LSTMConfig) -> dict[str, Any]:
    """Scalar settings of a model section (the training script's CLI arguments)."""
    dumped = section.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if isinstance(v, str | int | float | bool)}


def sdk_hyperparameters(
    user: dict[str, Any], *, program: str, source_uri: str, job_name: str, region: str
) -> dict[str, str]:
    """Hyperparameters as the SageMaker SDK sends them for script mode (JSON-encoded)."""
    framework = {
        "sagemaker_program": program,
        "sagemaker_submit_directory": source_uri,
        "sagemaker_container_log_level": int(LOG_LEVEL),
        "sagemaker_job_name": job_name,
        "sagemaker_region": region,
    }
    return {k: json.dumps(v) for k, v in {**user, **framework}.items()}


def _training_job(
    aws: AwsConfig,
    *,
    name: str,
    image: str,
    instance_type: str,
    hyperparams: dict[str, str],
) -> dict[str, Any]:
    bucket = _bucket(aws)
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": _role(aws),
        "HyperParameters": hyperparams,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/{join_key(aws.prefix, DATA)}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": _output_path(aws)},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": aws.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": aws.max_runtime_s},
        "Tags": [dict(tag) for tag in TAGS],
    }


def _hosting(
    aws: AwsConfig, *, endpoint: str, stamp: str, job_name: str, source_uri: str
) -> list[DeployRequest]:
    model_name = f"{endpoint}-{stamp}"
    image = _image(aws.pytorch_inference_image_uri, aws.region, "pytorch-inference")
    model = {
        "ModelName": model_name,
        "ExecutionRoleArn": _role(aws),
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": f"{_output_path(aws)}/{job_name}/output/model.tar.gz",
            "Environment": {
                "SAGEMAKER_PROGRAM": HANDLER_PROGRAM,
                "SAGEMAKER_SUBMIT_DIRECTORY": source_uri,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": LOG_LEVEL,
                "SAGEMAKER_REGION": aws.region,
            },
        },
        "Tags": [dict(tag) for tag in TAGS],
    }
    config = {
        "EndpointConfigName": model_name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": aws.endpoint_instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": [dict(tag) for tag in TAGS],
    }
    endpoint_request = {"EndpointName": endpoint, "EndpointConfigName": model_name}
    return [
        DeployRequest("CreateModel", model),
        DeployRequest("CreateEndpointConfig", config),
        DeployRequest("CreateEndpoint", endpoint_request),
    ]


def _bucket(aws: AwsConfig) -> str:
    if not aws.bucket:
        raise ConfigError("no S3 bucket: set RF_AWS__BUCKET (or pass --bucket)")
    return aws.bucket


def _role(aws: AwsConfig) -> str:
    if not aws.role_arn:
        raise ConfigError("no SageMaker execution role: set RF_AWS__ROLE_ARN or SAGEMAKER_ROLE_ARN")
    return aws.role_arn


def _output_path(aws: AwsConfig) -> str:
    return f"s3://{_bucket(aws)}/{join_key(aws.prefix, 'sagemaker', 'output')}"


def source_dir_uri(aws: AwsConfig, sha256: str) -> str:
    """Content-addressed S3 location of ``sourcedir.tar.gz``."""
    return f"s3://{_bucket(aws)}/{join_key(aws.prefix, 'code', sha256[:16], SOURCEDIR)}"


def build_deploy_plan(
    *,
    aws: AwsConfig,
    xgboost: XGBoostConfig,
    lstm: LSTMConfig,
    horizon: int,
    source_sha256: str,
    stamp: str,
) -> DeployPlan:
    """All requests for two training jobs and two endpoints; ``stamp`` makes names unique.

    Both jobs get ``--horizon`` (``forecast.horizon``): the bundles they publish record it.
    """
    source_uri = source_dir_uri(aws, source_sha256)
    jobs = {
        "xgboost": (
            _image(aws.xgboost_image_uri, aws.region, "pytorch-training"),
            aws.xgboost_instance_type,
            TRAIN_XGBOOST_PROGRAM,
            {**hyperparameters(xgboost), "horizon": horizon},
            aws.xgboost_endpoint_name,
        ),
        "lstm": (
            _image(aws.pytorch_training_image_uri, aws.region, "pytorch-training"),
            aws.lstm_instance_type,
            TRAIN_LSTM_PROGRAM,
            {**hyperparameters(lstm), "horizon": horizon},
            aws.lstm_endpoint_name,
        ),
    }
    training: list[DeployRequest] = []
    hosting: list[DeployRequest] = []
    for kind, (image, instance, program, user, endpoint) in jobs.items():
        job_name = f"rf-{kind}-{stamp}"
        params = sdk_hyperparameters(
            user, program=program, source_uri=source_uri, job_name=job_name, region=aws.region
        )
        training.append(
            DeployRequest(
                "CreateTrainingJob",
                _training_job(
                    aws, name=job_name, image=image, instance_type=instance, hyperparams=params
                ),
            )
        )
        hosting += _hosting(
            aws, endpoint=endpoint, stamp=stamp, job_name=job_name, source_uri=source_uri
        )
    return DeployPlan(source_uri=source_uri, requests=(*training, *hosting))


def _wait_for_training(
    client: SageMakerClient, names: list[str], *, delay_s: int, max_attempts: int
) -> None:
    waiter = client.get_waiter("training_job_completed_or_stopped")
    for name in names:
        try:
            waiter.wait(
                TrainingJobName=name, WaiterConfig={"Delay": delay_s, "MaxAttempts": max_attempts}
            )
        except WaiterError as exc:  # Failed, or still running after the last attempt
            logger.warning("waiting for training job %s ended: %s", name, exc)
        described = client.describe_training_job(TrainingJobName=name)
        status = described["TrainingJobStatus"]
        if status != "Completed":
            reason = described.get("FailureReason", "no reason given")
            raise ForecastError(f"training job {name} ended {status}: {reason}")
        logger.info("training job completed name=%s", name)


def _create_or_update_endpoint(client: SageMakerClient, params: dict[str, Any]) -> None:
    try:
        client.create_endpoint(**params)
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if "already existing" not in message:
            raise
        logger.info("endpoint exists, updating name=%s", params["EndpointName"])
        client.update_endpoint(**params)


def run_deploy_plan(
    plan: DeployPlan,
    *,
    client: SageMakerClient,
    wait_delay_s: int = 60,
    wait_max_attempts: int = 720,
) -> None:
    """Send the plan's requests in order; wait for the training jobs before hosting them."""
    started: list[str] = []
    waited = False
    for request in plan.requests:
        if request.operation != "CreateTrainingJob" and started and not waited:
            _wait_for_training(
                client, started, delay_s=wait_delay_s, max_attempts=wait_max_attempts
            )
            waited = True
        logger.info("sagemaker %s", request.operation)
        if request.operation == "CreateEndpoint":
            _create_or_update_endpoint(client, request.params)
            continue
        getattr(client, CREATE_OPERATIONS[request.operation])(**request.params)
        if request.operation == "CreateTrainingJob":
            started.append(request.params["TrainingJobName"])
