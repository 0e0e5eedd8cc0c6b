"""Typer command modules of ``retail-forecast``; ``retail_forecast.cli`` registers them."""
