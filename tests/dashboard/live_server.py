"""A real ``retail-forecast serve`` on 127.0.0.1 with one API key, for the dashboard tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from bundle_helpers import TinyBundle
from serve_process import ServeProcess

KEY = "planner-browser-key-42"


class Server(ServeProcess):
    """:class:`ServeProcess` with ``KEY`` as its one API key and a monitoring log of its own."""

    def __init__(self, bundle: TinyBundle | Path, workdir: Path, **env: str) -> None:
        artifacts = bundle if isinstance(bundle, Path) else bundle.artifacts
        settings = {
            "RF_API__API_KEYS": json.dumps([KEY]),
            "RF_MONITORING__DB_PATH": str(workdir / "monitoring.sqlite"),
            **env,
        }
        super().__init__(artifacts, workdir, env=settings)

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"X-Api-Key": KEY}
        if body is None:
            answer = httpx.get(self.url + path, headers=headers, timeout=30)
        else:
            answer = httpx.post(self.url + path, json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()
