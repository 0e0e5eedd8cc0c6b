"""Locust user for bench/serve.py: single-series x 16-day POST /api/v1/predict, loopback only.

Not run on its own: ``bench/serve.py`` writes the request bodies (one real (store_nbr, family)
series of test.csv each, pre-serialised JSON) to a file and passes its path in
``RF_BENCH_BODIES``; the locust process only picks one at random and sends it, so the load
generator does no pandas or JSON work. ``RF_BENCH_USER_RPS`` (optional) paces each user at that
many requests a second (locust ``constant_throughput``); unset, users send back to back.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import constant, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

ALLOWED_HOST = "127.0.0.1"
PREDICT_PATH = "/api/v1/predict"
REQUEST_NAME = "POST /api/v1/predict [1 series x 16 days]"
HEADERS = {"Content-Type": "application/json"}


def _load_bodies() -> list[str]:
    path = os.environ.get("RF_BENCH_BODIES")
    if not path:
        return []  # `locust --help` or a listing run: nothing to send
    bodies = [str(b) for b in json.loads(Path(path).read_text())]
    if not bodies:
        raise SystemExit(f"no request bodies in {path}")
    return bodies


BODIES = _load_bodies()
_RPS = os.environ.get("RF_BENCH_USER_RPS")
WAIT: Callable[..., float] = constant_throughput(float(_RPS)) if _RPS else constant(0)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _loopback_only(environment: Any, **_kwargs: Any) -> None:
    """Refuse to start against anything but 127.0.0.1 (this is a load generator)."""
    host = urlsplit(environment.host or "").hostname
    if host != ALLOWED_HOST:
        raise SystemExit(f"bench/locustfile.py only targets {ALLOWED_HOST}, got {host!r}")
    if not BODIES:
        raise SystemExit("RF_BENCH_BODIES is not set: run bench/serve.py")


class SingleSeries(FastHttpUser):
    """One random real series x 16 days per request; a non-200 answer is a failure."""

    wait_time = WAIT
    # one connection per user; a slow answer under load is measured, not failed
    network_timeout = 60.0
    connection_timeout = 10.0

    @task
    def predict_one_series(self) -> None:
        """POST one series' 16 test.csv rows; anything but 200 with a body counts as failed."""
        body = random.choice(BODIES)  # noqa: S311 - sampling, not security
        with self.client.post(
            PREDICT_PATH, data=body, headers=HEADERS, name=REQUEST_NAME, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif not response.content:
                response.failure("empty 200 answer")
            else:
                response.success()
