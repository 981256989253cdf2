"""Refuse to start on storage the service cannot write, and say how to fix it.

The usual case is a fresh host: Docker creates a bind-mounted ``./data`` owned by root, the
services run as uid 1000, and without this check the first download or index write would fail
much later (or the proxy would crash-loop with a bare ``PermissionError``). Both lifespans call
:func:`check_startup_storage` before serving: it creates the local root and the service's own
directories when missing, writes and deletes a probe file in each (a probe object in the bucket
for S3, creating the bucket first when ``S3_CREATE_BUCKET`` allows), and on failure logs one
``storage_not_writable`` line naming the place, the uid and gid of the process and what to do,
then raises :class:`StorageNotWritableError`, so the server exits non-zero instead of serving.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from app.storage.local_storage import LocalStorage
from app.storage.provider import StorageProvider

logger = logging.getLogger("app.storage.startup")


class StorageNotWritableError(RuntimeError):
    """The service cannot write where it must; the message names the place, the uid and the fix."""


def _probe_directory(directory: Path) -> None:
    """Create ``directory`` when missing, then write and delete a probe file in it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".startup-probe-")
    os.close(fd)
    os.unlink(tmp)


def _local_hint(path: Path, uid: int, gid: int) -> str:
    return (
        f"make {path} writable by uid {uid} (gid {gid}): with a bind mount, run `sudo chown -R {uid}:{gid} <host dir>` "
        "on the host, or use the named volume of docker-compose.yml"
    )


def _bucket_probe(storage: StorageProvider, create_bucket: bool) -> Callable[[], None]:
    def probe() -> None:
        ensure_bucket = getattr(storage, "ensure_bucket", None)
        if create_bucket and ensure_bucket is not None and ensure_bucket():
            logger.info("s3_bucket_created", extra={"bucket": getattr(storage, "bucket", "?")})
        storage.check_writable()

    return probe


def _targets(
    storage: StorageProvider, directories: Sequence[Path], create_bucket: bool, uid: int, gid: int
) -> list[tuple[str, Callable[[], None], str]]:
    """``(place, probe, hint)`` of every place the service writes."""
    targets: list[tuple[str, Callable[[], None], str]] = []
    if isinstance(storage, LocalStorage):
        root = storage.root
        targets.append((str(root), partial(_probe_directory, root), _local_hint(root, uid, gid)))
    else:
        bucket = getattr(storage, "bucket", "?")
        hint = "check S3_ENDPOINT, S3_BUCKET_NAME and the credentials; S3_CREATE_BUCKET=true creates a missing bucket"
        targets.append((f"s3://{bucket}", _bucket_probe(storage, create_bucket), hint))
    for directory in directories:
        targets.append((str(directory), partial(_probe_directory, directory), _local_hint(directory, uid, gid)))
    return targets


def check_startup_storage(
    storage: StorageProvider, *, directories: Sequence[Path] = (), create_bucket: bool = False
) -> None:
    """Check that the service can write its storage and ``directories``; raise with a clear message if not.

    Parameters
    ----------
    storage
        The service's storage provider (local root or S3 bucket).
    directories
        Local directories the service writes besides storage (the proxy's downloads, the engine's
        semantic index); created when missing.
    create_bucket
        Create a missing S3 bucket first (``S3_CREATE_BUCKET``).

    Raises
    ------
    StorageNotWritableError
        A place cannot be written; the message names it, the uid and the fix.
    """
    uid, gid = os.getuid(), os.getgid()
    for place, probe, hint in _targets(storage, directories, create_bucket, uid, gid):
        try:
            probe()
        except Exception as error:  # any failure here means "cannot start": name it, then stop
            reason = f"{type(error).__name__}: {error}"
            logger.error(
                "storage_not_writable", extra={"path": place, "uid": uid, "gid": gid, "reason": reason, "fix": hint}
            )
            raise StorageNotWritableError(
                f"Cannot write to {place} as uid {uid} (gid {gid}): {reason}. To fix: {hint}."
            ) from None


def main(argv: Sequence[str]) -> int:
    """Check storage from the settings and the directories ``argv`` names; return the exit status.

    For a server whose lifespan failure does not end the process with a non-zero status: uvicorn
    with ``--workers 2`` (the proxy image) stops, but exits 0, when a worker fails to start, so the
    image runs ``python -m app.storage.startup "$MAST_DOWNLOAD_DIR" && exec uvicorn ...``.
    """
    from app.core.logging import configure_logging
    from app.core.settings import get_settings
    from app.storage.factory import create_storage

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        check_startup_storage(
            create_storage(settings), directories=[Path(arg) for arg in argv], create_bucket=settings.s3_create_bucket
        )
    except StorageNotWritableError:
        return 1
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
