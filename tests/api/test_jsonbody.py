"""Strict JSON parsing: constants, huge numbers, duplicate keys, nesting (promises 18, 19)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from retail_forecast.api.errors import ApiError
from retail_forecast.api.jsonbody import parse_json_body

URL = "/api/v1/predict"


def test_parses_ordinary_json() -> None:
    assert parse_json_body(b'{"rows": [{"a": 1.5, "b": "x\\"[["}]}') == {
        "rows": [{"a": 1.5, "b": 'x"[['}]
    }


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b"[Infinity]",
        b'{"a": -Infinity}',
        b'{"a": 1, "a": 2}',
        b'{"x": {"k": 1, "k": 1}}',
        b"\xff\xfe",
        b"",
        b"[1,]",
        b"1" * 5000,
        b"[" * 10_000,
        b'{"rows": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
)
def test_p18_rejected_bodies_are_json_invalid(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_json_body(body)
    assert info.value.status == 422
    assert info.value.error == "json_invalid"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": NaN}', "NaN is not valid JSON; numbers must be finite"),
        (b'{"store_nbr": 1, "store_nbr": 2}', "an object repeats a key; keys must be unique"),
        (b"[" * 10_000 + b"]" * 10_000, "JSON nests deeper than the parser allows"),
    ],
)
def test_p18_messages_name_the_problem_not_the_body(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_json_body(body)
    assert info.value.message == message


def test_p18_huge_exponent_parses_to_inf_for_the_fields_to_refuse() -> None:
    # json.loads turns 1e999 into inf; strict int fields and allow_inf_nan=False refuse it
    # later, naming the field (see test_predict / test_actuals).
    assert parse_json_body(b"[1e999]") == [float("inf")]


@pytest.mark.parametrize("depth", [40, 500, 10_000, 2_000_000])
@pytest.mark.parametrize(
    "wrap", [b"%s", b'{"rows": %s}', b'{"rows": [{"store_nbr": %s}]}'], ids=["top", "rows", "field"]
)
def test_p19_deep_nesting_is_422_at_any_depth(client: TestClient, depth: int, wrap: bytes) -> None:
    # No depth pre-scan: the parser's recursion guard refuses what nests too deep (422
    # json_invalid), and the envelope and row checks refuse the shallower ones.
    body = wrap % (b"[" * depth + b"]" * depth)
    response = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"json_invalid", "validation_error"}
