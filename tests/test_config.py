"""Settings: every name .env.example offers is a setting; removed names fail, not linger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from retail_forecast.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def _field_path(name: str) -> list[str]:
    return name.removeprefix("RF_").lower().split("__")


def test_every_setting_in_env_example_exists() -> None:
    names = sorted(set(re.findall(r"^#?\s*(RF_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)))
    assert "RF_API__XGBOOST_THREADS" in names
    missing = []
    for name in names:
        model: type[BaseModel] = Settings
        for part in _field_path(name):
            field = model.model_fields.get(part)
            if field is None:
                missing.append(name)
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
    assert missing == []


def test_xgboost_threads_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_API__XGBOOST_THREADS", "3")
    assert Settings(_env_file=None).api.xgboost_threads == 3


@pytest.mark.parametrize(
    "name",
    [
        "RF_API__BATCH_THREADS",  # renamed: XGBoost's threads, unrelated to micro-batching
        "RF_API__ADMIN_ENABLED",  # no admin routes exist to enable (promise 15)
        "RF_MONITORING__REFERENCE_BINS",  # never read: monitoring/reference.py's own defaults
        "RF_MONITORING__REFERENCE_DAYS",
    ],
)
def test_a_removed_setting_left_in_the_environment_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "2")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(_env_file=None)
