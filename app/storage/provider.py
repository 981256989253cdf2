"""The storage interface shared by the local and S3 providers.

Keys are relative, ``/``-separated strings (``mast/<obs_id>/<file>.fits``). Every method that
takes a key validates it with :func:`app.storage.helpers.normalize_key` first. Methods are
synchronous; async callers use :meth:`StorageProvider.resolve`, which runs
:meth:`StorageProvider.local_path` in a thread.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread


@dataclass(frozen=True)
class LocalFile:
    """A local copy of a stored object and the object's version (changes whenever its content does)."""

    path: Path
    version: str


class StorageProvider(ABC):
    """Read and write files by storage key."""

    name: str = "abstract"

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """Return a local file holding the object, applying the contract's path rules.

        Raises 403 (:class:`AccessDeniedError`), 404 (:class:`NotFoundError`) or 400
        (:class:`NotAFileError`) as the path rules of ``docs/api.md`` say. S3 objects are copied into
        the LRU temp cache first.
        """

    def local_file(self, key: str) -> LocalFile:
        """Return :meth:`local_path` and the object's version (here: modification time and size).

        The version identifies the content for caches (the composite channel cache): a file
        replaced under the same key gets a new version.
        """
        path = self.local_path(key)
        stat = os.stat(path)
        return LocalFile(path, f"{stat.st_mtime_ns}:{stat.st_size}")

    async def resolve(self, key: str) -> Path:
        """:meth:`local_path` without blocking the event loop (S3 objects download in a thread)."""
        return await anyio.to_thread.run_sync(self.local_path, key)

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file exists at ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of the file at ``key``."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Read the whole content of a (small) file."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace a file atomically."""

    @abstractmethod
    def upload_file(self, key: str, source: Path) -> None:
        """Copy a local file to ``key``."""

    def move_in(self, key: str, source: Path) -> None:
        """Store the local file ``source`` at ``key`` and remove ``source``."""
        try:
            self.upload_file(key, source)
        finally:
            Path(source).unlink(missing_ok=True)

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether something was removed."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys of the files under ``prefix``, sorted."""

    def check_writable(self) -> None:
        """Write and delete a small probe object; raise when storage does not accept it (readiness)."""
        key = f".ready-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.write_bytes(key, b"ready")
        self.delete(key)
