"""SageMaker script-mode entry point: train the XGBoost model into a bundle under SM_MODEL_DIR.

``python -m retail_forecast.training.train_xgboost [--<XGBoostConfig field> value ...]`` runs
the same way locally (see :mod:`retail_forecast.training.job` for paths and defaults). The
bundle holds ``xgboost/model.ubj``, ``preprocessor_xgboost.json``, ``history.parquet``,
``config.json``, ``metrics.json`` and the manifest; the hosting handler serves it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from retail_forecast.config import Settings, XGBoostConfig
from retail_forecast.models.xgboost import XGBForecaster
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

MODEL = "xgboost"


def train(settings: Settings, argv: Sequence[str] | None = None) -> JobResult:
    """Fit XGBForecaster on the train channel, score the validation channel, publish."""
    config, known = parse_args(XGBoostConfig, settings.xgboost, argv)
    job = job_from_args(MODEL, known, settings)
    horizon = job_horizon(known, settings)
    dataset, validation = load_data(job, settings.data, horizon=horizon)
    model = XGBForecaster(
        config, settings.features, horizon=horizon, holidays=dataset.holidays
    ).fit(dataset.sales)
    metrics: dict[str, object] = {
        "best_rounds": model.booster_.num_boosted_rounds(),
        "train_rows": model.n_train_rows_,
        "fit_seconds": round(model.fit_seconds_, 2),
    }
    if validation is not None:
        metrics.update(score_validation(model.predict, dataset.sales, validation, horizon=horizon))
    sections = {"features": settings.features.model_dump(mode="json")}
    return publish(
        job,
        dataset,
        model_type=MODEL,
        horizon=horizon,
        save=model.save,
        metadata={
            "feature_names": model.builder_.feature_names,
            "features": model.builder_.spec.to_dict(),
        },
        config={**sections, MODEL: config.model_dump(mode="json")},
        metrics=metrics,
    )


main = run_entry_point(MODEL, train)

if __name__ == "__main__":
    sys.exit(main(None))
