"""The dashboard's login when API keys are configured: a key typed once, a session cookie after.

A browser cannot put ``X-Api-Key`` on a page it navigates to, so the login form takes a key, checks
it like :class:`~retail_forecast.api.runtime.middleware.ApiKeyMiddleware` does (sha256, constant
time, every key compared) and sets an ``HttpOnly``, ``SameSite=Strict`` cookie holding a digest of
it (never the key: the key cannot be read back from the cookie, by a script or from disk). This
middleware runs just outside the key check: a request carrying a valid session cookie goes on
with the matching key in ``X-Api-Key``, but only to the dashboard's own paths, or to the API when
the request also sends the ``X-Rf-Dashboard`` header (the page's script does; a cross-site form
or link cannot, and a cross-site script would need a CORS preflight that names it). A dashboard
page asked for without a session is redirected to the login form; everything else is left to
the key check (401 without a key).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Final
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retail_forecast.api.runtime.middleware import digest_key
from retail_forecast.dashboard.pages import LOGIN_CSP, login_page

COOKIE: Final = "rf_dashboard_session"
DASHBOARD: Final = "/dashboard"
LOGIN: Final = "/dashboard/login"
LOGOUT: Final = "/dashboard/logout"
SCRIPT_HEADER: Final = b"x-rf-dashboard"
MAX_FORM_BYTES: Final = 4096  # a login form: one key field
_SESSION_SALT: Final = b"retail_forecast dashboard session\x00"


def session_token(key: str) -> str:
    """Return the cookie's value for ``key``: a digest, so the cookie never holds the key itself."""
    return hashlib.sha256(_SESSION_SALT + key.encode("utf-8", "surrogatepass")).hexdigest()


def is_dashboard(path: str) -> bool:
    """Say whether ``path`` is the root or a dashboard path (its data calls and assets included)."""
    return path == "/" or path == DASHBOARD or path.startswith(DASHBOARD + "/")


def is_page(path: str) -> bool:
    """Paths a browser navigates to (redirected to the login); data and assets get a 401."""
    return is_dashboard(path) and not path.startswith(("/dashboard/data/", "/dashboard/static/"))


class DashboardSessionMiddleware:
    """Login form, session cookie -> ``X-Api-Key`` for the dashboard, redirect without one."""

    def __init__(self, app: ASGIApp, *, api_keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [key.encode("utf-8", "surrogatepass") for key in api_keys]
        self.digests = [digest_key(key) for key in self.keys]
        # compared as sha256 digests, like the keys: equal lengths, never the raw cookie
        self.tokens = [digest_key(session_token(key).encode("ascii")) for key in api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == LOGIN:
            await self.login(scope, receive, send)
            return
        if path == LOGOUT and method == "POST":
            await _redirect(send, LOGIN, cookie=f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly")
            return
        headers = scope["headers"]
        has_key = any(name.lower() == b"x-api-key" for name, _ in headers)
        key = None if has_key else self.session_key(headers)
        scripted = any(name.lower() == SCRIPT_HEADER for name, _ in headers)
        if key is not None and (is_dashboard(path) or scripted):
            scope = {**scope, "headers": [*headers, (b"x-api-key", key)]}
        elif key is None and not has_key and is_page(path) and method == "GET":
            await _redirect(send, LOGIN)
            return
        await self.app(scope, receive, send)

    def session_key(self, headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
        """Return the configured key whose token the request's session cookie holds, or None."""
        token = _cookie(headers, COOKIE).encode("ascii", "replace")
        if not token:  # no cookie at all: nothing secret to compare
            return None
        digest = digest_key(token)
        found = None
        for key, expected in zip(self.keys, self.tokens, strict=True):  # no early exit
            if secrets.compare_digest(digest, expected):
                found = key
        return found

    def key_matches(self, given: bytes) -> str | None:
        digest = digest_key(given)
        matched = None
        for key, expected in zip(self.keys, self.digests, strict=True):  # no early exit
            if secrets.compare_digest(digest, expected):
                matched = key.decode("utf-8", "surrogatepass")
        return matched if given else None

    async def login(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _html(send, 200, login_page())
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        form = parse_qs(body.decode("utf-8", "replace")) if body is not None else {}
        key = self.key_matches(form.get("api_key", [""])[0].encode("utf-8", "surrogatepass"))
        if key is None:
            await _html(send, 401, login_page(error="That API key is not valid."))
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{COOKIE}={session_token(key)}; Path=/; HttpOnly; SameSite=Strict{secure}"
        await _redirect(send, DASHBOARD, cookie=cookie)


def _cookie(headers: Sequence[tuple[bytes, bytes]], name: str) -> str:
    for header, value in headers:
        jar = _parsed(value) if header.lower() == b"cookie" else None
        if jar is not None and name in jar:
            return jar[name].value
    return ""


def _parsed(value: bytes) -> SimpleCookie | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(value.decode("latin-1"))
    except CookieError:  # a malformed cookie header holds no session
        return None
    return jar


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Return the request body, or None past ``limit`` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _redirect(send: Send, location: str, *, cookie: str | None = None) -> None:
    headers = [(b"location", location.encode("ascii")), (b"content-length", b"0")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _html(send: Send, status: int, page: str) -> None:
    body = page.encode("utf-8")
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"content-security-policy", LOGIN_CSP.encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
