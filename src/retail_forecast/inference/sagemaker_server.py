"""The SageMaker container contract over :mod:`retail_forecast.inference.handler`, and its stand-in.

``GET /ping`` answers 200 once the bundle is loaded (503 before), ``POST /invocations`` decodes
by ``Content-Type``, predicts and encodes by ``Accept`` (port 8080 in a container). A request
the handler refuses gets 4xx (415 for an unknown content type, 406 for an unknown accept, 400
otherwise) with the handler's message; anything else 500.

The same app also answers ``POST /endpoints/{name}/invocations``, the path boto3's
``sagemaker-runtime`` ``InvokeEndpoint`` calls, so a real boto3 client whose ``endpoint_url``
points here runs the whole client path. There it behaves like the runtime service: a model's
4xx/5xx becomes HTTP 424 with ``x-amzn-ErrorType: ModelError`` and the JSON members of
botocore's ``ModelError`` shape (``OriginalStatusCode``, ``OriginalMessage``, ``LogStreamArn``);
an endpoint name it does not serve gets 400 ``ValidationError``, as from AWS.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from retail_forecast.inference.handler import (
    HandlerInputError,
    HostedModel,
    UnsupportedMediaError,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
    response_type,
)

logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 8080
DEFAULT_MODEL_DIR: Final = Path("/opt/ml/model")
MAX_BODY_BYTES: Final = 6 * 1024 * 1024  # SageMaker's InvokeEndpoint cap
LOG_STREAM_ARN: Final = "arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{name}"


@dataclass
class ServerState:
    """The models, loaded once in the lifespan: the container's and each named endpoint's."""

    model_dir: Path
    endpoints: Mapping[str, Path] = field(default_factory=dict)
    model: HostedModel | None = None
    by_name: dict[str, HostedModel] = field(default_factory=dict)

    def load(self) -> None:
        self.model = model_fn(self.model_dir)
        self.by_name = {name: model_fn(path) for name, path in self.endpoints.items()}


@dataclass(frozen=True)
class Invocation:
    """One handler run: the HTTP status, the body and its media type (or an error message)."""

    status: int
    body: bytes
    content_type: str


def invoke(
    model: HostedModel, body: bytes, content_type: str | None, accept: str | None
) -> Invocation:
    """Run input_fn -> predict_fn -> output_fn; map the handler's refusals to 4xx."""
    try:
        prediction = predict_fn(input_fn(body, content_type), model)
        kind = response_type(prediction, accept)
        return Invocation(200, output_fn(prediction, kind), kind)
    except UnsupportedMediaError as exc:
        status = 406 if "accept" in str(exc) else 415
        return Invocation(status, str(exc).encode(), "text/plain")
    except HandlerInputError as exc:
        return Invocation(400, str(exc).encode(), "text/plain")
    except Exception:  # the container answers 500 and logs; SageMaker shows ModelError 500
        logger.exception("invocation failed")
        return Invocation(500, b"internal error in the model container", "text/plain")


async def _read_body(request: Request) -> bytes | None:
    body = await request.body()
    return None if len(body) > MAX_BODY_BYTES else body


async def ping(request: Request) -> Response:
    state: ServerState = request.app.state.server
    return Response(status_code=200 if state.model is not None else 503)


async def invocations(request: Request) -> Response:
    """Answer the container contract's ``POST /invocations``."""
    state: ServerState = request.app.state.server
    if state.model is None:
        return Response(b"model not loaded", 503, media_type="text/plain")
    body = await _read_body(request)
    if body is None:
        return Response(b"body too large", 413, media_type="text/plain")
    result = await run_in_threadpool(
        invoke,
        state.model,
        body,
        request.headers.get("content-type"),
        request.headers.get("accept"),
    )
    return Response(result.body, result.status, media_type=result.content_type)


def _runtime_error(code: str, status: int, message: str, **members: Any) -> Response:
    content = {"__type": code, "message": message, **members}
    return JSONResponse(content, status, headers={"x-amzn-ErrorType": code})


async def endpoint_invocations(request: Request) -> Response:
    """``POST /endpoints/{name}/invocations``: the SageMaker runtime's InvokeEndpoint."""
    state: ServerState = request.app.state.server
    name = request.path_params["name"]
    model = state.by_name.get(name) if state.endpoints else state.model
    if model is None:
        return _runtime_error(
            "ValidationError", 400, f"Endpoint {name} of account 000000000000 not found."
        )
    body = await _read_body(request)
    if body is None:
        return _runtime_error("ValidationError", 413, "Request payload exceeds 6 MB")
    result = await run_in_threadpool(
        invoke, model, body, request.headers.get("content-type"), request.headers.get("accept")
    )
    if result.status != 200:
        message = result.body.decode("utf-8", "replace")
        return _runtime_error(
            "ModelError",
            424,
            f"Received client error ({result.status}) from primary with message "
            f'"{message}". See the log stream for more information.',
            OriginalStatusCode=result.status,
            OriginalMessage=message,
            LogStreamArn=LOG_STREAM_ARN.format(name=name),
        )
    headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
    return Response(result.body, 200, headers=headers, media_type=result.content_type)


def create_server_app(
    model_dir: Path = DEFAULT_MODEL_DIR, *, endpoints: Mapping[str, Path] | None = None
) -> Starlette:
    """Build the container app; ``endpoints`` maps runtime endpoint names to their own model dirs.

    Without ``endpoints`` every name under ``/endpoints/{name}/invocations`` uses ``model_dir``.
    """
    state = ServerState(Path(model_dir), dict(endpoints or {}))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(state.load)
        yield

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", endpoint_invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.server = state
    return app
