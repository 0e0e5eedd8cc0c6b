"""``sagemaker-runtime`` InvokeEndpoint for SageMakerPredictor: chunking, errors, retries.

Bodies are split so each stays at or under ``max_body_bytes`` (SageMaker caps a payload at
6 MB; promise 28) and the results are joined in input order. ``ModelError`` and
``ValidationError`` are never retried: they raise :class:`RemoteModelError` (API 502 with the
endpoint's message; ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn`` are
logged). ``ThrottlingException``, ``ServiceUnavailable`` and ``InternalFailure`` are retried with
jittered exponential backoff and ``ModelNotReadyException`` waits, bounded by attempts and a
time budget, then :class:`RemoteUnavailableError` (API 503; promise 29). The retries are ours,
not botocore's (the client gets one attempt), so the budget holds and Stubber tests see every
call. Wire formats: see :mod:`retail_forecast.inference.handler`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
import numpy as np
import numpy.typing as npt
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from retail_forecast.aws.env import AwsEnvSettings
from retail_forecast.config import AwsConfig
from retail_forecast.errors import ConfigError, RemoteModelError, RemoteUnavailableError
from retail_forecast.inference.handler import CSV, JSON

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

logger = logging.getLogger(__name__)

F32Array = npt.NDArray[np.float32]
ROW_FORMAT: Final = "%.9g"  # float32 round-trips exactly through 9 significant digits
RETRYABLE: Final = frozenset(
    {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure"}
)
NOT_READY: Final = "ModelNotReadyException"


def make_runtime_client(
    config: AwsConfig, env: AwsEnvSettings | None = None
) -> SageMakerRuntimeClient:
    """``sagemaker-runtime`` client: explicit timeouts, one attempt (our loop retries)."""
    env = env if env is not None else AwsEnvSettings()
    session = boto3.session.Session(
        aws_access_key_id=env.aws_access_key_id,
        aws_secret_access_key=env.aws_secret_access_key,
        aws_session_token=env.aws_session_token,
        profile_name=env.aws_profile,
    )
    botocore_config = Config(
        region_name=config.region,
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
    )
    return session.client(
        "sagemaker-runtime", endpoint_url=config.runtime_endpoint_url, config=botocore_config
    )


def chunk_ranges(sizes: Sequence[int], *, budget: int, overhead: int = 0) -> list[range]:
    """Split items (their byte sizes) into consecutive ranges whose bodies fit ``budget``."""
    ranges: list[range] = []
    start, used = 0, overhead
    for i, size in enumerate(sizes):
        if overhead + size > budget:
            raise ConfigError(f"one item of {size} bytes exceeds the {budget}-byte body budget")
        if used + size > budget:
            ranges.append(range(start, i))
            start, used = i, overhead
        used += size
    if start < len(sizes):
        ranges.append(range(start, len(sizes)))
    return ranges


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of one InvokeEndpoint call."""

    max_attempts: int = 4
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    not_ready_delay_s: float = 1.0
    budget_s: float = 8.0


class EndpointInvoker:
    """``invoke_endpoint`` with chunking, error mapping and bounded retries."""

    def __init__(
        self,
        client: SageMakerRuntimeClient,
        *,
        max_body_bytes: int,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_body_bytes = max_body_bytes
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock

    def invoke(self, endpoint: str, body: bytes, *, content_type: str, accept: str) -> bytes:
        """One logical call; raises RemoteModelError / RemoteUnavailableError."""
        deadline = self.clock() + self.policy.budget_s
        attempt = 1
        while True:
            try:
                response = self.client.invoke_endpoint(
                    EndpointName=endpoint, Body=body, ContentType=content_type, Accept=accept
                )
                return response["Body"].read()
            except ClientError as exc:
                delay = self._retry_delay(exc, endpoint, attempt, deadline)
            except BotoCoreError as exc:  # connection refused, read timeout, ...
                raise RemoteUnavailableError(f"endpoint {endpoint}: {exc}") from exc
            logger.warning("endpoint %s busy, retry %d in %.2fs", endpoint, attempt, delay)
            self.sleep(delay)
            attempt += 1

    def _retry_delay(self, exc: ClientError, endpoint: str, attempt: int, deadline: float) -> float:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code == "ModelError":
            raw: dict[str, Any] = dict(exc.response)
            logger.error(
                "ModelError endpoint=%s OriginalStatusCode=%s OriginalMessage=%s LogStreamArn=%s",
                endpoint,
                raw.get("OriginalStatusCode"),
                raw.get("OriginalMessage"),
                raw.get("LogStreamArn"),
            )
            original = raw.get("OriginalMessage") or message
            status = raw.get("OriginalStatusCode", "?")
            raise RemoteModelError(f"endpoint {endpoint}: model error {status}: {original}")
        if code not in RETRYABLE and code != NOT_READY:
            raise RemoteModelError(f"endpoint {endpoint} refused the request ({code}): {message}")
        p = self.policy
        if code == NOT_READY:
            delay = p.not_ready_delay_s
        else:
            delay = min(p.max_delay_s, p.base_delay_s * 2 ** (attempt - 1))
            delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not security
        if attempt >= p.max_attempts or self.clock() + delay > deadline:
            raise RemoteUnavailableError(
                f"endpoint {endpoint} still {code} after {attempt} attempt(s): {message}"
            )
        return delay

    # -- payloads ------------------------------------------------------------------------------

    def predict_rows(self, endpoint: str, x: F32Array) -> F32Array:
        """XGBoost: one float32 output per feature row, in row order (``text/csv``)."""
        fmt = ",".join([ROW_FORMAT] * x.shape[1]) + "\n"
        lines = [(fmt % tuple(row)).encode("ascii") for row in x.astype(np.float64).tolist()]
        out: list[F32Array] = []
        for part in chunk_ranges([len(line) for line in lines], budget=self.max_body_bytes):
            body = b"".join(lines[part.start : part.stop])
            raw = self.invoke(endpoint, body, content_type=CSV, accept=CSV)
            values = _parse_csv(raw, endpoint)
            if len(values) != len(part):
                raise RemoteModelError(
                    f"endpoint {endpoint} returned {len(values)} values for {len(part)} rows"
                )
            out.append(values)
        return np.concatenate(out) if out else np.empty(0, dtype=np.float32)

    def predict_windows(self, endpoint: str, x_enc: F32Array, x_fut: F32Array) -> F32Array:
        """LSTM: scaled outputs ``[batch, horizon]``, in batch order (``application/json``).

        The horizon is ``x_fut``'s second axis: the bundle's, as the model built the inputs.
        """
        horizon = x_fut.shape[1]
        enc = [json.dumps(a).encode() for a in x_enc.astype(np.float64).tolist()]
        fut = [json.dumps(a).encode() for a in x_fut.astype(np.float64).tolist()]
        head, middle, tail = b'{"instances":[', b'],"future":[', b"]}"
        sizes = [len(e) + len(f) + 2 for e, f in zip(enc, fut, strict=True)]
        overhead = len(head) + len(middle) + len(tail)
        out: list[F32Array] = []
        for part in chunk_ranges(sizes, budget=self.max_body_bytes, overhead=overhead):
            s = slice(part.start, part.stop)
            body = head + b",".join(enc[s]) + middle + b",".join(fut[s]) + tail
            raw = self.invoke(endpoint, body, content_type=JSON, accept=JSON)
            out.append(_parse_predictions(raw, endpoint, rows=len(part), horizon=horizon))
        return np.concatenate(out) if out else np.empty((0, horizon), dtype=np.float32)


def _parse_csv(raw: bytes, endpoint: str) -> F32Array:
    try:
        return np.array(raw.split(), dtype=np.float64).astype(np.float32)
    except ValueError:
        raise RemoteModelError(f"endpoint {endpoint} returned a non-numeric csv body") from None


def _parse_predictions(raw: bytes, endpoint: str, *, rows: int, horizon: int) -> F32Array:
    try:
        values = np.asarray(json.loads(raw)["predictions"], dtype=np.float64).astype(np.float32)
    except (ValueError, KeyError, TypeError):
        raise RemoteModelError(f"endpoint {endpoint} returned malformed json") from None
    if values.shape != (rows, horizon):
        raise RemoteModelError(f"endpoint {endpoint} returned shape {values.shape} for {rows}")
    return values
