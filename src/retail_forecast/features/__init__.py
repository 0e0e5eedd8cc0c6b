"""Features: lags, rolling means, calendar, LSTM windows; one FeatureBuilder."""
