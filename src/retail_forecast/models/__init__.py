"""Forecasters: XGBoost, LSTM, the hybrid blend and baselines."""
