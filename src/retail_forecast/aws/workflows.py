"""What ``retail-forecast aws upload | deploy`` do, given the settings the CLI built."""

from __future__ import annotations

import datetime as dt
import logging
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from retail_forecast.artifacts import MANIFEST, resolve_current
from retail_forecast.aws.datasets import PROCESSED_SUMMARY, upload_dataset
from retail_forecast.aws.deploy import build_deploy_plan, run_deploy_plan
from retail_forecast.aws.env import (
    make_s3_client,
    make_sagemaker_client,
    parse_s3_uri,
    resolve_aws_config,
)
from retail_forecast.aws.s3 import get_small_object, put_file, upload_bundle
from retail_forecast.aws.sourcedir import SOURCEDIR, pack_source_dir
from retail_forecast.config import AwsConfig, Settings
from retail_forecast.errors import ArtifactError, ConfigError
from retail_forecast.utils.io import sha256_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

STAMP_PATTERN: Final = re.compile(r"[a-z0-9]{1,20}")


def aws_settings(settings: Settings, *, bucket: str | None, prefix: str | None) -> AwsConfig:
    """Return the AWS section with plain-name fallbacks and command-line overrides applied."""
    aws = resolve_aws_config(settings.aws)
    update = {k: v for k, v in {"bucket": bucket, "prefix": prefix}.items() if v is not None}
    aws = aws.model_copy(update=update) if update else aws
    if not aws.bucket:
        raise ConfigError("no S3 bucket: pass --bucket or set RF_AWS__BUCKET")
    return aws


def _bundle_dir(artifacts: Path) -> Path:
    """Return the bundle directory itself, or the version that a root's ``current`` names."""
    return artifacts if (artifacts / MANIFEST).is_file() else resolve_current(artifacts)


def upload(
    settings: Settings,
    *,
    aws: AwsConfig,
    artifacts: Path | None = None,
    data_dir: Path | None = None,
    client: S3Client | None = None,
) -> dict[str, Any]:
    """Upload the data set and the current bundle; defaults skip what does not exist yet."""
    client = client or make_s3_client(aws)
    bucket = str(aws.bucket)
    result: dict[str, Any] = {}
    data = data_dir or settings.data.processed_dir
    if data_dir is not None or (data / PROCESSED_SUMMARY).is_file():
        uploaded = upload_dataset(data, bucket=bucket, prefix=aws.prefix, client=client)
        result["data"] = {"uri": uploaded.uri, "files": sorted(uploaded.files)}
    try:
        bundle = _bundle_dir(artifacts or settings.artifacts_dir)
    except ArtifactError:
        if artifacts is not None:
            raise
        logger.warning("no current bundle under %s; model not uploaded", settings.artifacts_dir)
    else:
        published = upload_bundle(bundle, bucket=bucket, prefix=aws.prefix, client=client)
        result["bundle"] = {
            "version": published.version,
            "uri": published.uri,
            "sha256": published.sha256,
            "new": published.is_new,
        }
    if not result:
        raise ConfigError("nothing to upload: no processed data and no current bundle")
    return result


def _upload_source(client: S3Client, tarball: Path, uri: str) -> None:
    bucket, key = parse_s3_uri(uri)
    if get_small_object(client, bucket, key) is not None:  # content-addressed: same bytes
        logger.info("source dir already on S3 uri=%s", uri)
        return
    put_file(client, bucket=bucket, key=key, path=tarball, content_type="application/gzip")


def deploy(
    settings: Settings,
    *,
    aws: AwsConfig,
    dry_run: bool,
    stamp: str | None = None,
    s3: S3Client | None = None,
    sagemaker: SageMakerClient | None = None,
) -> dict[str, Any]:
    """Build the deploy plan; unless ``dry_run``, upload the source dir and send the plan."""
    stamp = stamp or dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S")
    if not STAMP_PATTERN.fullmatch(stamp):
        raise ConfigError(f"stamp must match {STAMP_PATTERN.pattern}, got {stamp[:40]!r}")
    with tempfile.TemporaryDirectory(prefix="rf-deploy-") as tmp:
        tarball = pack_source_dir(Path(tmp) / SOURCEDIR)
        plan = build_deploy_plan(
            aws=aws,
            xgboost=settings.xgboost,
            lstm=settings.lstm,
            horizon=settings.forecast.horizon,
            source_sha256=sha256_file(tarball),
            stamp=stamp,
        )
        if not dry_run:
            _upload_source(s3 or make_s3_client(aws), tarball, plan.source_uri)
            run_deploy_plan(plan, client=sagemaker or make_sagemaker_client(aws))
    return plan.to_dict()
