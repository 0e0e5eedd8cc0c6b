"""ForecastError and its few subclasses; each boundary maps them once."""

from __future__ import annotations


class ForecastError(Exception):
    """Root of every error we raise on purpose."""


class DataValidationError(ForecastError, ValueError):
    """Input data breaks the contract (API 422, CLI exit 2)."""


class MissingInputError(DataValidationError, FileNotFoundError):
    """A required input file or column is missing."""


class UnknownSeriesError(ForecastError, KeyError):
    """A (store_nbr, family) the model was not trained on (API 404)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ArtifactError(ForecastError, RuntimeError):
    """A bundle is missing, corrupt, unsafe or incompatible (API 503)."""


class NotFittedError(ForecastError, AttributeError):
    """A forecaster was used before fit() or load()."""


class ConfigError(ForecastError, ValueError):
    """Settings are inconsistent."""


class ConflictError(ForecastError, ValueError):
    """New data contradicts data already recorded for the same key (API 409)."""


class UnknownVersionError(ForecastError, KeyError):
    """A model version name that is invalid or not in the registry (API 404)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class RemoteModelError(ForecastError):
    """A remote model endpoint refused or failed a request (SageMaker ModelError; API 502)."""


class RemoteUnavailableError(ForecastError):
    """A remote model endpoint stayed throttled, not ready or unreachable (API 503)."""


class StoreReadOnlyError(ForecastError):
    """The history store cannot be written (read-only mount, no permission); API 503.

    The service still forecasts from what it could read; only writes (actuals) are refused.
    """


class StoreFullError(ForecastError):
    """The disk under the history store is full; nothing of the write was kept (API 507)."""
