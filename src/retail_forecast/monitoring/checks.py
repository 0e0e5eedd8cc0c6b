"""Forecast-specific drift checks: zero-sales share, promotion intensity, new/vanished series.

And ``series_jump``: a series whose recent sales jump far above its own level or above anything
the reference saw, the mark an absurd actual (a typo confirmed as a spike, or one older than
the plausibility rule) leaves; the pooled per-feature tests barely move for one series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.reference import (
    LOG_SALES,
    PROMO_MEAN,
    PROMO_SHARE,
    SALES_LEVEL,
    ZERO_SHARE,
    ReferenceProfile,
    forecast_stats,
    series_key,
    series_keys,
)
from retail_forecast.schema import FAMILY, STORE, TARGET

OK, DRIFT, NEW_CATEGORY = "ok", "drift", "new_category"
SERIES_JUMP = "series_jump"
MAX_EXAMPLES = 20
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


def _log_sales(current: pd.DataFrame) -> pd.Series | None:
    if LOG_SALES in current:
        return pd.to_numeric(current[LOG_SALES], errors="coerce")
    if TARGET in current:
        sales = pd.to_numeric(current[TARGET], errors="coerce").clip(lower=0)
        return pd.Series(np.log1p(sales.to_numpy(dtype=np.float64)), index=current.index)
    return None


def _jump_examples(peak: pd.Series, level: pd.Series, jump: pd.Series) -> list[dict[str, Any]]:
    worst = jump.sort_values(ascending=False).index[:MAX_EXAMPLES]
    return [
        {
            "series": series_key(store, family),
            "peak_sales": float(np.expm1(peak[(store, family)])),
            "median_sales": float(np.expm1(level[(store, family)])),
        }
        for store, family in worst
    ]


def series_jump_check(
    ref: ReferenceProfile, current: pd.DataFrame, config: MonitoringConfig
) -> CheckResult:
    """Flag series whose highest sales in the window jump far above their level.

    Per series, in log1p space: the peak is its highest value in the window, its level the
    median over the window (a jump of a few days leaves the median where it was) floored at
    ``series_jump_floor``; the reference's top is its highest ``log_sales`` quantile. A series
    is flagged when its peak exceeds its level, or the reference's top, by more than
    log(``series_jump_factor``): 1e12 sales for a series that sells 3,000 a day is flagged the
    day it becomes history. Statistic: the largest such excess (log units).
    """
    threshold = math.log(config.series_jump_factor)
    values = _log_sales(current)
    if values is None or STORE not in current or FAMILY not in current:
        return CheckResult(SERIES_JUMP, None, threshold, False, MISSING)
    frame = pd.DataFrame(
        {STORE: current[STORE], FAMILY: current[FAMILY].astype(str), "log": values}
    ).dropna()
    if frame.empty:
        return CheckResult(SERIES_JUMP, None, threshold, False, INSUFFICIENT)
    grouped = frame.groupby([STORE, FAMILY], sort=False)["log"]
    peak, level = grouped.max(), grouped.median()
    jump = peak - level.clip(lower=math.log1p(config.series_jump_floor))
    sketch = ref.numeric.get(LOG_SALES)
    top = float(sketch.quantiles[-1]) if sketch is not None and len(sketch.quantiles) else None
    if top is not None and math.isfinite(top):
        jump = jump.clip(lower=peak - top)
    flagged = jump[jump > threshold]
    drifted = not flagged.empty
    return CheckResult(
        SERIES_JUMP,
        float(jump.max()),
        threshold,
        drifted,
        DRIFT if drifted else OK,
        reference=None if top is None else float(np.expm1(top)),
        details={"count": len(flagged), "examples": _jump_examples(peak, level, flagged)},
    )


def forecast_checks(
    ref: ReferenceProfile, current: pd.DataFrame, config: MonitoringConfig
) -> list[CheckResult]:
    """Zero-sales share, sales level, promotion intensity, series jumps and the series sets."""
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
    return [*checks, series_jump_check(ref, current, config), *_series_checks(ref, current, config)]
