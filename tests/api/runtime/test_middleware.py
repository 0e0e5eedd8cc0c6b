"""Body limits, media types, request IDs, shedding, API keys first (promises 4, 6, 10, 16)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import series_rows, serve
from fastapi.testclient import TestClient
from naive_backend import SeasonalNaivePredictor
from test_server import Server

from retail_forecast.api import jsonbody
from retail_forecast.api.runtime.middleware import ApiKeyMiddleware, BodyLimitMiddleware

URL = "/api/v1/predict"
JSON = {"Content-Type": "application/json"}
MiB = 1 << 20


def big_row_body(n_rows: int) -> bytes:
    one = json.dumps(series_rows(days=1)[0]).encode()
    return b'{"rows": [' + b",".join([one] * n_rows) + b"]}"


@pytest.fixture
def no_parse(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record calls to the JSON parser: limits must answer before it runs."""
    calls: list[int] = []
    real = jsonbody.parse_json_body

    def spy(body: bytes) -> Any:
        calls.append(len(body))
        return real(body)

    monkeypatch.setattr("retail_forecast.api.predict_service.parse_json_body", spy)
    return calls


def test_p04_body_over_limit_with_content_length_is_413(
    client: TestClient, no_parse: list[int]
) -> None:
    response = client.post(URL, content=b"x" * (6 * MiB), headers=JSON)
    assert response.status_code == 413
    assert "bytes" in response.json()["message"]
    assert no_parse == []


def test_p04_chunked_body_over_limit_is_413(client: TestClient, no_parse: list[int]) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(6 * 16):  # 6 MiB in 64 KiB pieces, no Content-Length
            sent.append(1)
            yield b" " * (64 * 1024)

    response = client.post(URL, content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert no_parse == []


def test_p04_million_rows_is_413_before_parsing(client: TestClient, no_parse: list[int]) -> None:
    body = big_row_body(10**6)
    started = time.perf_counter()
    response = client.post(URL, content=body, headers=JSON)
    assert response.status_code == 413
    assert no_parse == []
    assert time.perf_counter() - started < 5  # generous on a shared VM; the point is no parse


@pytest.mark.parametrize("declared", ["10", "99999", "abc", "-1"])
def test_p04_lying_content_length_is_4xx(client: TestClient, declared: str) -> None:
    body = json.dumps({"rows": series_rows(days=1)}).encode()
    response = client.post(URL, content=body, headers={**JSON, "Content-Length": declared})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/csv",
        "application/x-www-form-urlencoded",
        "multipart/form-data; b=x",
        None,
        "application/json; charset=latin-1",
    ],
)
def test_p04_content_type_must_be_json_415(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"rows": series_rows(days=1)}).encode()
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 415
    assert "Content-Type" in response.json()["message"]


def test_p04_json_with_utf8_charset_is_accepted(client: TestClient) -> None:
    body = json.dumps({"rows": series_rows(days=1)}).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert client.post(URL, content=body, headers=headers).status_code == 200


def test_p04_gzip_is_415(client: TestClient) -> None:
    body = json.dumps({"rows": series_rows(days=1)}).encode()
    response = client.post(URL, content=body, headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_p19_wrong_method_on_predict_is_405(client: TestClient, method: str) -> None:
    response = client.request(method, URL)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/models"), ("POST", "/health"), ("PUT", "/api/v1/actuals")],
)
def test_p19_unsupported_methods_elsewhere_are_405(
    client: TestClient, method: str, path: str
) -> None:
    assert client.request(method, path).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/..%2fx",
        "/api/v1/models/%252e%252e%252f",
        "/api/v1/models/../etc/passwd",
        "/api/v1/models/http:%2f%2f169.254.169.254%2f",
        "/api/v1/models/m%00.ubj",
        "/api/v1/models/\uff0e\uff0e\uff0f",
        "/api/v1/models/" + "a" * 10_000,
    ],
)
def test_p13_model_names_in_paths_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "passwd" not in response.text


def test_p10_every_response_has_a_request_id(client: TestClient) -> None:
    answers = [
        client.get("/health"),
        client.get("/nope"),
        client.post(URL, json={"rows": []}),
        client.post(URL, content=b"x" * (6 * MiB), headers=JSON),
        client.post(URL, json={"rows": series_rows(days=1)}),
    ]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    for r in answers[1:4]:
        assert r.json()["request_id"] == r.headers["x-request-id"]
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    hostile = client.get("/health", headers={"X-Request-ID": "a" * 500})
    assert hostile.headers["x-request-id"] != "a" * 500


def test_p04_slow_body_gets_408_at_the_deadline() -> None:
    """A body still arriving at the deadline is refused, not waited for."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.2)  # one trickle per 0.2 s, never finished
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "state": {},
        "headers": [(b"content-type", b"application/json")],
    }
    scope["state"]["deadline"] = time.monotonic() + 0.5
    started = time.monotonic()
    middleware = BodyLimitMiddleware(app, max_body_bytes=MiB, json_paths=frozenset({URL}))
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] == 408
    assert time.monotonic() - started < 1.5


def test_p06_overload_is_shed_with_503_and_retry_after() -> None:
    predictor = SeasonalNaivePredictor(__import__("naive_backend").make_history())
    predictor.block.clear()
    predictor.block_stores = frozenset({2})
    # micro-batching off: each slow request reaches the model (a queued one would not count)
    with serve(predictor, max_in_flight=2, threads=4, micro_batch_requests=0) as client:
        results: list[int] = []
        warm = predictor.calls  # the warm-up's call

        def slow() -> None:
            results.append(client.post(URL, json={"rows": series_rows(2, days=1)}).status_code)

        threads = [threading.Thread(target=slow) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while predictor.calls < warm + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        shed = client.post(URL, json={"rows": series_rows(1, days=1)})
        health = client.get("/health")
        predictor.block.set()
        for t in threads:
            t.join(10)
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["error"] == "overloaded"
    assert health.status_code == 200
    assert results == [200, 200]


def test_connection_recycling_is_off_by_default(predictor: SeasonalNaivePredictor) -> None:
    """No `Connection: close` by default (bench/RESULTS.md, serve: no gain, a worse p99)."""
    with serve(predictor) as client:
        default = [client.get("/health").headers.get("connection") for _ in range(120)]
    with serve(predictor, max_requests_per_connection=3) as client:
        recycled = [client.get("/health").headers.get("connection") for _ in range(6)]
    assert "close" not in default
    assert "close" in recycled  # the check sees the header when recycling is on


# --- promise 16: the API key is checked before the body is read -------------------------------


def test_p16_the_key_check_answers_before_receive_is_called() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        raise AssertionError("not one body byte may be read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "state": {},
        "headers": [(b"content-type", b"application/json"), (b"x-api-key", b"wrong")],
    }
    asyncio.run(ApiKeyMiddleware(app, api_keys=("right",))(scope, receive, send))
    assert sent[0]["status"] == 401
    assert (b"connection", b"close") in sent[0]["headers"]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_p16_server_answers_401_to_a_keyless_upload_without_reading_it(tmp_path: Path) -> None:
    """A real uvicorn: headers of a 4 MiB upload and 1 KiB of it; the 401 comes at once."""
    server = Server(tmp_path, RF_API__API_KEYS='["s3cret"]', RF_API__REQUEST_TIMEOUT_S="5")
    try:
        server.release.touch()
        server.wait("/ready", 200)
        head = (
            f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {4 * MiB}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head + b'{"rows": [' + b" " * 1024)
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                answer += chunk
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"x-api-key" in answer.lower()
        # Answered and closed at once: not a 408 at the 5 s deadline of a server waiting for
        # the body, and the rest of the upload is never received.
        assert waited < 2
    finally:
        server.stop()
