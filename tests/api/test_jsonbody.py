"""Strict JSON parsing: constants, huge numbers, duplicate keys, nesting (promises 18, 19)."""

from __future__ import annotations

import pytest

from retail_forecast.api.errors import ApiError
from retail_forecast.api.jsonbody import MAX_DEPTH, nesting_depth, parse_json_body


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
    ],
)
def test_p18_rejected_bodies_are_json_invalid(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_json_body(body)
    assert info.value.status == 422
    assert info.value.error == "json_invalid"


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"[]", 1),
        (b'{"a": "[[[[["}', 1),
        (b'{"a": "\\"[[[["}', 1),
        (b'{"a": "x\\\\", "b": [[1]]}', 3),
        (b"[" * 10_000, 10_000),
    ],
)
def test_nesting_depth_ignores_brackets_in_strings(body: bytes, depth: int) -> None:
    assert nesting_depth(body) == depth


def test_p19_deep_nesting_is_refused_before_json_loads() -> None:
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    with pytest.raises(ApiError, match="deeper"):
        parse_json_body(deep)
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert isinstance(parse_json_body(ok), list)


def test_p18_huge_exponent_parses_to_inf_for_the_fields_to_refuse() -> None:
    # json.loads turns 1e999 into inf; strict int fields and allow_inf_nan=False refuse it
    # later, naming the field (see test_predict / test_actuals).
    assert parse_json_body(b"[1e999]") == [float("inf")]
