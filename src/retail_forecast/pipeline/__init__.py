"""Pipelines: build the dataset, fit and write a bundle, batch forecasts."""
