"""App wiring: readiness, deadlines, the 500 contract, auth, CORS, OpenAPI (promises 1-19)."""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import secrets
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from api_helpers import day, series_rows, serve
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from naive_backend import FAMILIES, SeasonalNaivePredictor, make_history

from retail_forecast.app import create_app
from retail_forecast.config import Settings
from retail_forecast.errors import ArtifactError

URL = "/api/v1/predict"


# --- promise 1 and 9: liveness is not readiness; load off the request path -----------------


def test_p01_ready_is_503_until_the_loader_returns(predictor: SeasonalNaivePredictor) -> None:
    release = threading.Event()

    def slow_loader(_settings: Settings) -> SeasonalNaivePredictor:
        release.wait(10)
        return predictor

    with serve(loader=slow_loader, ready=False) as client:
        assert client.get("/health").status_code == 200  # a slow load is no reason to restart
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "loading"
        blocked = client.post(URL, json={"rows": series_rows(days=1)})
        assert blocked.status_code == 503
        assert blocked.json()["error"] == "not_ready"
        assert blocked.headers["retry-after"]  # transient: loading ends
        release.set()
        deadline = time.monotonic() + 5
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/ready").json() == {
            "status": "ready",
            "model_version": "naive-test-1",
            "reason": None,
        }
        assert client.post(URL, json={"rows": series_rows(days=1)}).status_code == 200


def wait_loaded(client: TestClient) -> None:
    deadline = time.monotonic() + 5
    while client.get("/ready").json()["status"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.01)


def test_p01_corrupt_bundle_keeps_ready_503_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def corrupt(_settings: Settings) -> SeasonalNaivePredictor:
        raise ArtifactError("sha256 mismatch for xgboost/model.ubj")

    with caplog.at_level(logging.ERROR), serve(loader=corrupt, ready=False) as client:
        wait_loaded(client)
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "model.ubj" not in ready.text  # the reason is in the log, not the public body
    assert "sha256 mismatch" in caplog.text


@pytest.mark.parametrize("failure", [ArtifactError("sha256 mismatch"), RuntimeError("crash")])
def test_p01_a_failed_load_fails_liveness_and_its_503s_carry_no_retry_after(
    failure: Exception,
) -> None:
    """The load is never retried in-process: only a restart helps, so liveness says so."""

    def failing(_settings: Settings) -> SeasonalNaivePredictor:
        raise failure

    with serve(loader=failing, ready=False) as client:
        wait_loaded(client)
        health = client.get("/health")
        ready = client.get("/ready")
        predict = client.post(URL, json={"rows": series_rows(days=1)})
        actuals = client.post("/api/v1/actuals", json={"rows": []})
        models = client.get("/api/v1/models")
    assert (health.status_code, health.json()) == (503, {"status": "failed"})
    assert (ready.status_code, ready.json()["status"]) == (503, "failed")
    assert (predict.status_code, predict.json()["error"]) == (503, "load_failed")
    assert (actuals.status_code, models.status_code) == (503, 503)
    for response in (health, ready, predict, actuals, models):
        assert "retry-after" not in response.headers, response.request.url


def test_p01_failed_warm_up_keeps_ready_503() -> None:
    class BrokenPredictor(SeasonalNaivePredictor):
        def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
            out = super().predict(rows)
            out["sales"] = float("nan")
            return out

    with serve(BrokenPredictor(make_history()), ready=False) as client:
        wait_loaded(client)
        assert client.get("/ready").status_code == 503
        assert client.get("/ready").json()["status"] == "failed"
        assert client.get("/health").status_code == 503


def test_p01_health_answers_while_cpu_bound_predictions_run() -> None:
    predictor = SeasonalNaivePredictor(make_history())
    predictor.busy_stores, predictor.busy_s = frozenset({2}), 3.0
    with serve(predictor, threads=2) as client:
        workers = [
            threading.Thread(
                target=client.post, args=(URL,), kwargs={"json": {"rows": series_rows(2, days=1)}}
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        while predictor.calls < 3:  # warm-up was call 1
            time.sleep(0.01)
        worst, polled_while_busy = 0.0, 0
        for _ in range(50):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 200
            worst = max(worst, time.perf_counter() - started)
            polled_while_busy += all(w.is_alive() for w in workers)
        for worker in workers:
            worker.join(10)
    assert polled_while_busy >= 3, polled_while_busy  # GIL-bound work: ~0.3 s per poll pair
    assert worst < 2.0, worst


# --- promise 5: per-request deadline --------------------------------------------------------


def test_p05_slow_inference_gets_504_and_others_are_still_served() -> None:
    predictor = SeasonalNaivePredictor(make_history())
    predictor.block.clear()
    predictor.block_stores = frozenset({2})
    with serve(predictor, request_timeout_s=1.0, threads=2) as client:
        slow: dict[str, Any] = {}

        def call_slow() -> None:
            started = time.monotonic()
            slow["response"] = client.post(URL, json={"rows": series_rows(2, days=1)})
            slow["elapsed"] = time.monotonic() - started

        worker = threading.Thread(target=call_slow)
        worker.start()
        time.sleep(0.2)
        fast = client.post(URL, json={"rows": series_rows(1, days=1)})
        worker.join(10)
        predictor.block.set()
    assert fast.status_code == 200
    assert slow["response"].status_code == 504
    assert slow["response"].json()["error"] == "timeout"
    assert 0.5 <= slow["elapsed"] <= 2.5


# --- promise 7: no CPU-bound work inside async def ------------------------------------------

FORBIDDEN_CALLS = {
    "predict",
    "build_features",
    "append_actuals",
    "answer_predict",
    "answer_actuals",
}


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, also inside FastAPI 0.165's lazily included routers."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def async_endpoints_calling_cpu_work(app: FastAPI) -> list[str]:
    offenders = []
    for route in api_routes(app.routes):
        if not inspect.iscoroutinefunction(route.endpoint):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(route.endpoint)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in FORBIDDEN_CALLS:
                    offenders.append(f"{route.path}: {name}()")
    return offenders


def test_p07_no_async_endpoint_calls_predict() -> None:
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    assert async_endpoints_calling_cpu_work(app) == []
    endpoints = {r.endpoint.__name__ for r in api_routes(app.routes)}
    assert endpoints >= {"predict", "actuals", "models", "health", "ready"}


def test_p07_the_introspection_catches_an_offender() -> None:
    bad = FastAPI()

    @bad.post("/x")
    async def endpoint() -> None:
        predictor: Any = None
        predictor.predict(None)

    assert async_endpoints_calling_cpu_work(bad) == ["/x: predict()"]


def sync_dependencies(app: FastAPI) -> list[str]:
    """Dependencies FastAPI would run in its thread pool (a thread hop per request)."""
    found = []

    def walk(path: str, dependant: Any) -> None:
        for sub in dependant.dependencies:
            call = sub.call
            target = call if inspect.isfunction(call) else type(call).__call__
            if call is not None and not inspect.iscoroutinefunction(target):
                found.append(f"{path}: {getattr(call, '__name__', type(call).__name__)}")
            walk(path, sub)

    for route in api_routes(app.routes):
        walk(route.path, route.dependant)
    return found


def test_request_path_dependencies_run_on_the_event_loop() -> None:
    app = create_app(Settings(_env_file=None, api={"api_keys": ("k",)}))  # type: ignore[call-arg]
    assert sync_dependencies(app) == []
    offender = FastAPI()

    def lookup() -> int:
        return 1

    @offender.get("/x", dependencies=[Depends(lookup)])
    async def endpoint() -> int:
        return 1

    assert sync_dependencies(offender) == ["/x: lookup"]


# --- promise 10: 500 contract ---------------------------------------------------------------


def test_p10_internal_error_is_a_bare_500_and_the_traceback_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    predictor = SeasonalNaivePredictor(make_history())
    predictor.crash_stores = frozenset({3})
    with caplog.at_level(logging.ERROR), serve(predictor) as client:
        response = client.post(URL, json={"rows": series_rows(3, days=1)})
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "internal",
        "message": "internal server error",
        "request_id": response.headers["x-request-id"],
    }
    assert "Traceback" not in response.text
    assert "/srv/secret" not in response.text
    assert "ZeroDivisionError" in caplog.text
    assert body["request_id"] in caplog.text


# --- promises 15, 16, 17 ----------------------------------------------------------------------


def test_p15_admin_reload_is_not_mounted(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 404
    assert client.get("/admin/reload").status_code == 404


KEY = "good-key-7f3a9c"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Api-Key": ""},
        {"X-Api-Key": "wrong"},
        {"X-Api-Key": "k" * 10_000},
        {"X-Api-Key": "good-key-7f3a9\u00e9".encode()},  # non-ASCII: compare_digest(str) raises
        {"x-api-key": KEY[:-1]},
    ],
)
def test_p16_bad_api_keys_get_401(
    predictor: SeasonalNaivePredictor, headers: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), serve(predictor, api_keys=(KEY,)) as client:
        response = client.post(URL, json={"rows": series_rows(days=1)}, headers=headers)
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("ApiKey")
    assert "X-Api-Key" in response.json()["message"]
    assert KEY not in caplog.text


def test_p16_good_key_passes_and_compare_digest_is_used(
    predictor: SeasonalNaivePredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr("retail_forecast.api.runtime.middleware.secrets.compare_digest", spy)
    with serve(predictor, api_keys=("other-key", KEY)) as client:
        ok = client.post(URL, json={"rows": series_rows(days=1)}, headers={"X-Api-Key": KEY})
        in_query = client.post(f"{URL}?api_key={KEY}", json={"rows": series_rows(days=1)})
        models = client.get("/api/v1/models")
    assert ok.status_code == 200
    assert in_query.status_code == 401
    assert models.status_code == 401
    assert seen
    assert all(len(a) == len(b) == 32 for a, b in seen)
    assert hashlib.sha256(KEY.encode()).digest() in {b for _, b in seen}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/api/v1/models"),
        ("GET", "/api/v1/monitoring/status"),
        ("GET", "/nope"),
        ("POST", "/health"),
        ("POST", "/ready"),
    ],
)
def test_p16_with_keys_everything_but_the_probes_needs_a_key(
    predictor: SeasonalNaivePredictor, method: str, path: str
) -> None:
    with serve(predictor, api_keys=(KEY,)) as client:
        refused = client.request(method, path)
        allowed = client.request(method, path, headers={"X-Api-Key": KEY})
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert "model_version" not in refused.text
    assert "BEVERAGES" not in refused.text
    assert allowed.status_code != 401


def test_p16_ready_stays_open_for_probes_but_answers_only_its_status(
    predictor: SeasonalNaivePredictor,
) -> None:
    release = threading.Event()

    def slow_loader(_settings: Settings) -> SeasonalNaivePredictor:
        release.wait(10)
        return predictor

    with serve(loader=slow_loader, ready=False, api_keys=(KEY,)) as client:
        loading = client.get("/ready")
        release.set()
        wait_loaded(client)
        open_ready = client.get("/ready")
        keyed = client.get("/ready", headers={"X-Api-Key": KEY})
        health = client.get("/health")
    assert (loading.status_code, loading.json()) == (503, {"status": "loading"})
    assert (open_ready.status_code, open_ready.json()) == (200, {"status": "ready"})
    assert open_ready.headers["content-length"] == str(len(open_ready.content))
    assert keyed.json()["model_version"] == "naive-test-1"  # the details need the key
    assert health.status_code == 200


def test_p16_openapi_states_the_key_and_the_open_probes(
    predictor: SeasonalNaivePredictor,
) -> None:
    with serve(predictor, api_keys=(KEY,)) as client:
        schema = client.get("/openapi.json", headers={"X-Api-Key": KEY}).json()
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schema["security"] == [{"ApiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in schema["paths"][URL]["post"]  # the global requirement applies


def test_p16_an_unauthenticated_request_gets_401_before_its_body_is_read(
    predictor: SeasonalNaivePredictor,
) -> None:
    read: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            read.append(1)
            yield b" " * 1024

    with serve(predictor, api_keys=(KEY,)) as client:
        refused = client.post(URL, content=chunks(), headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    assert len(read) <= 1  # the test client hands over the first chunk before the app runs
    assert refused.headers["connection"] == "close"


def test_p17_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options(
        URL,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_p17_cors_allows_only_listed_origins(predictor: SeasonalNaivePredictor) -> None:
    with serve(predictor, cors_origins=("https://shop.example",)) as client:

        def preflight(origin: str, method: str = "POST") -> Any:
            return client.options(
                URL,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                },
            )

        good, evil, put = (
            preflight("https://shop.example"),
            preflight("https://evil.example"),
            preflight("https://shop.example", "PUT"),
        )
    assert good.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in evil.headers
    assert put.status_code == 400


# --- promise 19: the OpenAPI schema is strict and states the domain ---------------------------


def test_p19_openapi_states_types_ranges_and_the_bundle_domain(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    comps = schema["components"]["schemas"]
    row = comps["PredictRow"]
    assert row["additionalProperties"] is False
    assert set(row["required"]) == {"date", "store_nbr", "family", "onpromotion"}
    props = row["properties"]
    assert props["family"]["enum"] == sorted(FAMILIES)
    assert (props["store_nbr"]["minimum"], props["store_nbr"]["maximum"]) == (1, 3)
    assert props["date"]["format"] == "date"
    assert props["date"]["enum"][0] == day(1)
    assert props["date"]["enum"][-1] == day(16)
    assert props["onpromotion"] == {**props["onpromotion"], "minimum": 0, "maximum": 50}
    rows = comps["PredictRequest"]["properties"]["rows"]
    assert (rows["minItems"], rows["maxItems"]) == (1, 50_000)
    assert comps["PredictRequest"]["additionalProperties"] is False
    assert comps["ActualsRow"]["properties"]["sales"]["minimum"] == 0
    actuals_date = comps["ActualsRow"]["properties"]["date"]
    assert actuals_date["format"] == "date"
    # history end - 365 days .. the end of the forecast window, every day listed
    assert actuals_date["enum"][0] == "2016-08-15"
    assert actuals_date["enum"][-1] == day(16)
    assert len(actuals_date["enum"]) == 365 + 16 + 1
    post = schema["paths"][URL]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PredictRequest"
    )
    assert {"413", "415", "422", "503", "504"} <= set(post["responses"])
    assert client.get("/docs").status_code == 200


def test_models_endpoint_reports_version_and_window(client: TestClient) -> None:
    body = client.get("/api/v1/models").json()
    assert body["model_version"] == "naive-test-1"
    assert body["domain"]["first_date"] == day(1)
    assert body["domain"]["last_date"] == day(16)
    assert body["domain"]["families"] == sorted(FAMILIES)
    assert body["details"]["kind"] == "seasonal_naive"


# --- the loaded objects stay out of the garbage collector's full collections -----------------


def test_a_server_freezes_its_loaded_objects_once_warm_and_a_test_app_does_not() -> None:
    import gc

    from api_helpers import make_settings

    from retail_forecast.api.deps import ServiceState
    from retail_forecast.app import load_and_warm

    predictor = SeasonalNaivePredictor(make_history())
    gc.unfreeze()
    try:
        plain = ServiceState(make_settings())
        load_and_warm(plain, lambda _settings: predictor)
        assert plain.status == "ready"
        assert gc.get_freeze_count() == 0
        served = ServiceState(make_settings())
        load_and_warm(served, lambda _settings: predictor, freeze_gc=True)
        assert served.status == "ready"
        assert gc.get_freeze_count() > 1000  # modules, pandas, the model: out of gen 2's walk
    finally:
        gc.unfreeze()
        plain.close()
        served.close()
