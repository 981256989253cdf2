"""A byte-bounded LRU cache of files on local disk (S3 objects read by the engine), safe across processes.

Several processes use one cache directory (the engine's worker processes, Dask workers on one
machine), so everything that must be agreed on lives in the file system, not in a process:

- **Entries** are named by a hash of the object key and its version tag (ETag), written through a
  temporary file and renamed, so a reader never sees a partial copy. Recency is the file's mtime,
  refreshed on every hit; the directory itself is the index.
- **Fetching** happens under an exclusive ``flock`` on one of ``LOCK_STRIPES`` lock files chosen
  by the entry's name: a process (or thread) that wants an entry another one is fetching waits
  for it and then finds the file, so an object is fetched once however many workers ask at once.
- **Leases**: a caller is handed an entry together with a shared ``flock`` on the entry itself,
  held for as long as the caller's lease scope lasts (:func:`held_leases`; the engine opens one
  around every job, so a job's files stay put until it ends). Eviction deletes an entry only under
  an exclusive non-blocking ``flock`` on it, so it skips every entry in use; a reader whose
  descriptor turns out to be a file that eviction just deleted fetches it again.
- **Eviction** runs after each insert, in one process at a time, oldest first, until the total
  fits ``max_bytes`` (entries in use are kept, so the total can exceed it while they are).

Why not ``diskcache``: it keeps its own files behind a SQLite index and deletes an evicted value's
file as it culls, with no way to spare a file a reader still opens by path (astropy opens and
memory-maps paths), and no way to wait for another process's fetch of the same key. What we
need on top of a directory is three ``flock`` calls, the same mechanism the proxy's job store uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

logger = logging.getLogger("app.storage.cache")

#: Number of fetch lock files; two entries share one only when their hashes collide.
LOCK_STRIPES = 256
LOCK_DIR_NAME = ".locks"
#: Attempts at getting an entry that eviction deletes each time between fetch and lease.
GET_ATTEMPTS = 5
#: Age after which a temporary file left by a killed fetch is removed.
TMP_MAX_AGE_SECONDS = 3600.0

_leases: ContextVar[list[int] | None] = ContextVar("temp_cache_leases", default=None)


@contextlib.contextmanager
def held_leases() -> Iterator[None]:
    """Keep every entry handed out inside the block from eviction until the block ends."""
    fds: list[int] = []
    token = _leases.set(fds)
    try:
        yield
    finally:
        _leases.reset(token)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing drops the shared lock


def _keep_lease(fd: int) -> None:
    """Hand ``fd`` (a shared lock on an entry) to the current lease scope, or drop it when there is none."""
    scope = _leases.get()
    if scope is None:
        os.close(fd)
    else:
        scope.append(fd)


@contextlib.contextmanager
def _flocked(path: Path, mode: int) -> Iterator[bool]:
    """Hold ``flock(mode)`` on ``path`` (created if needed); yield whether it was taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


def _lease(path: Path) -> int | None:
    """Open ``path`` with a shared lock; return the descriptor, or ``None`` when the entry is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while an evictor deletes this very file
    if _same_file(fd, path):
        return fd
    os.close(fd)
    return None


class TempFileCache:
    """LRU directory of cached files bounded by total bytes, shared by several processes.

    Parameters
    ----------
    directory
        Where entries live (created on first use).
    max_bytes
        Size the cache is evicted down to after each insert.
    """

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def _entry_path(self, key: str, version: str) -> Path:
        digest = hashlib.sha256(f"{key}\x00{version}".encode()).hexdigest()[:40]
        suffix = "".join(Path(key).suffixes[-2:])[:16]
        safe_suffix = "".join(c for c in suffix if c.isalnum() or c == ".")
        return self.directory / f"{digest}{safe_suffix}"

    def _lock_path(self, entry: Path) -> Path:
        stripe = int(entry.name[:8], 16) % LOCK_STRIPES
        return self.directory / LOCK_DIR_NAME / f"{stripe:03d}.lock"

    def get(self, key: str, version: str, fetch: Callable[[Path], None]) -> Path:
        """Return the cached file for ``key`` at ``version``, calling ``fetch(tmp_path)`` on a miss.

        The file stays on disk until the caller's :func:`held_leases` scope ends.
        """
        (self.directory / LOCK_DIR_NAME).mkdir(parents=True, exist_ok=True)
        path = self._entry_path(key, version)
        for _ in range(GET_ATTEMPTS):
            fetched, fd = self._get_once(path, fetch)
            if fd is not None:
                _keep_lease(fd)
                if fetched:
                    self.evict(keep=path)
                return path
        raise OSError(f"cache entry {path.name} was evicted {GET_ATTEMPTS} times while being fetched")

    def _get_once(self, path: Path, fetch: Callable[[Path], None]) -> tuple[bool, int | None]:
        """Under the entry's fetch lock, lease the entry, fetching it first on a miss."""
        with _flocked(self._lock_path(path), fcntl.LOCK_EX):
            fd = _lease(path)
            if fd is not None:
                os.utime(path)
                return False, fd
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                fetch(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return True, _lease(path)

    def total_bytes(self) -> int:
        """Bytes held by complete entries."""
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        entries: list[tuple[float, Path, int]] = []
        if not self.directory.is_dir():
            return entries
        for entry in self.directory.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, entry, stat.st_size))
        return entries

    def evict(self, keep: Path | None = None) -> int:
        """Delete least-recently-used entries not in use (nor ``keep``) until the cache fits; return bytes freed."""
        lock_dir = self.directory / LOCK_DIR_NAME
        lock_dir.mkdir(parents=True, exist_ok=True)
        with _flocked(lock_dir / "evict.lock", fcntl.LOCK_EX | fcntl.LOCK_NB) as mine:
            if not mine:
                return 0  # another process is evicting right now
            self._drop_stale_tmp()
            entries = sorted(self._entries(), key=lambda item: item[0])
            total = sum(size for _, _, size in entries)
            freed = 0
            for _, entry, size in entries:
                if total <= self.max_bytes:
                    break
                if entry != keep and _delete_unused(entry):
                    total -= size
                    freed += size
        if freed:
            logger.info("temp_cache_evicted", extra={"freed_bytes": freed, "total_bytes": total})
        return freed

    def _drop_stale_tmp(self) -> None:
        cutoff = time.time() - TMP_MAX_AGE_SECONDS
        for tmp in self.directory.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()


def _delete_unused(entry: Path) -> bool:
    """Delete ``entry`` unless someone holds a lease on it; return whether it was deleted."""
    try:
        fd = os.open(entry, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _same_file(fd, entry):
            return False
        entry.unlink()
        return True
    finally:
        os.close(fd)
