"""SageMaker script-mode entry point: train the LSTM into a bundle under SM_MODEL_DIR.

``python -m retail_forecast.training.train_lstm [--<LSTMConfig field> value ...]`` runs the same
way locally (see :mod:`retail_forecast.training.job` for paths and defaults). The bundle holds
``lstm/weights.safetensors``, ``preprocessor_nn.json``, ``history.parquet``, ``config.json``,
``metrics.json`` and the manifest; the hosting handler serves it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from retail_forecast.config import LSTMConfig, Settings
from retail_forecast.models.lstm import LSTMForecaster
from retail_forecast.training.job import (
    JobResult,
    job_from_args,
    job_horizon,
    load_data,
    parse_args,
    publish,
    run_entry_point,
    score_validation,
)

logger = logging.getLogger(__name__)

MODEL = "lstm"


def train(settings: Settings, argv: Sequence[str] | None = None) -> JobResult:
    """Fit LSTMForecaster on the train channel, score the validation channel, publish."""
    config, known = parse_args(LSTMConfig, settings.lstm, argv)
    job = job_from_args(MODEL, known, settings)
    horizon = job_horizon(known, settings)
    dataset, validation = load_data(job, settings.data, horizon=horizon)
    model = LSTMForecaster(config, horizon=horizon).fit(dataset.sales)
    metrics: dict[str, object] = {
        "best_epoch": getattr(model, "best_epoch_", None),
        "val_rmsle": getattr(model, "val_rmsle_", None),
    }
    if validation is not None:
        metrics.update(score_validation(model.predict, dataset.sales, validation, horizon=horizon))
    return publish(
        job,
        dataset,
        model_type=MODEL,
        horizon=horizon,
        save=model.save,
        metadata={},
        config={MODEL: config.model_dump(mode="json")},
        metrics=metrics,
    )


main = run_entry_point(MODEL, train)

if __name__ == "__main__":
    sys.exit(main(None))
