"""The SageMaker container contract over :mod:`retail_forecast.inference.handler`.

``GET /ping`` answers 200 once the bundle is loaded (503 before), ``POST /invocations`` decodes
by ``Content-Type``, predicts and encodes by ``Accept`` (port 8080 in a container). A request
the handler refuses gets 4xx (415 for an unknown content type, 406 for an unknown accept, 400
otherwise) with the handler's message; anything else 500. This is all a SageMaker hosting
container answers: the runtime's ``InvokeEndpoint`` path (``/endpoints/{name}/invocations``)
belongs to AWS, which forwards each call here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
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


@dataclass
class ContainerState:
    """The container's model, loaded once in the app's lifespan (None until then)."""

    model_dir: Path
    model: HostedModel | None = None

    def load(self) -> None:
        self.model = model_fn(self.model_dir)


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


async def read_body(request: Request) -> bytes | None:
    """Return the request body, or None when it is over :data:`MAX_BODY_BYTES`."""
    body = await request.body()
    return None if len(body) > MAX_BODY_BYTES else body


async def ping(request: Request) -> Response:
    """Answer ``GET /ping``: 200 once the model is loaded, 503 before."""
    state: ContainerState = request.app.state.container
    return Response(status_code=200 if state.model is not None else 503)


async def invocations(request: Request) -> Response:
    """Answer the container contract's ``POST /invocations``."""
    state: ContainerState = request.app.state.container
    if state.model is None:
        return Response(b"model not loaded", 503, media_type="text/plain")
    body = await read_body(request)
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


def create_container_app(model_dir: Path = DEFAULT_MODEL_DIR) -> Starlette:
    """Build the container app over the bundle in ``model_dir`` (a bundle or a root)."""
    state = ContainerState(Path(model_dir))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(state.load)
        yield

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.container = state
    return app
