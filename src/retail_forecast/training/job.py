"""SageMaker script-mode plumbing shared by ``train_xgboost`` and ``train_lstm``.

:class:`JobSettings` wraps the ``SM_*`` variables with local fallbacks, so the same script runs
as a SageMaker training job and on a laptop:

==========================  ===============================  ================================
SageMaker variable          meaning                          local default
==========================  ===============================  ================================
``SM_MODEL_DIR``            bundle root (tarred by SageMaker) ``artifacts/jobs/<model>``
``SM_CHANNEL_TRAIN``        Kaggle-layout CSVs (``aws        ``--data-dir`` or settings'
                            upload``'s ``data/``)            ``data.data_dir``
``SM_CHANNEL_VALIDATION``   optional: later days, scored      ``--validation-dir`` or none
``SM_OUTPUT_DATA_DIR``      extra outputs (metrics.json)      ``<model dir>/output``
==========================  ===============================  ================================

The model directory receives a normal verified bundle: ``BundleWriter(root=SM_MODEL_DIR)``
publishes ``<SM_MODEL_DIR>/<version>/`` (the model's files, ``history.parquet``, ``config.json``,
``metrics.json``, ``manifest.json`` last) and ``<SM_MODEL_DIR>/current``; SageMaker packs it as
``model.tar.gz`` and the hosting handler's ``model_fn`` opens ``/opt/ml/model/current``.

Hyperparameters arrive as ``--<field> value`` for every scalar field of the model's config
section (booleans as "true"/"false", JSON-quoted strings and "null" accepted); unknown
arguments (``--sagemaker_program``, ...) are logged and ignored. ``--horizon`` (else the
settings' ``forecast.horizon``) sets the forecast horizon the bundle records. On failure the
message goes to ``/opt/ml/output/failure`` when ``/opt/ml/output`` exists
(``RF_SM_FAILURE_FILE`` overrides the path) and the process exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from retail_forecast.artifacts import BundleWriter
from retail_forecast.bundle_contents import serving_metadata, write_history_tail
from retail_forecast.config import DataConfig, ForecastConfig, Settings
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.errors import ArtifactError, ConfigError, DataValidationError
from retail_forecast.schema import DATE, TARGET
from retail_forecast.training.metrics import rmsle
from retail_forecast.utils.io import write_json_atomic
from retail_forecast.utils.log import configure_logging

logger = logging.getLogger(__name__)

DEFAULT_FAILURE_FILE: Final = Path("/opt/ml/output/failure")
FAILURE_ENV: Final = "RF_SM_FAILURE_FILE"
MAX_FAILURE_CHARS: Final = 4000
SectionT = TypeVar("SectionT", bound=BaseModel)


@dataclass(frozen=True)
class JobSettings:
    """Where a training job reads and writes (``SM_*`` or local defaults)."""

    model_dir: Path
    train_dir: Path
    validation_dir: Path | None
    output_data_dir: Path
    failure_file: Path

    @classmethod
    def from_env(
        cls,
        model: str,
        *,
        environ: Mapping[str, str] | None = None,
        data_dir: str | None = None,
        validation_dir: str | None = None,
        model_dir: str | None = None,
        default_data_dir: str = "data/default",
    ) -> JobSettings:
        """Read ``SM_*``; explicit arguments (``--data-dir`` ...) win over the environment."""
        env = os.environ if environ is None else environ
        root = Path(model_dir or env.get("SM_MODEL_DIR") or Path("artifacts") / "jobs" / model)
        train = data_dir or env.get("SM_CHANNEL_TRAIN") or default_data_dir
        valid = validation_dir or env.get("SM_CHANNEL_VALIDATION")
        output = env.get("SM_OUTPUT_DATA_DIR") or str(root / "output")
        failure = env.get(FAILURE_ENV) or str(DEFAULT_FAILURE_FILE)
        return cls(root, Path(train), Path(valid) if valid else None, Path(output), Path(failure))


def scalar_fields(section: type[BaseModel]) -> list[str]:
    """Fields passed as hyperparameters: those whose default is not a tuple, list or dict."""
    return [
        name
        for name, info in section.model_fields.items()
        if not isinstance(info.default, tuple | list | dict)
    ]


def _decode(value: str) -> Any:
    """Undo SageMaker's JSON encoding of a hyperparameter where there is one."""
    text = value.strip()
    if text.lower() in {"null", "none"}:
        return None
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_args(
    section: type[SectionT], base: SectionT, argv: Sequence[str] | None
) -> tuple[SectionT, argparse.Namespace]:
    """Hyperparameters over ``base``; returns the new section and the path options."""
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir")
    parser.add_argument("--validation-dir", "--validation_dir", dest="validation_dir")
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir")
    parser.add_argument("--horizon", dest="horizon")
    names = scalar_fields(section)
    for name in names:
        parser.add_argument(f"--{name}", dest=f"hp_{name}")
    known, unknown = parser.parse_known_args(argv)
    if unknown:
        logger.info("ignoring arguments this script does not use: %s", " ".join(unknown)[:500])
    update = {n: _decode(getattr(known, f"hp_{n}")) for n in names if getattr(known, f"hp_{n}")}
    try:
        merged = section.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(f"invalid hyperparameters: {exc}") from None
    logger.info("hyperparameters %s", json.dumps(update, default=str))
    return merged, known


def job_horizon(known: argparse.Namespace, settings: Settings) -> int:
    """``--horizon`` when given, else the settings' ``forecast.horizon`` (validated alike)."""
    if known.horizon is None:
        return settings.forecast.horizon
    try:
        return ForecastConfig(horizon=_decode(known.horizon)).horizon
    except ValidationError as exc:
        raise ConfigError(f"invalid --horizon {known.horizon!r}: {exc}") from None


def write_failure(job: JobSettings, message: str) -> bool:
    """Write SageMaker's failure reason when the output directory exists."""
    if not job.failure_file.parent.is_dir():
        return False
    job.failure_file.write_text(message[:MAX_FAILURE_CHARS], encoding="utf-8")
    return True


def score_validation(
    predict: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
    history: pd.DataFrame,
    validation: BuiltDataset,
    *,
    horizon: int,
) -> dict[str, Any]:
    """RMSLE over the validation channel's days ``origin+1 .. origin+horizon``."""
    origin = history[DATE].max()
    later = validation.sales[
        (validation.sales[DATE] > origin)
        & (validation.sales[DATE] <= origin + pd.Timedelta(days=horizon))
    ].reset_index(drop=True)
    if later.empty:
        raise DataValidationError(f"validation data has no days after {origin.date()}")
    forecast = predict(history, later.drop(columns=[TARGET]))
    score = rmsle(later[TARGET].to_numpy(), forecast[TARGET].to_numpy())
    logger.info("validation rmsle=%.5f rows=%d", score, len(later))
    return {"validation_rmsle": score, "validation_rows": len(later)}


@dataclass(frozen=True)
class JobResult:
    """What a job published."""

    version: str
    path: Path
    metrics: dict[str, Any]


def publish(
    job: JobSettings,
    dataset: BuiltDataset,
    *,
    model_type: str,
    horizon: int,
    save: Callable[[Path], list[Path]],
    metadata: Mapping[str, Any],
    config: Mapping[str, Any],
    metrics: dict[str, Any],
) -> JobResult:
    """Write the model's files, the history tail and the manifest under ``job.model_dir``."""
    sales = dataset.sales
    meta = {
        "model_type": model_type,
        **serving_metadata(sales, horizon),
        "metrics": metrics,
        **metadata,
    }
    with BundleWriter(
        job.model_dir,
        fingerprint=dataset.fingerprint,
        metadata=meta,
        config=config,
        metrics=metrics,
    ) as writer:
        save(writer.directory)
        write_history_tail(writer.directory, sales)
    if writer.version is None or writer.path is None:
        raise ArtifactError(f"{job.model_dir}: the bundle was not published")
    job.output_data_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(job.output_data_dir / "metrics.json", {"version": writer.version, **metrics})
    logger.info("job published version=%s path=%s", writer.version, writer.path)
    return JobResult(writer.version, writer.path, metrics)


def run_entry_point(
    model: str, train: Callable[[Settings, Sequence[str] | None], JobResult]
) -> Callable[[Sequence[str] | None], int]:
    """Wrap ``train`` as a ``main(argv) -> exit code`` with the failure-file contract."""

    def main(argv: Sequence[str] | None = None) -> int:
        failure = JobSettings.from_env(model)
        try:
            settings = Settings()
            configure_logging(settings.log_level, None)
            result = train(settings, argv)
        except Exception as exc:  # the job's boundary: every failure is reported, exit 1
            logger.exception("training job failed")
            message = f"{type(exc).__name__}: {exc}"
            if write_failure(failure, message):
                logger.info("failure reason written to %s", failure.failure_file)
            return 1
        logger.info("training job done version=%s", result.version)
        return 0

    return main


def job_from_args(model: str, known: argparse.Namespace, settings: Settings) -> JobSettings:
    """``SM_*`` paths, overridden by ``--data-dir`` / ``--validation-dir`` / ``--model-dir``."""
    return JobSettings.from_env(
        model,
        data_dir=known.data_dir,
        validation_dir=known.validation_dir,
        model_dir=known.model_dir,
        default_data_dir=settings.data.data_dir,
    )


def load_data(
    job: JobSettings, data: DataConfig, *, horizon: int
) -> tuple[BuiltDataset, BuiltDataset | None]:
    """Read the train and the optional validation channel through ``build_dataset``."""
    logger.info("reading train=%s validation=%s", job.train_dir, job.validation_dir)
    train = build_dataset(job.train_dir, data, horizon=horizon)
    valid = build_dataset(job.validation_dir, data, horizon=horizon) if job.validation_dir else None
    return train, valid
