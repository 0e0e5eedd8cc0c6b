"""Column names, dtypes and series keys of the canonical sales frame."""

from __future__ import annotations

from typing import Final

DATE: Final = "date"
STORE: Final = "store_nbr"
FAMILY: Final = "family"
TARGET: Final = "sales"
PROMO: Final = "onpromotion"
ID: Final = "id"
IS_CLOSED: Final = "is_closed"

SERIES_KEYS: Final = (STORE, FAMILY)
ROW_KEYS: Final = (DATE, STORE, FAMILY)
SORT_KEYS: Final = (STORE, FAMILY, DATE)
SeriesKey = tuple[int, str]  # one series: (store_nbr, family)

# Columns of the raw Kaggle train file and of test.csv.
TRAIN_COLUMNS: Final = (ID, DATE, STORE, FAMILY, TARGET, PROMO)
TEST_COLUMNS: Final = (ID, DATE, STORE, FAMILY, PROMO)
STORES_COLUMNS: Final = (STORE, "city", "state", "type", "cluster")
OIL_COLUMNS: Final = (DATE, "dcoilwtico")
HOLIDAYS_COLUMNS: Final = (DATE, "type", "locale", "locale_name", "description", "transferred")
TRANSACTIONS_COLUMNS: Final = (DATE, STORE, "transactions")

# The canonical (processed) sales frame: one row per series and day, sorted by SORT_KEYS.
CANONICAL_COLUMNS: Final = (DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED)

# The horizon is a setting (config.ForecastConfig.horizon) that a bundle records, not a constant.
