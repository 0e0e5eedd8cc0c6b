"""Pieces shared by the JSON POST routes: OpenAPI error responses and the request body ref."""

from __future__ import annotations

from typing import Any, Final

from retail_forecast.api.schemas import ErrorResponse

_ERRORS: Final = {
    400: "Body contradicts its Content-Length",
    401: "Missing or wrong API key (only when keys are configured)",
    408: "Body still arriving at the request deadline",
    413: "Body larger than the byte limit, or more rows than the row limit",
    415: "Content-Type is not application/json, or the body is compressed",
    422: "Invalid JSON, types or values; lists every bad row; nothing is predicted",
    500: "Internal error: {error: internal, request_id}",
    503: "Model not ready yet, or overloaded (Retry-After)",
    504: "Ran past the request deadline",
}


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    codes = sorted({*_ERRORS, *extra})
    return {
        code: {"model": ErrorResponse, "description": _ERRORS.get(code, "Error")} for code in codes
    }


def json_body(schema_name: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that parses its own body (strictly, in the pool)."""
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}
