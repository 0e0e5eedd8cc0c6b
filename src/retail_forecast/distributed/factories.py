"""The model factories of ``--engine dask``: XGBoost fitted on the cluster, the LSTM here.

Apart from :mod:`retail_forecast.distributed.dask_xgboost` (the code the workers run) so that
no worker imports the LSTM's PyTorch: its import cost seconds on every new worker before the
first feature task (bench/scale.py, the dask engine on Favorita).
"""

from __future__ import annotations

from retail_forecast.distributed.cluster import DaskEngine
from retail_forecast.distributed.dask_xgboost import DaskXGBForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.training.factories import ModelFactories, XGBoostFactory


class DaskXGBoostFactory(XGBoostFactory):
    """XGBoostFactory's models (and round-count carry-over), fitted on the cluster."""

    def __init__(self, local: XGBoostFactory, engine: DaskEngine) -> None:
        super().__init__(local.config, local.features, local.holidays, horizon=local.horizon)
        self.engine = engine

    def __call__(self) -> XGBForecaster:
        plain = super().__call__()
        model = DaskXGBForecaster(
            plain.config,
            plain.features,
            horizon=plain.horizon,
            holidays=plain.holidays,
            engine=self.engine,
        )
        if self.first is plain:  # the carry-over reads the model that is fitted
            self.first = model
        return model


def dask_factories(factories: ModelFactories, engine: DaskEngine) -> ModelFactories:
    """Return the same factories, XGBoost on the cluster; the LSTM stays in this process."""
    return ModelFactories(DaskXGBoostFactory(factories.xgboost, engine), factories.lstm)
