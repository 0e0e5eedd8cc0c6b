"""Strict JSON parsing of request bodies: no NaN/Infinity, no duplicate keys, bounded depth."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import numpy as np

from retail_forecast.api.errors import ApiError

MAX_DEPTH: Final = 32
"""Our bodies nest 3 levels; anything past this is refused before json.loads recurses."""
_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURAL: Final = bytes(b for b in range(256) if b not in b'[]{}"')


class _JsonRejectedError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _JsonRejectedError(f"{name} is not valid JSON; numbers must be finite")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _JsonRejectedError("an object repeats a key; keys must be unique")
    return out


def nesting_depth(body: bytes) -> int:
    """Deepest bracket nesting outside strings, computed without recursion (vectorized)."""
    if b"\\" in body:  # drop escapes first so an escaped quote cannot flip string parity
        body = _ESCAPE.sub(b"", body)
    marks = np.frombuffer(body.translate(None, _NOT_STRUCTURAL), dtype=np.uint8)
    if marks.size == 0:
        return 0
    outside = np.cumsum(marks == ord('"')) % 2 == 0
    step = np.zeros(marks.size, dtype=np.int64)
    step[(marks == ord("[")) | (marks == ord("{"))] = 1
    step[(marks == ord("]")) | (marks == ord("}"))] = -1
    step[~outside] = 0
    return int(np.cumsum(step).max())


def parse_json_body(body: bytes) -> Any:
    """Parse a request body or raise ApiError(422, error="json_invalid") without echoing it."""
    if not body:
        raise ApiError(422, "the body is empty; send a JSON object", error="json_invalid")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "the body is not valid UTF-8", error="json_invalid") from None
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        raise ApiError(422, f"JSON nests deeper than {MAX_DEPTH} levels", error="json_invalid")
    try:
        return json.loads(
            text,
            # 1e999 still parses to inf: the float fields say allow_inf_nan=False and the
            # int fields are strict, so it is refused there, with its field named.
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_pairs,
        )
    except _JsonRejectedError as exc:
        raise ApiError(422, str(exc), error="json_invalid") from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ApiError(422, message, error="json_invalid") from None
    except (ValueError, RecursionError):  # e.g. an integer of more than 4300 digits
        raise ApiError(422, "the JSON document is not acceptable", error="json_invalid") from None
