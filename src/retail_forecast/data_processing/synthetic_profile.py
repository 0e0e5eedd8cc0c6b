"""The synthetic data set's own profile (``retail_forecast.toml``), written next to its files.

The generator's earthquake-like shock and its test.csv's horizon are facts of the data set, as
Favorita's earthquake is of Favorita's: its profile, not a code default, states them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from retail_forecast.data_processing.synthetic import SyntheticConfig, shock_day
from retail_forecast.settings_profile import PROFILE_FILE
from retail_forecast.utils.io import atomic_path

# Days left out of XGBoost's training from the shock on: the Favorita profile's earthquake
# window, so the default data trains exactly as it did when that window was a code default.
SHOCK_EXCLUDED_DAYS = 46


def shock_period(config: SyntheticConfig) -> tuple[dt.date, dt.date] | None:
    """Return the inclusive days the profile leaves out of training (None: no shock)."""
    day = shock_day(config)
    if day is None:
        return None
    return day, day + dt.timedelta(days=SHOCK_EXCLUDED_DAYS - 1)


def write_profile(out_dir: Path, config: SyntheticConfig) -> Path:
    """Write ``<out_dir>/retail_forecast.toml``, which the commands pick up next to the data."""
    period = shock_period(config)
    ranges = f'[["{period[0]}", "{period[1]}"]]' if period is not None else "[]"
    text = (
        "# Written by `retail-forecast data generate`: this synthetic data set's own profile.\n"
        "[forecast]\n"
        "# the days of its test.csv\n"
        f"horizon = {config.horizon}\n"
        "[xgboost]\n"
        "# its earthquake-like shock (synthetic_calendar.quake_effect), left out of training\n"
        f"exclude_ranges = {ranges}\n"
    )
    path = Path(out_dir) / PROFILE_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    path.chmod(0o644)  # mkstemp creates 0600; an ordinary shareable file like the data
    return path
