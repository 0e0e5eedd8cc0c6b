"""Strict JSON parsing of request bodies: every refusal is a 422 ``json_invalid``.

What strict means (no NaN/Infinity, no repeated keys, nesting bounded by the parser's recursion
guard) is :func:`retail_forecast.utils.strict_json.loads_strict`; this module words the answers
and never echoes the body.
"""

from __future__ import annotations

import json
from typing import Any

from retail_forecast.api.errors import ApiError
from retail_forecast.utils.strict_json import StrictJsonError, loads_strict


def parse_json_body(body: bytes) -> Any:
    """Parse a request body or raise ApiError(422, error="json_invalid") without echoing it."""
    if not body:
        raise ApiError(422, "the body is empty; send a JSON object", error="json_invalid")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "the body is not valid UTF-8", error="json_invalid") from None
    try:
        # 1e999 still parses to inf: the float fields say allow_inf_nan=False and the int
        # fields are strict, so it is refused there, with its field named.
        return loads_strict(text)
    except StrictJsonError as exc:
        raise ApiError(422, str(exc), error="json_invalid") from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ApiError(422, message, error="json_invalid") from None
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise ApiError(422, "the JSON document is not acceptable", error="json_invalid") from None
