"""Schemathesis over the live OpenAPI schema, in process (promises 10 and 19)."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")  # dev extra; see pyproject.toml

from api_helpers import serve  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from naive_backend import SeasonalNaivePredictor, make_history  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

pytestmark = pytest.mark.integration
EXAMPLES = 300  # per POST operation and mode: ~1,200 generated requests in all


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_p19_fuzzing_finds_no_5xx_and_every_response_conforms(mode: str) -> None:
    statuses: list[int] = []
    with serve(SeasonalNaivePredictor(make_history())) as client:
        schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        ops = operations(schema)
        assert {op.path for op in ops} >= {"/api/v1/predict", "/api/v1/actuals", "/ready"}
        for op in ops:
            if mode == "negative" and op.method.upper() != "POST":
                continue  # nothing to break in a GET without parameters
            strategy = op.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

            @given(case=strategy)
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                # Schema-valid rows can still be refused by rules a JSON schema cannot state
                # (duplicates across rows, the complete-prefix rule): 422s, not bugs.
                response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
                statuses.append(response.status_code)

            run()
    assert len(statuses) >= 2 * EXAMPLES
    assert max(statuses) < 500
    if mode == "positive":
        assert 200 in statuses
    else:
        assert 422 in statuses
