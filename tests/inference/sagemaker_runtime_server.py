"""A local stand-in for the SageMaker runtime service, in front of our container contract.

AWS answers ``POST /endpoints/{name}/invocations`` (boto3 ``sagemaker-runtime``
``InvokeEndpoint``) and forwards each call to the model container's ``/invocations``; no
container serves that path itself, so the production app (:mod:`retail_forecast.inference.
container`) does not either. This stand-in serves the container's ``/ping`` and
``/invocations`` plus the runtime path, so a real boto3 client whose ``endpoint_url`` points
here runs the whole client path without an AWS account (the tests, ``bench/sagemaker_local.py``
and ``notebooks/02_sagemaker.ipynb`` use it).

On the runtime path it answers as the runtime service does: a model's 4xx/5xx becomes HTTP 424
with ``x-amzn-ErrorType: ModelError`` and the JSON members of botocore's ``ModelError`` shape
(``OriginalStatusCode``, ``OriginalMessage``, ``LogStreamArn``); an endpoint name it does not
serve gets 400 ``ValidationError``, and a body over 6 MB 413 ``ValidationError``, as from AWS.

Run it as a script (a dev tool, outside the package)::

    .venv/bin/python tests/inference/sagemaker_runtime_server.py --model-dir artifacts \
        [--endpoint NAME=DIR ...] [--host 127.0.0.1] [--port 8080]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from retail_forecast.inference.container import (
    DEFAULT_PORT,
    ContainerState,
    invocations,
    invoke,
    ping,
    read_body,
)
from retail_forecast.inference.handler import HostedModel, model_fn

LOG_STREAM_ARN: Final = "arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{name}"


@dataclass
class RuntimeState(ContainerState):
    """The container's model and each named endpoint's, loaded once in the lifespan."""

    endpoints: Mapping[str, Path] = field(default_factory=dict)
    by_name: dict[str, HostedModel] = field(default_factory=dict)

    def load(self) -> None:
        super().load()
        self.by_name = {name: model_fn(path) for name, path in self.endpoints.items()}


def _runtime_error(code: str, status: int, message: str, **members: Any) -> Response:
    content = {"__type": code, "message": message, **members}
    return JSONResponse(content, status, headers={"x-amzn-ErrorType": code})


async def endpoint_invocations(request: Request) -> Response:
    """``POST /endpoints/{name}/invocations``: the SageMaker runtime's InvokeEndpoint."""
    state: RuntimeState = request.app.state.container
    name = request.path_params["name"]
    model = state.by_name.get(name) if state.endpoints else state.model
    if model is None:
        return _runtime_error(
            "ValidationError", 400, f"Endpoint {name} of account 000000000000 not found."
        )
    body = await read_body(request)
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


def create_runtime_app(
    model_dir: Path, *, endpoints: Mapping[str, Path] | None = None
) -> Starlette:
    """The container routes plus the runtime path; ``endpoints`` maps names to model dirs.

    Without ``endpoints`` every name under ``/endpoints/{name}/invocations`` uses ``model_dir``.
    """
    state = RuntimeState(Path(model_dir), endpoints=dict(endpoints or {}))

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
    app.state.container = state
    return app


def _endpoint(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the stand-in with uvicorn until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="bundle dir or root")
    parser.add_argument(
        "--endpoint", type=_endpoint, action="append", default=[], help="NAME=DIR, repeatable"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_runtime_app(args.model_dir, endpoints=dict(args.endpoint))
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
