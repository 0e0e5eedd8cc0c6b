"""SageMaker test helpers: a bundle without XGBoost, and the runtime stand-in in a thread."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from bundle_helpers import TinyBundle
from sagemaker_runtime_server import RuntimeState, create_runtime_app

from retail_forecast.artifacts import BundleWriter, ModelBundle

LSTM_FILES = ("preprocessor_nn.json", "lstm/weights.safetensors", "history.parquet")


def derived_bundle(
    tiny: TinyBundle, root: Path, *, files: tuple[str, ...] | None = None, **metadata: Any
) -> Path:
    """Publish a copy of the tiny bundle under ``root`` with some files and metadata changed."""
    source = ModelBundle.open_current(tiny.artifacts)
    with BundleWriter(
        root,
        fingerprint=source.manifest.data_fingerprint,
        metadata={**source.manifest.metadata, **metadata},
    ) as writer:
        for name in files if files is not None else tuple(source.manifest.files):
            target = writer.directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.path / name, target)
    return root


def lstm_only_bundle(tiny: TinyBundle, root: Path) -> Path:
    """A bundle with the tiny bundle's LSTM files only (an endpoint without XGBoost)."""
    return derived_bundle(tiny, root, files=LSTM_FILES)


def blended_bundle(tiny: TinyBundle, root: Path) -> Path:
    """The tiny bundle with blend weight 0.5 for every family, so both models always run."""
    weights = {"first": "xgboost", "second": "lstm", "global_weight": 0.5, "per_family": {}}
    return derived_bundle(tiny, root, blend_weights=weights)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def runtime_server(
    model_dir: Path, endpoints: Mapping[str, Path]
) -> Iterator[tuple[str, RuntimeState]]:
    """The runtime stand-in (uvicorn on 127.0.0.1:<free port>) in a thread.

    Yields (base URL, RuntimeState) once ``/ping`` answers 200.
    """
    port = free_port()
    app = create_runtime_app(model_dir, endpoints=endpoints)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sagemaker-stand-in", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the SageMaker runtime stand-in did not start")
            time.sleep(0.05)
        yield url, app.state.container
    finally:
        server.should_exit = True
        thread.join(timeout=10)
