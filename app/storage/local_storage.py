"""Local-disk storage rooted at ``STORAGE_BASE_PATH``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from app.core.exceptions import NotAFileError
from app.storage.helpers import file_not_found, normalize_key, resolve_under_root
from app.storage.provider import StorageProvider


class LocalStorage(StorageProvider):
    """Files under one root directory; keys never leave it (symlinks included)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return resolve_under_root(self.root, normalize_key(key))

    def local_path(self, key: str) -> Path:
        """Return the file's path under the root: 404 when missing, 400 when not a regular file."""
        path = self._path(key)
        if not path.exists():
            raise file_not_found(key)
        if not path.is_file():
            raise NotAFileError()
        return path

    def exists(self, key: str) -> bool:
        """Tell whether a regular file exists at ``key``."""
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        """Return the file's size in bytes (404 when missing)."""
        return self.local_path(key).stat().st_size

    def read_bytes(self, key: str) -> bytes:
        """Read the whole file (404 when missing)."""
        return self.local_path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a temporary file beside the target, then rename it over the target."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload_file(self, key: str, source: Path) -> None:
        """Copy ``source`` to ``key`` through a temporary file; nothing to do when it is that file."""
        target = self._path(key)
        if Path(source).resolve() == target:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def check_writable(self) -> None:
        """Create and remove a file in the root itself; the root is never created here (readiness)."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".ready-probe-")
        os.close(fd)
        os.unlink(tmp)

    def delete(self, key: str) -> bool:
        """Remove the file at ``key``; return whether there was one."""
        path = self._path(key)
        if path.is_file():
            path.unlink()
            return True
        return False

    def list_keys(self, prefix: str = "") -> list[str]:
        """List the keys of the files under ``prefix``, sorted (none when it is not a directory)."""
        base = self._path(prefix) if prefix.strip("/") else self.root.resolve()
        if not base.is_dir():
            return []
        root = self.root.resolve()
        return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
