"""The Dask engine: the XGBoost fit and forecast on a Dask cluster (``--engine dask``).

Optional: it needs the ``dask`` extra (``pip install 'retail-forecast[dask]'``). The engine
partitions the canonical frame by series, builds features per partition with the local
engine's FeatureBuilder, trains with ``xgboost.dask`` and forecasts per partition through the
local recursion; the fitted model is an ``XGBForecaster``, so bundles and serving are unchanged.
"""
