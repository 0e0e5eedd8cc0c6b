"""configure_logging(): handlers for stdout and logs/, called by entry points only."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    level: str = "INFO", log_dir: Path | None = Path("logs"), *, to_stderr: bool = False
) -> None:
    """Log to stdout (stderr when stdout carries --json output) and to ``log_dir``."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_retail_forecast", False):
            root.removeHandler(handler)
    stream = sys.stderr if to_stderr else sys.stdout
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(log_dir / "retail_forecast.log", encoding="utf-8"))
        except OSError:
            pass  # a read-only checkout still logs to stderr
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._retail_forecast = True  # type: ignore[attr-defined]
        root.addHandler(handler)
