"""A real ``retail-forecast serve`` on 127.0.0.1 for the dashboard and explain tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import TinyBundle

KEY = "planner-browser-key-42"


class Server:
    """``python -m retail_forecast.cli serve`` on a free port of 127.0.0.1, with one API key."""

    def __init__(self, bundle: TinyBundle | Path, workdir: Path, **env: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = (workdir / "serve.log").open("w+b")
        environment = {
            **os.environ,
            "RF_LOG_DIR": str(workdir / "logs"),
            "RF_API__HISTORY_DIR": str(workdir / "history"),
            "RF_API__API_KEYS": json.dumps([KEY]),
            "RF_MONITORING__DB_PATH": str(workdir / "monitoring.sqlite"),
            **env,
        }
        command = [sys.executable, "-m", "retail_forecast.cli", "serve"]
        artifacts = bundle if isinstance(bundle, Path) else bundle.artifacts
        command += ["--artifacts", str(artifacts), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/ready never answered 200: {self.output()}")

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"X-Api-Key": KEY}
        if body is None:
            answer = httpx.get(self.url + path, headers=headers, timeout=30)
        else:
            answer = httpx.post(self.url + path, json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def output(self) -> str:
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
