"""``retail-forecast aws upload | deploy``: the CLI layer; the work is ``aws.workflows``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retail_forecast.commands.common import ConfigOption, load_settings, print_json

app = typer.Typer(help="S3 storage (data + model.tar.gz) and SageMaker deploy.")

BucketOpt = Annotated[str | None, typer.Option("--bucket", help="S3 bucket (RF_AWS__BUCKET).")]
PrefixOpt = Annotated[str | None, typer.Option("--prefix", help="Key prefix (RF_AWS__PREFIX).")]


@app.command("upload")
def aws_upload(
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", help="Bundle dir or artifacts root (current).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Processed or Kaggle-layout data dir.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Upload train.csv/test.csv and the current bundle as model.tar.gz, manifests last."""
    from retail_forecast.aws import workflows

    settings = load_settings(json_output=True, config=config, data_dir=data_dir)
    aws = workflows.aws_settings(settings, bucket=bucket, prefix=prefix)
    print_json(workflows.upload(settings, aws=aws, artifacts=artifacts, data_dir=data_dir))


@app.command("deploy")
def aws_deploy(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact requests as JSON; send nothing.")
    ] = False,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    stamp: Annotated[
        str | None, typer.Option("--stamp", help="Name suffix (default: UTC yyyymmddthhmmss).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create the SageMaker training jobs, models, endpoint configs and endpoints.

    The training jobs' settings (horizon, training window, excluded periods) are the data
    set's: pass its profile with ``--config``.
    """
    from retail_forecast.aws import workflows

    settings = load_settings(json_output=True, config=config)
    aws = workflows.aws_settings(settings, bucket=bucket, prefix=prefix)
    print_json(workflows.deploy(settings, aws=aws, dry_run=dry_run, stamp=stamp))
