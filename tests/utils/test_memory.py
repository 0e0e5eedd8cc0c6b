"""release_free_heap: glibc's malloc_trim, called after loading a bundle."""

from __future__ import annotations

import platform
import sys

import pytest

from retail_forecast.utils.memory import release_free_heap


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_release_free_heap_calls_malloc_trim_on_glibc() -> None:
    from retail_forecast.utils import memory

    assert memory._malloc_trim() is not None  # found in this process's C library
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # ~128 MiB of heap, then freed
    del blocks
    assert isinstance(release_free_heap(), bool)
    release_free_heap()  # safe to call again


def test_release_free_heap_is_a_no_op_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from retail_forecast.utils import memory

    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    try:
        assert release_free_heap() is False
    finally:
        memory._malloc_trim.cache_clear()
