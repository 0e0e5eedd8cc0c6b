"""Pure ASGI middleware: request IDs, 500s, reconnects, API keys, shedding, body limits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retail_forecast.api.errors import error_body

logger = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
JSON_TYPES = ("application/json",)
API_KEY_HEADER: Final = "X-Api-Key"


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


async def send_json_error(
    send: Send,
    scope: Scope,
    status: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> None:
    """Answer from middleware with the same error body the routes use."""
    body = error_body(status, message, request_id=_state(scope).get("request_id"), **extra)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestIdMiddleware:
    """Outermost: sets ``X-Request-ID`` on every response and turns crashes into a bare 500.

    The traceback goes to the log with the request id; the body is only
    ``{"error": "internal", "request_id": ...}``.
    """

    def __init__(self, app: ASGIApp, *, request_timeout_s: float) -> None:
        self.app = app
        self.request_timeout_s = request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
        state = _state(scope)
        state["request_id"] = request_id
        state["deadline"] = time.monotonic() + self.request_timeout_s
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error request_id=%s path=%s", request_id, scope["path"])
            if not started:
                await send_json_error(
                    send_with_id, scope, 500, "internal server error", error="internal"
                )


class ConnectionRecycleMiddleware:
    """Ask a keep-alive client to reconnect after ``max_requests`` requests on one connection.

    ``serve --workers N`` gives every worker its own SO_REUSEPORT socket and the kernel picks a
    worker per *connection*, so a few long-lived connections can pile onto one worker while
    another idles (8 load-test connections once ran at 98 req/s on one busy core). Every
    ``max_requests``-th response of a connection carries ``Connection: close``; the client
    reconnects and the kernel places the new connection afresh, so no worker keeps an unlucky
    share for the life of the connections (nginx's ``keepalive_requests``, Apache's
    ``MaxKeepAliveRequests``). The kernel does not know the workers' load: this re-draws the
    split, it does not balance it.
    """

    MAX_TRACKED = 4096  # connections counted at once; past that the counts start over

    def __init__(self, app: ASGIApp, *, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.counts: dict[tuple[Any, ...], int] = {}  # one event loop per worker: no lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or client is None:
            await self.app(scope, receive, send)
            return
        key = tuple(client)  # (host, port): one TCP connection
        count = self.counts.pop(key, 0) + 1
        if count < self.max_requests:
            if len(self.counts) >= self.MAX_TRACKED:
                self.counts.clear()
            self.counts[key] = count
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing)


class LoadSheddingMiddleware:
    """Bound the requests in flight under ``prefix``; the excess gets a fast 503."""

    def __init__(
        self, app: ASGIApp, *, max_in_flight: int, retry_after_s: int, prefix: str = "/api/"
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.prefix = prefix
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send_json_error(
                send,
                scope,
                503,
                f"overloaded: more than {self.max_in_flight} requests in flight",
                error="overloaded",
                headers={"Retry-After": str(self.retry_after_s)},
            )
            return
        self.in_flight += 1  # one event loop per worker: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def digest_key(key: bytes) -> bytes:
    """sha256 of a key; digests have equal length, so compare_digest never sees raw input."""
    return hashlib.sha256(key).digest()


class ApiKeyMiddleware:
    """With keys configured, refuse a request without a valid ``X-Api-Key`` before its body.

    It runs outside the shedding and body-limit middleware, so an unauthenticated request takes
    no in-flight slot and not one byte of its body is read: 401 at once, and the connection is
    closed so the rest of an upload is never received (promise 16). Only the header counts (a
    key in the query string is ignored); keys are never logged. The sha256 of the given key is
    compared with every configured key's in constant time (no early exit), so the time does not
    depend on which key matched, and non-ASCII or 10 KB keys never raise.

    Open without a key: ``GET /health`` (liveness), and ``GET /ready`` answering only its
    ``status`` field: probes and load balancers that cannot send headers see the status code
    and the state, never the model version or a reason.
    """

    OPEN_PATHS: Final = frozenset({"/health"})
    STATUS_ONLY_PATHS: Final = frozenset({"/ready"})

    def __init__(self, app: ASGIApp, *, api_keys: Sequence[str]) -> None:
        self.app = app
        self.digests = [digest_key(key.encode("utf-8", "surrogatepass")) for key in api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_get = scope["method"] == "GET"
        if (is_get and scope["path"] in self.OPEN_PATHS) or self.is_valid(scope):
            await self.app(scope, receive, send)
        elif is_get and scope["path"] in self.STATUS_ONLY_PATHS:
            await self.app(scope, receive, _status_only(send))
        else:
            await send_json_error(
                send,
                scope,
                401,
                f"a valid API key is required in the {API_KEY_HEADER} header",
                headers={
                    "WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"',
                    "Connection": "close",  # the unread body is never received
                },
            )

    def is_valid(self, scope: Scope) -> bool:
        """Whether the first ``X-Api-Key`` header matches a configured key."""
        given = next((v for k, v in scope["headers"] if k.lower() == b"x-api-key"), b"")
        digest = digest_key(given)
        matched = False
        for expected in self.digests:  # no early exit: time does not depend on which matched
            matched |= secrets.compare_digest(digest, expected)
        return bool(given) and matched


def status_only_body(body: bytes) -> bytes:
    """``{"status": ...}`` of a JSON object body; ``{}`` for anything else."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    status = parsed.get("status") if isinstance(parsed, dict) else None
    return json.dumps({"status": status} if isinstance(status, str) else {}).encode("ascii")


def _status_only(send: Send) -> Send:
    """Pass the status code on, but only the ``status`` field of the (small) JSON body."""
    start: Message = {}
    chunks: list[bytes] = []

    async def send_status_only(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = status_only_body(b"".join(chunks))
        MutableHeaders(scope=start)["content-length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return send_status_only


class _BodyRejectedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyLimitMiddleware:
    """Check encoding and media type, then read at most ``max_body_bytes`` before any parsing.

    A declared Content-Length over the limit is refused without reading (413); a chunked body
    is counted as it arrives (413 once past the limit); a body that contradicts its
    Content-Length gets 400; a body still arriving at the deadline gets 408. The buffered
    body is replayed to the app, so nothing downstream reads the socket.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, json_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_paths = json_paths  # POST routes that take JSON; others keep their 404/405

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if scope["method"] == "POST" and scope["path"] in self.json_paths:
                self._check_media(headers)
            declared = self._declared_length(headers)
            body = await self._read(receive, declared, _state(scope).get("deadline"))
        except _BodyRejectedError as exc:
            await send_json_error(
                send, scope, exc.status, exc.message, headers={"Connection": "close"}
            )
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_media(self, headers: Headers) -> None:
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise _BodyRejectedError(
                415, "Content-Encoding must be identity; compressed bodies are not accepted"
            )
        media, _, params = headers.get("content-type", "").partition(";")
        if media.strip().lower() not in JSON_TYPES:
            raise _BodyRejectedError(415, "Content-Type must be application/json")
        charset = params.strip().lower()
        if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
            raise _BodyRejectedError(415, "Content-Type charset must be utf-8")

    def _declared_length(self, headers: Headers) -> int | None:
        value = headers.get("content-length")
        if value is None:
            return None
        if not value.isdigit() or len(value) > 20:
            raise _BodyRejectedError(400, "Content-Length must be a non-negative integer")
        declared = int(value)
        if declared > self.max_body_bytes:
            raise _BodyRejectedError(
                413, f"body larger than {self.max_body_bytes} bytes; use batch forecasting"
            )
        return declared

    async def _read(
        self, receive: Receive, declared: int | None, deadline: float | None
    ) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await self._receive_before(receive, deadline)
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                raise _BodyRejectedError(
                    413, f"body larger than {self.max_body_bytes} bytes; use batch forecasting"
                )
            if declared is not None and total > declared:
                raise _BodyRejectedError(400, "body is longer than its Content-Length")
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        if declared is not None and total != declared:
            raise _BodyRejectedError(400, "body is shorter than its Content-Length")
        return b"".join(chunks)

    @staticmethod
    async def _receive_before(receive: Receive, deadline: float | None) -> Message:
        if deadline is None:
            return await receive()
        try:
            return await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            raise _BodyRejectedError(408, "the body did not arrive before the deadline") from None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as Starlette expects

    return replay
