"""Serving commands: ``serve`` (the forecasting API) and ``serve-sagemaker`` (the container)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from retail_forecast.commands.common import ConfigOption, load_settings, with_artifacts
from retail_forecast.config import Settings

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 20


def serve(
    artifacts: Annotated[
        str | None, typer.Option("--artifacts", help="Bundle root; serves its `current`.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=32,
            help="Server processes (default 1, RF_API__WORKERS); each loads the bundle.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the forecasting API (uvicorn); SIGTERM drains in-flight requests, then exits 0.

    The model's data-set facts (horizon, features) come from the bundle; a profile given with
    ``--config`` sets the service's own sections ([api], [monitoring], [aws]).
    """
    settings = load_settings(config=config)
    serve_api(with_artifacts(settings, artifacts), host, port, workers=workers)


def serve_api(
    settings: Settings, host: str | None, port: int | None, *, workers: int | None = None
) -> None:
    """Run the FastAPI app under uvicorn until SIGINT/SIGTERM; a drained shutdown exits 0.

    With several workers, uvicorn's supervisor starts that many processes, each on its own
    SO_REUSEPORT socket where the platform has it (the kernel spreads connections over them);
    each builds the app from the environment (the options given here are passed on as ``RF_*``
    variables) and they share the history store file (appends from any worker reach all).
    """
    import signal

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from retail_forecast.api.runtime.workers import ReusePortMultiprocess, reuse_port_supported
    from retail_forecast.app import create_app

    api = settings.api.model_copy(
        update={
            "host": host or settings.api.host,
            "port": port or settings.api.port,
            "workers": workers or settings.api.workers,
        }
    )
    settings = settings.model_copy(update={"api": api})
    app: Any = "retail_forecast.app:create_app"  # workers > 1: each builds its own app
    if api.workers == 1:
        app = create_app(settings, freeze_gc=True)
    else:
        os.environ.update(
            {
                "RF_ARTIFACTS_DIR": str(Path(settings.artifacts_dir).resolve()),
                "RF_API__HOST": api.host,
                "RF_API__PORT": str(api.port),
                "RF_API__WORKERS": str(api.workers),
            }
        )
    config = uvicorn.Config(
        app,
        factory=api.workers > 1,
        workers=api.workers,
        host=api.host,
        port=api.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # a backstop above the app's own shedding (which answers 503 with Retry-After first)
        limit_concurrency=2 * api.max_in_flight,
        log_config=None,
        access_log=False,
    )
    logger.info(
        "serving %s on http://%s:%d workers=%d",
        settings.artifacts_dir,
        api.host,
        api.port,
        api.workers,
    )
    # uvicorn drains on SIGTERM, then re-raises the signal to the handler that was installed
    # before it ran; a no-op one here makes a drained shutdown exit 0 (promise 2).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    if api.workers > 1 and reuse_port_supported():
        ReusePortMultiprocess(config).run()
    elif api.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
    logger.info("server stopped")


def serve_sagemaker(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Bundle dir or a root with `current`.")
    ] = Path("/opt/ml/model"),
    host: Annotated[str, typer.Option("--host", help="0.0.0.0 inside a container.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
) -> None:
    """Serve the SageMaker container contract (GET /ping, POST /invocations) with uvicorn."""
    import uvicorn

    from retail_forecast.inference.container import create_container_app

    load_settings()  # configures logging
    logger.info("serving sagemaker contract model_dir=%s on %s:%d", model_dir, host, port)
    uvicorn.run(create_container_app(model_dir), host=host, port=port, log_config=None)
