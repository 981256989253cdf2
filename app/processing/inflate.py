"""Compressed FITS streams that never inflate past a byte budget.

astropy reads ``.fits.gz`` (and ``.bz2``, ``.xz``) files through the standard library's
decompressing file objects, whose ``seek`` inflates and discards every byte up to the target: just
opening the first HDU of a gzip file whose header declares 4 GB of zeros inflates 4 GB to step over
its data. The standard library has no bounded or lazy variant and astropy no hook for one, hence
these small subclasses, which add two rules:

- ``seek`` only records the target; bytes are inflated when a read needs them, so stepping over an
  HDU's data to reach the next header costs nothing until that header is read;
- no read may end past ``limit`` bytes of the inflated stream: such a read raises
  :class:`InflateLimitExceeded` (a :class:`BudgetExceeded`) before anything is inflated.

astropy recognises them as its own compressed files (it checks ``isinstance`` against the library
classes), so everything else it does with such a file is unchanged; astropy reads them through
``read``, ``seek`` and ``tell`` only, which are the methods bounded here. ZIP archives (astropy extracts
them whole to a temporary file) and LZW files (an optional dependency) are refused.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path
from typing import Any

from app.processing.errors import BudgetExceeded, InvalidFits, UnsupportedEncoding

MIB = 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZIP_MAGIC = b"PK\x03\x04"
_LZW_MAGIC = b"\x1f\x9d"


class InflateLimitExceeded(BudgetExceeded):
    """A read would inflate a compressed file past its budget."""


def limit_message(needed: int | None, limit: int) -> str:
    """Client-facing text for a compressed file that needs more than ``limit`` inflated bytes."""
    if needed is None:
        return f"FITS data too large to decompress: it inflates past the limit of {limit / MIB:.0f} MB"
    return (
        f"FITS data too large to decompress: it needs {needed / MIB:.0f} MB inflated, "
        f"over the limit of {limit / MIB:.0f} MB"
    )


class _Bounded:
    """Lazy ``seek`` and a hard end for reads, over a decompressing file object (a mixin)."""

    limit: int
    exceeded: bool
    needed: int | None
    """Where the refused read would have ended (``None`` when unknown: a read to the end)."""
    _target: int | None
    _buffer: io.BufferedReader  # the decompressing reader of the library class

    def _bound(self, limit: int) -> None:
        self.limit = limit
        self.exceeded = False
        self.needed = None
        self._target = None

    def _refuse(self, needed: int | None) -> InflateLimitExceeded:
        self.exceeded = True
        self.needed = needed
        return InflateLimitExceeded(limit_message(needed, self.limit))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Record the new position; nothing is inflated until a read needs it."""
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a compressed stream")
        self._target = max(0, offset)
        return self._target

    def tell(self) -> int:
        """Return the position in the inflated stream (the pending one after a ``seek``)."""
        if self._target is not None:
            return self._target
        position: int = self._buffer.tell()
        return position

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (all that is left when negative), never past ``limit``."""
        start = self.tell()
        if size is not None and size >= 0:
            if start + size > self.limit:
                raise self._refuse(start + size)
            self._move()
            chunk: bytes = super().read(size)  # type: ignore[misc]
            return chunk
        if start > self.limit:
            raise self._refuse(start)
        self._move()
        rest: bytes = super().read(self.limit - start)  # type: ignore[misc]
        if super().read(1):  # type: ignore[misc]
            raise self._refuse(None)
        return rest

    def read1(self, size: int = -1) -> bytes:
        """Read at most ``size`` bytes (bounded like :meth:`read`)."""
        return self.read(size if size >= 0 else io.DEFAULT_BUFFER_SIZE)

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` (bounded like :meth:`read`)."""
        view = memoryview(buffer).cast("B")
        chunk = self.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def _move(self) -> None:
        if self._target is not None:
            target, self._target = self._target, None
            self._buffer.seek(target)


class BoundedGzipFile(_Bounded, gzip.GzipFile):
    """A read-only :class:`gzip.GzipFile` with a lazy seek and an inflation limit."""

    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(filename=str(path), mode="rb")
        self._bound(limit)


class BoundedBZ2File(_Bounded, bz2.BZ2File):
    """A read-only :class:`bz2.BZ2File` with a lazy seek and an inflation limit."""

    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(str(path), mode="rb")
        self._bound(limit)


class BoundedLZMAFile(_Bounded, lzma.LZMAFile):
    """A read-only :class:`lzma.LZMAFile` with a lazy seek and an inflation limit."""

    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(str(path), mode="rb")
        self._bound(limit)


BoundedStream = BoundedGzipFile | BoundedBZ2File | BoundedLZMAFile


def open_bounded(path: Path | str, limit: int) -> BoundedStream | None:
    """Open ``path`` as a bounded decompressing stream, or return ``None`` when it is not compressed.

    Raises
    ------
    InvalidFits
        The file is a ZIP archive (not supported).
    UnsupportedEncoding
        The file is LZW-compressed (Unix ``compress``, ``.Z``): not supported.
    """
    with open(path, "rb") as handle:
        magic = handle.read(6)
    name = Path(path).name
    if magic.startswith(_ZIP_MAGIC):
        raise InvalidFits(f"ZIP-compressed FITS files are not supported: {name}")
    if magic.startswith(_LZW_MAGIC):
        raise UnsupportedEncoding(
            f"{name} is compressed with Unix compress (LZW, .Z), which is not supported: "
            "store it uncompressed or gzip-compressed (.fits.gz)"
        )
    if magic.startswith(_GZIP_MAGIC):
        return BoundedGzipFile(path, limit)
    if magic.startswith(_BZIP2_MAGIC):
        return BoundedBZ2File(path, limit)
    if magic.startswith(_XZ_MAGIC):
        return BoundedLZMAFile(path, limit)
    return None
