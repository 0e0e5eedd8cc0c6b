"""``retail-forecast serve`` in a subprocess on a free port of 127.0.0.1, as a user starts it.

One helper for the tests that need the real server (uvicorn, the CLI, signals): it picks a
port, keeps the process's output in a log file (shown when a check fails), waits for /ready
and stops the process with SIGTERM (then SIGKILL) at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

CLI = (sys.executable, "-m", "retail_forecast.cli")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``serve --artifacts ARTIFACTS`` with its logs and history under ``workdir``.

    ``env``: variables set on top of the caller's environment; ``clean_env``: drop every
    ``RF_*`` variable of the caller's first (the defaults and the bundle alone, as a new user).
    """

    def __init__(
        self,
        artifacts: Path,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        clean_env: bool = False,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.history_dir = workdir / "history"
        base = {k: v for k, v in os.environ.items() if not (clean_env and k.startswith("RF_"))}
        full_env = {
            **base,
            "RF_LOG_DIR": str(workdir / "logs"),
            "RF_API__HISTORY_DIR": str(self.history_dir),
            **(env or {}),
        }
        command = [*CLI, "serve", "--artifacts", str(artifacts), "--port", str(self.port), *args]
        self.log = (workdir / "serve.log").open("w+b")
        self.proc = subprocess.Popen(
            command, cwd=workdir, env=full_env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 90) -> Self:
        """Return once /ready answers 200; fail with the server's output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/ready never answered 200: {self.output()}")

    def post(self, path: str, body: Any, timeout: float = 60) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=timeout)

    def output(self) -> str:
        """The last 3,000 characters the server wrote."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def __enter__(self) -> Self:
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
