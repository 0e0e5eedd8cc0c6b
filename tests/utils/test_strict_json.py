"""loads_strict: what json.loads lets through (NaN, repeated keys, deep nesting) is refused."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from retail_forecast.utils.strict_json import StrictJsonError, loads_strict


def test_ordinary_json_parses_as_json_loads_does() -> None:
    text = '{"a": [1, 2.5, "x\\"[[", null, true], "b": {"c": -0.0, "d": 1e999}}'
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(text.encode("utf-16")) == json.loads(text)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused_by_name(constant: str) -> None:
    with pytest.raises(StrictJsonError, match=f"^{constant} is not valid JSON"):
        loads_strict(f'{{"a": [1, {constant}]}}')


@pytest.mark.parametrize("text", ['{"k": 1, "k": 1}', '[{"x": {"secret": 1, "secret": 2}}]'])
def test_a_repeated_key_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(StrictJsonError, match="repeats a key") as info:
        loads_strict(text)
    assert "secret" not in str(info.value)


def _nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [10_000, 1_000_000])
def test_deep_nesting_is_a_strict_json_error_not_a_recursion_error(depth: int, kind: str) -> None:
    with pytest.raises(StrictJsonError, match="nests deeper"):
        loads_strict(_nested(depth, kind))


def test_deep_nesting_is_refused_in_a_thread_with_a_small_stack() -> None:
    # Requests are parsed on worker threads; the parser's recursion guard must trip before a
    # small thread stack overflows (a crash, not an exception).
    outcome: list[Any] = []

    def parse() -> None:
        try:
            loads_strict(_nested(100_000, "array"))
        except StrictJsonError as exc:
            outcome.append(exc)

    previous = threading.stack_size(256 * 1024)
    try:
        worker = threading.Thread(target=parse)
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    assert len(outcome) == 1


def test_nesting_well_past_any_real_document_still_parses() -> None:
    assert loads_strict(_nested(200, "array")) == json.loads(_nested(200, "array"))
