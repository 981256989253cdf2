"""The LRU temp cache: bounded by bytes, least recently used evicted first, atomic entries."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from app.storage.temp_cache import TempFileCache


def _writer(size: int, calls: list[str], name: str):  # type: ignore[no-untyped-def]
    def fetch(target: Path) -> None:
        calls.append(name)
        target.write_bytes(b"x" * size)

    return fetch


def test_hit_does_not_refetch(tmp_path: Path) -> None:
    cache = TempFileCache(tmp_path, max_bytes=1000)
    calls: list[str] = []
    first = cache.get("a.fits", "v1", _writer(10, calls, "a"))
    second = cache.get("a.fits", "v1", _writer(10, calls, "a"))
    assert first == second
    assert calls == ["a"]
    assert first.suffix == ".fits"
    cache.get("a.fits", "v2", _writer(10, calls, "a2"))
    assert calls == ["a", "a2"]


def test_eviction_is_lru_and_bounded(tmp_path: Path) -> None:
    cache = TempFileCache(tmp_path, max_bytes=250)
    calls: list[str] = []
    a = cache.get("a", "1", _writer(100, calls, "a"))
    b = cache.get("b", "1", _writer(100, calls, "b"))
    old = time.time() - 100
    os.utime(a, (old, old))
    os.utime(b, (old + 1, old + 1))
    cache.get("a", "1", _writer(100, calls, "a"))  # hit refreshes a
    c = cache.get("c", "1", _writer(100, calls, "c"))
    assert a.exists()
    assert c.exists()
    assert not b.exists()
    assert cache.total_bytes() <= 250


def test_failed_fetch_leaves_nothing(tmp_path: Path) -> None:
    cache = TempFileCache(tmp_path, max_bytes=100)

    def broken(target: Path) -> None:
        target.write_bytes(b"partial")
        raise OSError("network dropped")

    with contextlib.suppress(OSError):
        cache.get("x", "1", broken)
    assert [p.name for p in tmp_path.iterdir()] == [".locks"]  # the fetch locks only, no entry or temp file
