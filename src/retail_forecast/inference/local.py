"""LocalPredictor: the verified bundle's hybrid model in-process, over a persistent history store.

Loading verifies every file of ``<artifacts>/current`` (sha256, size, content type) before any
model deserializer runs. The history store is ``<history_dir>/<version>.sqlite``: a new bundle
starts from its own ``history.parquet``; a restart reopens the file with every appended actual.

A history store that cannot be opened for writing (a read-only mount, no permission, a path
under a regular file, a full disk at creation) does not stop the service: it serves read-only,
from the existing database or, when there is none, from the bundle's ``history.parquet`` in
memory. :attr:`LocalPredictor.degraded_reason` says so (``/ready``), appends raise
StoreReadOnlyError (HTTP 503), and the log names the path.

Thread safety: a request reads one immutable :class:`HistorySnapshot`; the models are read-only
after loading (XGBoost ``inplace_predict`` is thread-safe for tree models). Per docs/DESIGN.md,
section 5, concurrency comes from requests: a single-series request runs in its own thread
alone (the NumPy tree walker); only requests of several series use ``api.xgboost_threads``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from retail_forecast.artifacts import ModelBundle
from retail_forecast.bundle_contents import HISTORY_FILE, recorded_closures, recorded_horizon
from retail_forecast.config import Settings
from retail_forecast.errors import ArtifactError, DataValidationError
from retail_forecast.features.builder import Panel
from retail_forecast.inference.postprocess import MODEL
from retail_forecast.inference.predictor import ServingDomain
from retail_forecast.inference.preprocess import (
    canonical_rows,
    horizon_steps,
    panel_from_snapshot,
    requested_series,
    select_history,
)
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.models.quantiles import CALIBRATION_FILE, QuantileCalibration
from retail_forecast.schema import DATE, TARGET
from retail_forecast.storage.history import HistoryStore
from retail_forecast.storage.history_db import unwritable_cause
from retail_forecast.storage.plausibility import SpikeRule
from retail_forecast.utils.io import exclusive_lock
from retail_forecast.utils.memory import release_free_heap

logger = logging.getLogger(__name__)

PROMO_CAP_FACTOR = 10
REFERENCE_FILE = "reference.parquet"


class LocalPredictor:
    """Implements :class:`~retail_forecast.inference.predictor.Predictor` from a local bundle."""

    def __init__(
        self, bundle: ModelBundle, model: HybridForecaster, store: HistoryStore | None
    ) -> None:
        self.bundle = bundle
        self.model = model
        self.store = store
        meta = bundle.manifest.metadata
        try:
            domain = meta["domain"]
            self._stores = tuple(sorted(int(s) for s in domain["stores"]))
            self._families = tuple(sorted(str(f) for f in domain["families"]))
            # the bundle's horizon (the domain's, else the top level's; old bundles: 16)
            self._horizon = recorded_horizon(domain if "horizon" in domain else meta)
            self._promo_cap = PROMO_CAP_FACTOR * max(int(domain["onpromotion_max"]), 1)
            self._bundle_end = pd.Timestamp(domain["history_end"])
            self._closures = recorded_closures(domain, source=bundle.path)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{bundle.path}: manifest domain is malformed ({exc})") from None
        if self._horizon != model.horizon:
            raise ArtifactError(
                f"{bundle.path}: the manifest's horizon {self._horizon} is not the models' "
                f"{model.horizon}"
            )
        if store is not None:  # an actual of a yearly closure is filled, not awaited
            store.closures = self._closures
        self.n_days = store.n_days if store is not None else self._bundle_history_days()
        self.calibration = _bundle_calibration(bundle, self._horizon)
        self._metrics: dict[str, Any] | None = (
            bundle.read_json("metrics.json") if bundle.has("metrics.json") else None
        )
        metrics = self._metrics or {}
        self._mean_rmsle = metrics.get("mean", meta.get("metrics", {}).get("mean_rmsle"))

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def load(cls, settings: Settings) -> Self:
        """Verify and load ``settings.artifacts_dir/current``; open or create its history store."""
        bundle = ModelBundle.open_current(settings.artifacts_dir)
        db_path = Path(settings.api.history_dir) / f"{bundle.version}.sqlite"
        predictor = cls.from_bundle(
            bundle, history_db=db_path, xgboost_threads=settings.api.xgboost_threads
        )
        if predictor.store is not None:  # RF_ACTUALS__*: the plausibility bound of actuals
            predictor.store.spike_rule = SpikeRule.from_config(settings.actuals)
        logger.info(
            "local predictor loaded version=%s history_end=%s db=%s",
            bundle.version,
            predictor.domain.history_end,
            db_path,
        )
        # The dashboard explains every series it shows: build the TreeSHAP tables now, beside
        # the first requests, rather than in the first explain request (bench/RESULTS.md,
        # dashboard: ~1 s on the real data's model).
        threading.Thread(
            target=predictor.model.xgboost.tree_shap, name="treeshap-tables", daemon=True
        ).start()
        return predictor

    @classmethod
    def from_bundle(
        cls, bundle: ModelBundle, *, history_db: Path | None = None, xgboost_threads: int = 1
    ) -> Self:
        """Load the models of a VERIFIED bundle; ``history_db=None``: no store (batch use).

        ``xgboost_threads``: XGBoost threads for requests of several series (see
        :meth:`XGBForecaster.prepare_serving`).
        """
        model = HybridForecaster.load(bundle.path, dict(bundle.manifest.metadata))
        model.xgboost.prepare_serving(batch_threads=xgboost_threads)
        release_free_heap()  # the booster JSON parsed to compile the forest
        store = None if history_db is None else _open_store(bundle, history_db)
        return cls(bundle, model, store)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    @property
    def degraded_reason(self) -> str | None:
        """Why this predictor serves less than its full contract (no path in it), or None."""
        return None if self.store is None else self.store.read_only

    # -- the Predictor protocol ----------------------------------------------------------------

    @property
    def model_version(self) -> str:
        return self.bundle.version

    @property
    def domain(self) -> ServingDomain:
        end = self.store.history_end if self.store is not None else self._bundle_end
        return ServingDomain(
            stores=self._stores,
            families=self._families,
            history_end=end.date(),
            horizon=self._horizon,
            onpromotion_cap=self._promo_cap,
            closures=self._closures,
        )

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``rows`` from the history store's current snapshot (see the protocol)."""
        if self.store is None:
            raise DataValidationError("this predictor has no history store; use predict_from")
        snapshot = self.store.snapshot()
        request = canonical_rows(rows, self._families)
        history = panel_from_snapshot(snapshot, requested_series(request))
        return self._forecast(history, request, rows)

    def predict_from(self, history: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``rows`` from an explicit canonical history (e.g. a data directory's)."""
        request = canonical_rows(rows, self._families)
        recent = select_history(
            history, requested_series(request), n_days=self.n_days, families=self._families
        )
        return self._forecast(recent, request, rows)

    def append_actuals(self, rows: pd.DataFrame) -> int:
        if self.store is None:
            raise DataValidationError("this predictor has no history store")
        return self.store.append_actuals(rows).n_written  # new and corrected rows

    def describe(self) -> dict[str, Any]:
        meta = self.bundle.manifest.metadata
        weights = meta.get("blend_weights", {})
        return {
            "version": self.model_version,
            "backend": "local",
            "model_type": meta.get("model_type", "hybrid"),
            "created_at": self.bundle.manifest.created_at,
            "data_fingerprint": self.bundle.manifest.data_fingerprint,
            "train_window": meta.get("train_window"),
            "features": meta.get("features", meta.get("feature_set")),  # or a named set's name
            "horizon": self._horizon,
            "metrics": {"mean_rmsle": self._mean_rmsle},
            "blend": {
                "global_xgboost_weight": weights.get("global_weight"),
                "families_with_own_weight": len(weights.get("per_family", {})),
            },
            "history": {
                "end": str(self.domain.history_end),
                "days_kept": self.n_days,
            },
        }

    # -- MonitoringSource (what /api/v1/monitoring reads) ------------------------------------

    def history_frame(self) -> pd.DataFrame:
        """Return the served history's complete days (the bundle's tail without a store)."""
        if self.store is not None:
            return self.store.to_frame()
        name = str(self.bundle.manifest.metadata.get("history_file", HISTORY_FILE))
        return self.bundle.read_parquet(name)

    def reference_profile(self) -> pd.DataFrame | None:
        """Return the bundle's verified reference.parquet, or None when it has none."""
        return self.bundle.read_parquet(REFERENCE_FILE) if self.bundle.has(REFERENCE_FILE) else None

    def backtest_metrics(self) -> Mapping[str, Any] | None:
        """Return the bundle's metrics.json (the backtest table), or None."""
        return self._metrics

    # -- shared path ---------------------------------------------------------------------------

    def _forecast(
        self, history: pd.DataFrame | Panel, request: pd.DataFrame, rows: pd.DataFrame
    ) -> pd.DataFrame:
        end = pd.Timestamp(history.dates[-1] if isinstance(history, Panel) else history[DATE].max())
        steps = horizon_steps(request, end)
        if (steps < 1).any() or (steps > self._horizon).any():
            raise DataValidationError(
                f"rows must be dated {(end + pd.Timedelta(days=1)).date()} .. "
                f"{(end + pd.Timedelta(days=self._horizon)).date()}"
            )
        # unchecked here: every consumer of a Predictor applies postprocess.checked_frame once
        sales, labels = self.model.forecast(history, request)
        out = rows.copy()  # the caller's frame, index and dtypes unchanged
        out[TARGET] = sales
        out[MODEL] = labels
        return out

    def _bundle_history_days(self) -> int:
        name = str(self.bundle.manifest.metadata.get("history_file", HISTORY_FILE))
        history = self.bundle.read_parquet(name)
        return int(np.unique(history[DATE].to_numpy()).size)


def _open_store(bundle: ModelBundle, db_path: Path) -> HistoryStore:
    """Reopen this version's store (appended actuals survive) or create it from the bundle.

    A lock file makes the check-then-create safe when several server workers start at once.
    When the store cannot be opened for writing, it is opened read-only (module docstring).
    """
    try:
        with exclusive_lock(db_path.with_name(f"{db_path.name}.lock")):
            return _open_or_create_store(bundle, db_path)
    except (OSError, sqlite3.Error) as exc:
        cause = unwritable_cause(exc)
        if cause is None:
            raise
        logger.error(
            "history store %s cannot be opened for writing (%s: %s): serving read-only,"
            " POST /api/v1/actuals answers 503 until the directory %s is writable and the"
            " service restarted",
            db_path,
            type(exc).__name__,
            exc,
            db_path.parent,
        )
    return _open_read_only(bundle, db_path, cause)


def _open_or_create_store(bundle: ModelBundle, db_path: Path) -> HistoryStore:
    if db_path.is_file():
        store = HistoryStore.open(db_path)
        logger.info("history store reopened db=%s end=%s", db_path, store.history_end.date())
        return store
    history = _bundle_history(bundle)
    n_days = int(np.unique(history[DATE].to_numpy()).size)
    return HistoryStore.from_frame(history, n_days=n_days, db_path=db_path)


def _open_read_only(bundle: ModelBundle, db_path: Path, cause: str) -> HistoryStore:
    """Open the existing database read-only, or the bundle's history in memory if none exists.

    A database that exists but cannot be read fails the load: serving the bundle's older
    history instead would silently drop the actuals appended since.
    """
    unwritable = f"the history store cannot be written ({cause}): forecasts are served from"
    if db_path.is_file():
        store = HistoryStore.open(
            db_path, read_only=f"{unwritable} the existing store and actuals are refused"
        )
    else:
        history = _bundle_history(bundle)
        store = HistoryStore.in_memory(
            history,
            n_days=int(np.unique(history[DATE].to_numpy()).size),
            source=str(db_path),
            read_only=f"{unwritable} the bundle's history (no store existed) and actuals are"
            " refused",
        )
    logger.warning(
        "history store read-only db=%s end=%s: %s",
        db_path,
        store.history_end.date(),
        store.read_only,
    )
    return store


def _bundle_calibration(bundle: ModelBundle, horizon: int) -> QuantileCalibration | None:
    """Return the bundle's quantile calibration (read through its sha256 check), or None.

    A bundle written before quantiles existed has none: it keeps serving point forecasts.
    """
    if not bundle.has(CALIBRATION_FILE):
        return None
    calibration = QuantileCalibration.from_dict(bundle.read_json(CALIBRATION_FILE))
    if calibration.horizon != horizon:
        raise ArtifactError(
            f"{bundle.path}: the quantile calibration's horizon {calibration.horizon} is not "
            f"the bundle's {horizon}"
        )
    return calibration


def _bundle_history(bundle: ModelBundle) -> pd.DataFrame:
    name = str(bundle.manifest.metadata.get("history_file", HISTORY_FILE))
    if not bundle.has(name):
        raise ArtifactError(f"{bundle.path}: the manifest lists no {name}")
    return bundle.read_parquet(name)
