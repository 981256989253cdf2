"""On-disk cache of reprojected composite channels, shared by every engine worker process.

One ``.npy`` file per reprojected channel in one directory, named by a SHA-256 of the cache key
(file identities, read factors and the grid), so a re-stretch of the same inputs hits the cache on
whichever worker process serves it, and a full-size export never reuses a preview-resolution grid
(the grid is part of the key). Files are written to a private temporary name and renamed with
:func:`os.replace`, so readers only ever see complete files and two workers writing the same entry
both leave a complete one. Hits are read back memory-mapped and read-only (the compositor copies
before it changes anything). An entry expires ``ttl_seconds`` after its mtime (refreshed on every
hit); after each insert the oldest entries are deleted until at most ``max_entries`` files and
``max_bytes`` bytes remain. An unreadable or wrongly shaped file is deleted and counts as a miss.
Cache failures are logged and never fail a job. Hits and misses are counted in the process that
looks up (a worker process; the counts reach ``/metrics`` through the multi-process files).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.metrics import CHANNEL_CACHE

logger = logging.getLogger("app.composite.cache")

SUFFIX = ".npy"
#: Temporary files of writers that died are removed once they are this old (seconds).
STALE_TMP_SECONDS = 3600.0


@dataclass(frozen=True)
class CacheEntry:
    """One complete cache file as seen on disk."""

    path: Path
    mtime: float
    size: int


class DiskChannelCache:
    """Directory of reprojected channels bounded by age, entry count and bytes.

    Parameters
    ----------
    directory : Path
        Cache directory (created on first write).
    ttl_seconds : float
        Age (since written or last hit) after which an entry is ignored and deleted; ``<= 0``
        disables the cache.
    max_entries : int
        Most entries kept; ``<= 0`` disables the cache.
    max_bytes : int
        Most bytes kept; arrays larger than this are not stored.
    """

    def __init__(self, directory: Path | str, *, ttl_seconds: float, max_entries: int, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    @property
    def enabled(self) -> bool:
        """Whether the bounds allow any entry at all."""
        return self.ttl_seconds > 0 and self.max_entries > 0 and self.max_bytes > 0

    @staticmethod
    def digest(key: tuple[object, ...]) -> str:
        """Stable file stem of a key (SHA-256 of its ``repr``; keys hold only str/int/tuple)."""
        return hashlib.sha256(repr(key).encode()).hexdigest()

    def entry_path(self, key: tuple[object, ...]) -> Path:
        """Path of the cache file of ``key``."""
        return self.directory / f"{self.digest(key)}{SUFFIX}"

    def get(self, key: tuple[object, ...], shape: tuple[int, ...]) -> np.ndarray | None:
        """Return the cached read-only float32 array of ``key`` with ``shape``, or ``None`` on a miss.

        Expired, unreadable and wrongly shaped files are deleted (the caller then rewrites them).
        Each lookup of an enabled cache counts in ``jwst_composite_channel_cache_total``.
        """
        if not self.enabled:
            return None
        array = self._lookup(key, shape)
        CHANNEL_CACHE.labels(result="miss" if array is None else "hit").inc()
        return array

    def _lookup(self, key: tuple[object, ...], shape: tuple[int, ...]) -> np.ndarray | None:
        path = self.entry_path(key)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if time.time() - mtime > self.ttl_seconds:
            _unlink(path)
            return None
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            logger.warning("composite_cache_unreadable", extra={"entry": path.name, "error": type(error).__name__})
            _unlink(path)
            return None
        if not isinstance(array, np.ndarray) or array.shape != tuple(shape) or array.dtype != np.float32:
            logger.warning("composite_cache_unreadable", extra={"entry": path.name, "error": "shape_or_dtype"})
            del array
            _unlink(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return array

    def put(self, key: tuple[object, ...], array: np.ndarray) -> bool:
        """Store ``array`` (float32) under ``key`` atomically, then evict; ``True`` when stored."""
        if not self.enabled or array.nbytes > self.max_bytes:
            return False
        path = self.entry_path(key)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        except OSError as error:
            logger.warning("composite_cache_write_failed", extra={"entry": path.name, "error": type(error).__name__})
            _unlink(tmp)
            return False
        self.evict(keep=path)
        return True

    def entries(self) -> list[CacheEntry]:
        """Complete cache files, oldest first (temporary files are not entries)."""
        found: list[CacheEntry] = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return found
        now = time.time()
        for name in names:
            entry = self.directory / name
            try:
                stat = entry.stat()
            except OSError:
                continue
            if name.startswith("."):
                if name.endswith(".tmp") and now - stat.st_mtime > STALE_TMP_SECONDS:
                    _unlink(entry)
                continue
            if name.endswith(SUFFIX):
                found.append(CacheEntry(entry, stat.st_mtime, stat.st_size))
        found.sort(key=lambda e: e.mtime)
        return found

    def evict(self, keep: Path | None = None) -> int:
        """Delete expired entries, then the oldest ones beyond the bounds; return the count deleted."""
        now = time.time()
        kept: list[CacheEntry] = []
        deleted = 0
        for entry in self.entries():
            if entry.path != keep and now - entry.mtime > self.ttl_seconds:
                deleted += _unlink(entry.path)
            else:
                kept.append(entry)
        total = sum(e.size for e in kept)
        count = len(kept)
        for entry in kept:
            if count <= self.max_entries and total <= self.max_bytes:
                break
            if entry.path == keep:
                continue
            deleted += _unlink(entry.path)
            count -= 1
            total -= entry.size
        if deleted:
            logger.info("composite_cache_evicted", extra={"entries": deleted, "total_bytes": total})
        return deleted

    def clear(self) -> None:
        """Delete every entry."""
        for entry in self.entries():
            _unlink(entry.path)


def _unlink(path: Path) -> int:
    """Delete ``path`` if it is there (another worker may have won); 1 when this call deleted it."""
    try:
        path.unlink()
    except OSError:
        return 0
    return 1
