"""A byte-bounded LRU cache of files on local disk (S3 objects read by the engine).

Entries are named by a hash of the object key and its version tag (ETag), written through a
temporary file and renamed, so concurrent readers never see a partial copy. Recency is the
file's mtime, refreshed on every hit; after an insert the oldest entries are evicted until the
total size fits ``max_bytes`` (the entry just inserted is never evicted).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("app.storage.cache")


class TempFileCache:
    """LRU directory of cached files bounded by total bytes."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def _entry_path(self, key: str, version: str) -> Path:
        digest = hashlib.sha256(f"{key}\x00{version}".encode()).hexdigest()[:40]
        suffix = "".join(Path(key).suffixes[-2:])[:16]
        safe_suffix = "".join(c for c in suffix if c.isalnum() or c == ".")
        return self.directory / f"{digest}{safe_suffix}"

    def _key_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(name, threading.Lock())

    def get(self, key: str, version: str, fetch: Callable[[Path], None]) -> Path:
        """Return the cached file for ``key`` at ``version``, calling ``fetch(tmp_path)`` on a miss."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._entry_path(key, version)
        with self._key_lock(path.name):
            if path.is_file():
                os.utime(path)
                return path
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                fetch(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        self.evict(keep=path)
        return path

    def total_bytes(self) -> int:
        """Bytes held by complete entries."""
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        entries: list[tuple[float, Path, int]] = []
        if not self.directory.is_dir():
            return entries
        for entry in self.directory.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, entry, stat.st_size))
        return entries

    def evict(self, keep: Path | None = None) -> int:
        """Delete least-recently-used entries until the cache fits; return bytes freed."""
        entries = sorted(self._entries(), key=lambda item: item[0])
        total = sum(size for _, _, size in entries)
        freed = 0
        for _, entry, size in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and entry == keep:
                continue
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            total -= size
            freed += size
        if freed:
            logger.info("temp_cache_evicted", extra={"freed_bytes": freed, "total_bytes": total})
        return freed
