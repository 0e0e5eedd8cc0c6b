"""Forecast-specific drift checks: zero-sales share, promotion intensity, new/vanished series."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.reference import (
    PROMO_MEAN,
    PROMO_SHARE,
    SALES_LEVEL,
    ZERO_SHARE,
    ReferenceProfile,
    forecast_stats,
    series_keys,
)
from retail_forecast.schema import FAMILY, STORE

OK, DRIFT, NEW_CATEGORY = "ok", "drift", "new_category"
INSUFFICIENT, MISSING, ALL_NAN = "insufficient_data", "missing", "all_nan"


@dataclass(frozen=True)
class CheckResult:
    """A forecast-specific check (zero share, promotion intensity, series sets)."""

    name: str
    statistic: float | None
    threshold: float
    drifted: bool
    status: str
    reference: float | None = None
    current: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _share_check(
    name: str,
    ref: tuple[float, dict[str, float]] | None,
    cur: tuple[float, dict[str, float]] | None,
    *,
    threshold: float,
    relative: bool = False,
) -> CheckResult:
    if ref is None or cur is None:
        return CheckResult(name, None, threshold, False, MISSING)
    r, c = ref[0], cur[0]
    if not (math.isfinite(r) and math.isfinite(c)):
        return CheckResult(name, None, threshold, False, ALL_NAN, r, c)
    stat = abs(c - r) / max(abs(r), 0.01) if relative else abs(c - r)
    drifted = stat > threshold
    return CheckResult(name, stat, threshold, drifted, DRIFT if drifted else OK, r, c)


def _family_check(
    ref: tuple[float, dict[str, float]] | None,
    current: pd.DataFrame,
    *,
    threshold: float,
    min_rows: int,
) -> CheckResult:
    """Largest per-family zero-share change among families with at least ``min_rows`` rows."""
    name = f"{ZERO_SHARE}_by_family"
    cur = forecast_stats(current).get(ZERO_SHARE)
    if ref is None or cur is None or FAMILY not in current:
        return CheckResult(name, None, threshold, False, MISSING)
    sizes = current[FAMILY].astype(str).value_counts()
    diffs = {
        fam: cur[1][fam] - ref[1][fam]
        for fam in cur[1]
        if fam in ref[1] and sizes.get(fam, 0) >= min_rows
    }
    if not diffs:
        return CheckResult(name, None, threshold, False, INSUFFICIENT)
    stat = max(abs(d) for d in diffs.values())
    flagged = {f: round(d, 4) for f, d in sorted(diffs.items()) if abs(d) > threshold}
    drifted = bool(flagged)
    return CheckResult(
        name, stat, threshold, drifted, DRIFT if drifted else OK, details={"families": flagged}
    )


def _series_checks(
    ref: ReferenceProfile, current: pd.DataFrame, config: MonitoringConfig
) -> list[CheckResult]:
    if not ref.series or STORE not in current or FAMILY not in current:
        return [
            CheckResult("new_series", None, 0.0, False, MISSING),
            CheckResult("vanished_series", None, config.vanished_series_threshold, False, MISSING),
        ]
    seen = series_keys(current.dropna(subset=[STORE, FAMILY]))
    new = sorted(seen - ref.series)
    gone = sorted(ref.series - seen)
    share_gone = len(gone) / len(ref.series)
    gone_drift = share_gone > config.vanished_series_threshold
    return [
        CheckResult(
            "new_series",
            float(len(new)),
            0.0,
            bool(new),
            NEW_CATEGORY if new else OK,
            details={"count": len(new), "examples": new[:20]},
        ),
        CheckResult(
            "vanished_series",
            share_gone,
            config.vanished_series_threshold,
            gone_drift,
            DRIFT if gone_drift else OK,
            details={"count": len(gone), "examples": gone[:20]},
        ),
    ]


def forecast_checks(
    ref: ReferenceProfile, current: pd.DataFrame, config: MonitoringConfig
) -> list[CheckResult]:
    """Zero-sales share, sales level, promotion intensity and the series sets of the window."""
    cur = forecast_stats(current)
    checks = [
        _share_check(
            ZERO_SHARE,
            ref.forecast.get(ZERO_SHARE),
            cur.get(ZERO_SHARE),
            threshold=config.zero_share_threshold,
        ),
        _family_check(
            ref.forecast.get(ZERO_SHARE),
            current,
            threshold=config.zero_share_family_threshold,
            min_rows=config.min_rows,
        ),
        _share_check(
            SALES_LEVEL,
            ref.forecast.get(SALES_LEVEL),
            cur.get(SALES_LEVEL),
            threshold=config.sales_level_threshold,
        ),
        _share_check(
            PROMO_SHARE,
            ref.forecast.get(PROMO_SHARE),
            cur.get(PROMO_SHARE),
            threshold=config.promo_share_threshold,
        ),
        _share_check(
            PROMO_MEAN,
            ref.forecast.get(PROMO_MEAN),
            cur.get(PROMO_MEAN),
            threshold=config.promo_mean_threshold,
            relative=True,
        ),
    ]
    return checks + _series_checks(ref, current, config)
