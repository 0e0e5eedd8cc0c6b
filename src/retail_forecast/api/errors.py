"""Domain error -> HTTP status and JSON body, in one place; bodies never echo the input."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from retail_forecast.errors import (
    ArtifactError,
    ConflictError,
    DataValidationError,
    ForecastError,
    NotFittedError,
    RemoteModelError,
    RemoteUnavailableError,
    StoreFullError,
    StoreReadOnlyError,
    UnknownSeriesError,
    UnknownVersionError,
)

logger = logging.getLogger(__name__)

_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_STATUS_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
    507: "insufficient_storage",
}
# The history store's own failures: the message names the database and what to do, and no
# Retry-After: neither passes by itself (a full disk needs space freed, a read-only store a
# writable directory and a restart). 507 tells a full disk apart from every other 5xx.
_STORE_ERRORS: Final[dict[type[ForecastError], tuple[int, str]]] = {
    StoreReadOnlyError: (503, "read_only"),
    StoreFullError: (507, "insufficient_storage"),
}


class ApiError(Exception):
    """An HTTP answer decided below the routes; rendered by ``render_error``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or _STATUS_CODES.get(status, "error")
        self.headers = headers or {}
        self.extra = extra


def past_deadline() -> ApiError:
    """Return the 504 of a request whose inference ran past its deadline (promise 5)."""
    return ApiError(504, "the request ran past its deadline", error="timeout")


def safe_loc_part(part: object) -> str | int:
    """Return a location step safe to send back: an index, or a plain identifier."""
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    text = str(part)
    return text if _SAFE_KEY.fullmatch(text) else "<invalid key>"


def field_path(loc: Sequence[str | int]) -> str:
    """``("rows", 3, "store_nbr")`` -> ``rows[3].store_nbr``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "body"


def error_item(loc: Sequence[object], type_: str, msg: str) -> dict[str, Any]:
    safe = [safe_loc_part(p) for p in loc]
    return {"loc": safe, "field": field_path(safe), "type": type_, "msg": msg}


def error_body(
    status: int, message: str, *, error: str | None = None, request_id: str | None, **extra: Any
) -> bytes:
    """Serialize an error body; ASCII-only so a lone surrogate can never break encoding."""
    body: dict[str, Any] = {
        "error": error or _STATUS_CODES.get(status, "error"),
        "message": message,
        "request_id": request_id,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return json.dumps(body, ensure_ascii=True, allow_nan=False, default=str).encode("ascii")


def request_id_of(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def render_error(request: Request, exc: ApiError) -> Response:
    content = error_body(
        exc.status, exc.message, error=exc.error, request_id=request_id_of(request), **exc.extra
    )
    return Response(content, exc.status, headers=exc.headers, media_type="application/json")


def _status_of(exc: ForecastError) -> int:
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, DataValidationError):
        return 422
    if isinstance(exc, UnknownSeriesError | UnknownVersionError):
        return 404
    if isinstance(exc, ArtifactError | NotFittedError):
        return 503
    return 500


def _forecast_error_response(request: Request, exc: ForecastError) -> Response:
    store_error = _STORE_ERRORS.get(type(exc))
    if store_error is not None:
        status, code = store_error
        logger.error("history store refused a write: %s", exc)
        return render_error(request, ApiError(status, str(exc)[:2000], error=code))
    if isinstance(exc, RemoteModelError | RemoteUnavailableError):
        # the model endpoint's own message (SageMaker ModelError / throttling), never input bytes
        status = 502 if isinstance(exc, RemoteModelError) else 503
        logger.error("model endpoint failed: %s", exc)
        return render_error(request, ApiError(status, str(exc)[:2000]))
    status = _status_of(exc)
    if status >= 500:
        logger.error("request failed: %s", type(exc).__name__, exc_info=exc)
        return render_error(request, ApiError(status, "the service could not answer"))
    # Our own messages describe server-side state and never quote request bytes.
    return render_error(request, ApiError(status, str(exc)[:2000]))


def _http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    message = {404: "no such path", 405: "method not allowed"}.get(exc.status_code, "error")
    return render_error(
        request, ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
    )


def _validation_error_response(request: Request, exc: RequestValidationError) -> Response:
    items = [error_item(e.get("loc", ()), e.get("type", "invalid"), e["msg"]) for e in exc.errors()]
    return render_error(request, ApiError(422, "the request is invalid", detail=items[:1000]))


async def handle_error(request: Request, exc: Exception) -> Response:
    """Render every exception class we register; anything else keeps propagating."""
    if isinstance(exc, ApiError):
        return render_error(request, exc)
    if isinstance(exc, ForecastError):
        return _forecast_error_response(request, exc)
    if isinstance(exc, RequestValidationError):
        return _validation_error_response(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_error_response(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are handled by RequestIdMiddleware."""
    for exc_class in (ApiError, ForecastError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(exc_class, handle_error)
