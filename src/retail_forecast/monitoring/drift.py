"""DriftReport: a window of recent features vs the reference profile kept in the bundle.

Everything is computed from the stored profile (reference.py), never from raw training data:

- numeric: normalised Wasserstein distance from the quantile sketch (mean |q_ref - q_cur| over
  100 levels, divided by the reference std, as Evidently's ``wasserstein`` method), PSI on the
  reference's quantile bins and the KS statistic of the binned CDFs; one of them decides
  (``MonitoringConfig.numeric_test``, per feature ``feature_tests``);
- categorical: Jensen-Shannon distance (natural log, as scipy and Evidently) or PSI; a category
  the reference never saw (a new store or family) gives status ``new_category``;
- forecast-specific checks (checks.py): zero-sales share (overall and per family), sales level
  (mean log1p sales: a level shift the pooled tests miss), series jumps (one series far above
  its own level or the reference's top: an absurd actual the pooled tests barely see),
  promotion share and mean, new and vanished series.

Thresholds default to Evidently's 0.1 (``drift_threshold``; per feature ``feature_thresholds``).
Bad input never raises: an empty window, a missing or all-NaN column and a too-small sample get
a status (``insufficient_data``, ``missing``, ``all_nan``) with ``drifted`` False.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.checks import (
    ALL_NAN,
    DRIFT,
    INSUFFICIENT,
    MISSING,
    NEW_CATEGORY,
    OK,
    CheckResult,
    forecast_checks,
)
from retail_forecast.monitoring.reference import (
    FloatArray,
    NumericProfile,
    ReferenceProfile,
    bin_shares,
    quantile_levels,
)
from retail_forecast.schema import DATE

logger = logging.getLogger(__name__)

PSI_FLOOR = 1e-4  # share floor so that an empty bin does not make PSI infinite
STD_FLOOR = 1e-3  # Evidently's floor on the reference std of the normalised Wasserstein


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test result; ``stats`` holds every distance computed for it."""

    feature: str
    kind: str
    test: str
    statistic: float | None
    threshold: float
    drifted: bool
    status: str
    n_current: int
    nan_share: float | None = None
    stats: dict[str, float] = field(default_factory=dict)
    new_categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`check_drift`; ``status`` is ok, drift or insufficient_data."""

    status: str
    current_rows: int
    reference_rows: int
    features: list[FeatureDrift]
    checks: list[CheckResult]
    window: tuple[str, str] | None = None
    reference_window: tuple[str | None, str | None] = (None, None)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted_checks(self) -> list[str]:
        return [c.name for c in self.checks if c.drifted]

    @property
    def share_drifted(self) -> float:
        tested = [f for f in self.features if f.statistic is not None]
        return sum(f.drifted for f in tested) / len(tested) if tested else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (non-finite numbers become None)."""
        out = {
            "status": self.status,
            "current_rows": self.current_rows,
            "reference_rows": self.reference_rows,
            "window": list(self.window) if self.window else None,
            "reference_window": list(self.reference_window),
            "drifted_features": self.drifted_features,
            "drifted_checks": self.drifted_checks,
            "share_drifted": self.share_drifted,
            "features": [asdict(f) for f in self.features],
            "checks": [asdict(c) for c in self.checks],
        }
        return dict(_clean(out))


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    return obj


def psi(ref: FloatArray, cur: FloatArray) -> float:
    """Compute the population stability index of two share vectors over the same bins."""
    r = np.maximum(ref, PSI_FLOOR)
    c = np.maximum(cur, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref: FloatArray, cur: FloatArray) -> float:
    """Jensen-Shannon distance (natural log, in [0, sqrt(ln 2)]) of two share vectors."""
    p = ref / ref.sum() if ref.sum() > 0 else ref
    q = cur / cur.sum() if cur.sum() > 0 else cur
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max(0.5 * (kl_p + kl_q), 0.0)))


def _numeric_stats(ref: NumericProfile, values: FloatArray) -> dict[str, float]:
    cur_shares = bin_shares(values, ref.edges)
    cdf_gap = np.abs(np.cumsum(cur_shares) - np.cumsum(ref.shares))
    cur_q = np.quantile(values, quantile_levels(len(ref.quantiles)))
    wasserstein = float(np.mean(np.abs(cur_q - ref.quantiles))) / max(ref.std, STD_FLOOR)
    return {
        "wasserstein": wasserstein,
        "psi": psi(ref.shares, cur_shares),
        "ks": float(cdf_gap.max()),
        "mean_reference": ref.mean,
        "mean_current": float(values.mean()),
    }


def _threshold(name: str, config: MonitoringConfig) -> float:
    return float(config.feature_thresholds.get(name, config.drift_threshold))


def _no_test(name: str, kind: str, test: str, *, status: str, n: int, **kw: Any) -> FeatureDrift:
    return FeatureDrift(name, kind, test, None, kw.pop("threshold"), False, status, n, **kw)


def numeric_drift(
    name: str, ref: NumericProfile, current: pd.Series | None, config: MonitoringConfig
) -> FeatureDrift:
    """Test one numeric column of the window against its reference profile."""
    test = config.feature_tests.get(name, config.numeric_test)
    threshold = _threshold(name, config)
    if current is None:
        return _no_test(name, "numeric", test, status=MISSING, n=0, threshold=threshold)
    values = pd.to_numeric(current, errors="coerce").to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    nan_share = 1.0 - len(finite) / len(values) if len(values) else None
    common = {"threshold": threshold, "nan_share": nan_share}
    if len(values) and not len(finite):
        return _no_test(name, "numeric", test, status=ALL_NAN, n=0, **common)
    if len(finite) < config.min_rows or ref.n == 0 or len(ref.quantiles) == 0:
        return _no_test(name, "numeric", test, status=INSUFFICIENT, n=len(finite), **common)
    stats = _numeric_stats(ref, finite)
    stat = stats[test]
    drifted = stat > threshold
    status = DRIFT if drifted else OK
    return FeatureDrift(
        name, "numeric", test, stat, threshold, drifted, status, len(finite), nan_share, stats
    )


def categorical_drift(
    name: str, ref: dict[str, float], current: pd.Series | None, config: MonitoringConfig
) -> FeatureDrift:
    """Test one categorical column; categories unseen in the reference -> ``new_category``."""
    test = config.feature_tests.get(name, config.categorical_test)
    threshold = _threshold(name, config)
    if current is None:
        return _no_test(name, "categorical", test, status=MISSING, n=0, threshold=threshold)
    present = current.dropna().astype(str)
    nan_share = 1.0 - len(present) / len(current) if len(current) else None
    common = {"threshold": threshold, "nan_share": nan_share}
    if len(current) and not len(present):
        return _no_test(name, "categorical", test, status=ALL_NAN, n=0, **common)
    if len(present) < config.min_rows or not ref:
        return _no_test(name, "categorical", test, status=INSUFFICIENT, n=len(present), **common)
    counts = present.value_counts(normalize=True)
    new = tuple(sorted(str(k) for k in counts.index if k not in ref))
    keys = [*ref, *new]
    ref_shares = np.array([ref.get(k, 0.0) for k in keys], dtype=np.float64)
    cur_shares = np.asarray(counts.reindex(keys, fill_value=0.0), dtype=np.float64)
    stats = {
        "jensenshannon": jensen_shannon(ref_shares, cur_shares),
        "psi": psi(ref_shares, cur_shares),
    }
    stat = stats.get(test, stats["jensenshannon"])
    drifted = stat > threshold or bool(new)
    status = NEW_CATEGORY if new else (DRIFT if drifted else OK)
    return FeatureDrift(
        name,
        "categorical",
        test,
        stat,
        threshold,
        drifted,
        status,
        len(present),
        nan_share,
        stats,
        new,
    )


def check_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    *,
    config: MonitoringConfig,
) -> DriftReport:
    """Compare a window of features (served requests or a data batch) with the reference."""
    ref = (
        reference
        if isinstance(reference, ReferenceProfile)
        else ReferenceProfile.from_frame(reference)
    )
    features = [
        numeric_drift(name, prof, current.get(name), config) for name, prof in ref.numeric.items()
    ]
    features += [
        categorical_drift(name, shares, current.get(name), config)
        for name, shares in ref.categorical.items()
    ]
    window = None
    if current.empty:
        checks: list[CheckResult] = []
        status = INSUFFICIENT
    else:
        checks = forecast_checks(ref, current, config)
        tested = any(f.statistic is not None for f in features)
        drifted = any(f.drifted for f in features) or any(c.drifted for c in checks)
        status = DRIFT if drifted else (OK if tested else INSUFFICIENT)
        if DATE in current:
            dates = pd.to_datetime(current[DATE])
            window = (str(dates.min().date()), str(dates.max().date()))
    report = DriftReport(
        status, len(current), ref.rows, features, checks, window, (ref.first_date, ref.last_date)
    )
    if status == DRIFT:
        logger.warning(
            "drift detected features=%s checks=%s",
            report.drifted_features,
            report.drifted_checks,
        )
    else:
        logger.info("drift check status=%s rows=%d", status, len(current))
    return report
