"""Training: backtest, job settings, SageMaker-style entry points."""
