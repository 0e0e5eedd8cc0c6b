"""retail_forecast: daily sales forecasts per (store, product family), 16 days ahead."""

__version__ = "0.1.0"
