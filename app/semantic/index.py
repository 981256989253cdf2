"""Exact cosine-similarity vector index, persisted on disk and shared by several processes.

Layout under the index directory:

- ``index.bin``: the snapshot. A header (magic, JSON length, row count, dimension), a JSON list of
  ``[file_id, text]`` rows, then the ``rows × dim`` float32 matrix. Written to a temporary file and
  swapped in with ``os.replace``, so readers see the old or the new snapshot, never half of one.
- ``index.log``: an append-only log of upserts since the snapshot. Each record holds a header
  (magic, JSON length, row count, CRC32), the ``[file_id, text]`` rows and their vectors. One embed
  appends one small record instead of rewriting the index; a torn last record (crash mid-write) fails
  its length or CRC check, is ignored by readers and cut off by the next writer.
- ``index.lock``: ``fcntl.flock`` target. Writers hold it exclusively for the whole read-modify-write
  (sync with disk, append, maybe compact), readers hold it shared while they catch up with the files,
  so concurrent batches from any number of processes lose nothing.

When the log grows past a quarter of the index (at least :data:`COMPACT_MIN_ENTRIES` entries) the
writer folds it into a new snapshot and empties it. Replaying a log over a snapshot that already
contains it is harmless (last write wins per ``file_id``), so a crash between the two steps is safe.

Each process keeps the matrix in memory and catches up with the files by ``stat``: a new snapshot
(other inode, size or mtime) is reloaded, new log bytes are applied. Search is one matrix-vector
product and an ``argpartition``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger("app.semantic.index")

SNAPSHOT_NAME = "index.bin"
LOG_NAME = "index.log"
LOCK_NAME = "index.lock"

_SNAPSHOT_MAGIC = b"JWSTSEM1"
_SNAPSHOT_HEADER = struct.Struct("<8sQQI")  # magic, json length, rows, dim
_LOG_MAGIC = b"JSL1"
_LOG_HEADER = struct.Struct("<4sIII")  # magic, json length, rows, crc32 of json + vectors

#: The log is folded into the snapshot once it holds this many entries and a quarter of the index.
COMPACT_MIN_ENTRIES = 2000
COMPACT_RATIO = 0.25


class IndexCorruptError(RuntimeError):
    """The snapshot file cannot be parsed."""


@dataclass(frozen=True)
class Hit:
    """One search result."""

    file_id: str
    score: float
    text: str


@dataclass(frozen=True)
class _FileSig:
    inode: int
    size: int
    mtime_ns: int


def _sig(path: Path) -> _FileSig | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return _FileSig(st.st_ino, st.st_size, st.st_mtime_ns)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    """Normalised float32 vectors keyed by ``file_id``, with their texts.

    Parameters
    ----------
    directory
        Where the index files live (created on first write).
    dim
        Vector dimension.
    """

    def __init__(self, directory: Path, *, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.directory = Path(directory)
        self.dim = dim
        self._mutex = threading.RLock()
        self._reset_memory()
        self._snapshot_sig: _FileSig | None = None
        self._log_offset = 0
        self._log_entries = 0

    # ------------------------------------------------------------------ paths and locks
    @property
    def snapshot_path(self) -> Path:
        """The snapshot file (``index.bin``)."""
        return self.directory / SNAPSHOT_NAME

    @property
    def log_path(self) -> Path:
        """The append-only log of upserts since the snapshot (``index.log``)."""
        return self.directory / LOG_NAME

    @contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # ------------------------------------------------------------------ memory
    def _reset_memory(self) -> None:
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._rows: dict[str, int] = {}

    def _reserve(self, rows: int) -> None:
        if rows <= self._vectors.shape[0]:
            return
        capacity = max(rows, int(self._vectors.shape[0] * 1.5) + 1024)
        grown = np.empty((capacity, self.dim), dtype=np.float32)
        grown[: len(self._ids)] = self._vectors[: len(self._ids)]
        self._vectors = grown

    def _apply(self, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray) -> None:
        last: dict[str, int] = {}
        for position, file_id in enumerate(ids):
            last[file_id] = position  # a file_id repeated within one call: the last one wins
        self._reserve(len(self._ids) + len(last))
        rows = []
        for file_id, position in last.items():
            row = self._rows.get(file_id)
            if row is None:
                row = len(self._ids)
                self._rows[file_id] = row
                self._ids.append(file_id)
                self._texts.append(texts[position])
            else:
                self._texts[row] = texts[position]
            rows.append(row)
        source = vectors if len(last) == len(ids) else vectors[np.fromiter(last.values(), dtype=np.intp)]
        first = rows[0] if rows else 0
        if rows == list(range(first, first + len(rows))):  # appended rows: a slice copy, no index array
            self._vectors[first : first + len(rows)] = source
        else:
            self._vectors[np.asarray(rows, dtype=np.intp)] = source

    # ------------------------------------------------------------------ disk -> memory
    def _load_snapshot(self) -> None:
        self._reset_memory()
        try:
            with self.snapshot_path.open("rb") as fh:
                header = fh.read(_SNAPSHOT_HEADER.size)
                if len(header) < _SNAPSHOT_HEADER.size:
                    raise IndexCorruptError("truncated snapshot header")
                magic, meta_len, rows, dim = _SNAPSHOT_HEADER.unpack(header)
                if magic != _SNAPSHOT_MAGIC or dim != self.dim:
                    raise IndexCorruptError("snapshot has another format or dimension")
                meta = json.loads(fh.read(meta_len))
                vectors = np.fromfile(fh, dtype="<f4", count=rows * dim)
        except FileNotFoundError:
            return
        if len(meta) != rows or vectors.size != rows * dim:
            raise IndexCorruptError("snapshot is truncated")
        self._vectors = vectors.reshape(rows, dim)
        self._ids = [row[0] for row in meta]
        self._texts = [row[1] for row in meta]
        self._rows = {file_id: row for row, file_id in enumerate(self._ids)}
        if len(self._rows) != rows:
            raise IndexCorruptError("snapshot repeats a file_id")

    def _read_log_tail(self) -> int:
        """Apply complete log records after the current offset; return the log's size on disk."""
        try:
            with self.log_path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size <= self._log_offset:
                    return size
                fh.seek(self._log_offset)
                data = fh.read(size - self._log_offset)
        except FileNotFoundError:
            return 0
        pos = 0
        while pos + _LOG_HEADER.size <= len(data):
            magic, meta_len, rows, crc = _LOG_HEADER.unpack_from(data, pos)
            end = pos + _LOG_HEADER.size + meta_len + rows * self.dim * 4
            if magic != _LOG_MAGIC or end > len(data):
                break
            payload = memoryview(data)[pos + _LOG_HEADER.size : end]
            if zlib.crc32(payload) != crc:
                break
            meta = json.loads(bytes(payload[:meta_len]))
            vectors = np.frombuffer(payload[meta_len:], dtype="<f4").reshape(rows, self.dim)
            self._apply([r[0] for r in meta], [r[1] for r in meta], vectors)
            self._log_entries += rows
            pos = end
        self._log_offset += pos
        return size

    def _sync_locked(self) -> int:
        """Catch up with the files (caller holds the flock); return the log's size on disk."""
        sig = _sig(self.snapshot_path)
        log_sig = _sig(self.log_path)
        log_size = log_sig.size if log_sig else 0
        if sig != self._snapshot_sig or log_size < self._log_offset:
            self._load_snapshot()
            self._snapshot_sig = sig
            self._log_offset = 0
            self._log_entries = 0
        return self._read_log_tail()

    def _up_to_date(self) -> bool:
        log_sig = _sig(self.log_path)
        log_size = log_sig.size if log_sig else 0
        return _sig(self.snapshot_path) == self._snapshot_sig and log_size == self._log_offset

    def refresh(self) -> None:
        """Catch up with changes written by other processes (cheap when there are none)."""
        with self._mutex:
            if self._up_to_date():
                return
            with self._flock(fcntl.LOCK_SH):
                self._sync_locked()

    # ------------------------------------------------------------------ memory -> disk
    def _append_log(self, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray, log_size: int) -> None:
        meta = json.dumps([[i, t] for i, t in zip(ids, texts, strict=True)], ensure_ascii=False).encode()
        body = np.ascontiguousarray(vectors, dtype="<f4").data.cast("B")  # no copy
        crc = zlib.crc32(body, zlib.crc32(meta))
        header = _LOG_HEADER.pack(_LOG_MAGIC, len(meta), len(ids), crc)
        with self.log_path.open("ab") as fh:
            if log_size > self._log_offset:  # a torn record from a crashed writer: cut it off
                fh.truncate(self._log_offset)
            fh.write(header + meta)
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        self._log_offset += len(header) + len(meta) + len(body)
        self._log_entries += len(ids)

    def _write_snapshot(self) -> None:
        rows = len(self._ids)
        meta = json.dumps([[i, t] for i, t in zip(self._ids, self._texts, strict=True)], ensure_ascii=False).encode()
        tmp = self.directory / f".{SNAPSHOT_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with tmp.open("wb") as fh:
                fh.write(_SNAPSHOT_HEADER.pack(_SNAPSHOT_MAGIC, len(meta), rows, self.dim))
                fh.write(meta)
                fh.write(np.ascontiguousarray(self._vectors[:rows], dtype="<f4").data.cast("B"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.snapshot_path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        if self.log_path.exists():
            with self.log_path.open("r+b") as fh:
                fh.truncate(0)
                os.fsync(fh.fileno())
        self._snapshot_sig = _sig(self.snapshot_path)
        self._log_offset = 0
        self._log_entries = 0

    def _should_compact(self) -> bool:
        return self._log_entries >= max(COMPACT_MIN_ENTRIES, COMPACT_RATIO * len(self._ids))

    def upsert(self, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray) -> int:
        """Add or replace the vectors of ``ids`` (last one wins within the call); return the index size.

        Parameters
        ----------
        ids, texts
            One ``file_id`` and one text per row of ``vectors``.
        vectors
            ``(len(ids), dim)`` L2-normalised vectors.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim) or len(texts) != len(ids):
            raise ValueError(f"expected {len(ids)} texts and vectors of shape ({len(ids)}, {self.dim})")
        if not ids:
            return self.count()
        with self._mutex, self._flock(fcntl.LOCK_EX):
            log_size = self._sync_locked()
            self._append_log(ids, texts, vectors, log_size)
            self._apply(ids, texts, vectors)
            if self._should_compact():
                self._write_snapshot()
                logger.info("semantic_index_compacted", extra={"rows": len(self._ids)})
            return len(self._ids)

    def compact(self) -> None:
        """Fold the log into a fresh snapshot now."""
        with self._mutex, self._flock(fcntl.LOCK_EX):
            self._sync_locked()
            self._write_snapshot()

    # ------------------------------------------------------------------ queries
    def count(self) -> int:
        """Count the indexed files, after catching up with the files."""
        with self._mutex:
            self.refresh()
            return len(self._ids)

    def exists(self) -> bool:
        """Whether an index file (snapshot or log) exists on disk."""
        return self.snapshot_path.exists() or self.log_path.exists()

    def search(self, query: np.ndarray, *, top_k: int, min_score: float) -> list[Hit]:
        """Find the ``top_k`` rows most similar to ``query`` (cosine), best first, scoring at least ``min_score``.

        Parameters
        ----------
        query
            ``(dim,)`` L2-normalised vector.
        top_k
            Results at most (>= 1).
        min_score
            Smallest cosine similarity returned.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        with self._mutex:
            self.refresh()
            rows = len(self._ids)
            if rows == 0:
                return []
            scores = self._vectors[:rows] @ query
            k = min(top_k, rows)
            best = np.argpartition(scores, rows - k)[rows - k :] if k < rows else np.arange(rows)
            best = best[np.argsort(-scores[best], kind="stable")]
            keep = [i for i in best.tolist() if scores[i] >= min_score]
            return [Hit(self._ids[i], min(1.0, float(scores[i])), self._texts[i]) for i in keep]
