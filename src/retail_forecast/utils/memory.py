"""Memory after a large one-off load: give freed heap back; keep loaded objects out of GC."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)


def release_free_heap() -> bool:
    """Ask glibc to return freed heap pages (``malloc_trim(0)``); False where there is none.

    Loading a bundle parses the booster's JSON into millions of short-lived Python objects;
    once they are gone the process keeps their pages (~75 MiB a worker with the real-data
    bundle, bench/RESULTS.md serve) unless asked to give them back.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))


def freeze_loaded_objects() -> None:
    """Collect once, then keep every object alive now out of later collections (``gc.freeze``).

    A loaded service holds ~300,000 GC-tracked objects (modules, torch, pandas, the bundle)
    that live as long as the process; every full collection walked them all, 160-225 ms with
    the GIL held, several times a minute in each worker under load (bench/RESULTS.md serve).
    Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim  # glibc only (not musl)
    except (OSError, AttributeError):
        logger.debug("malloc_trim is not available here")
        return None
    return trim
