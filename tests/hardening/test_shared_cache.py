"""The S3 temp cache shared by worker processes: one fetch per object, no file pulled from a reader.

Real worker processes (``multiprocessing``, spawned) use one cache directory through the real
:class:`S3Storage` against a real S3 API (moto's server). Each process counts the ``GetObject``
calls its boto3 client makes, through botocore's event hooks; the first hook also waits 0.3 s, as
a slow link would, so that concurrent requests for the same object overlap for certain.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import pytest

from app.storage.s3_storage import S3Storage
from app.storage.temp_cache import TempFileCache, held_leases
from tests.support.s3_server import S3Server, start_s3_server

BUCKET = "shared-cache"
MIB = 1024 * 1024
CTX = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def _content(name: str, size: int) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (size // 32)


def _storage(endpoint: str, cache_dir: str, max_bytes: int, gets: Any, delay: float) -> S3Storage:
    server = S3Server(server=None, port=int(endpoint.rsplit(":", 1)[1]))  # type: ignore[arg-type]
    client = server.client()

    def count_get(**_: object) -> None:
        with gets.get_lock():
            gets.value += 1
        time.sleep(delay)

    client.meta.events.register("before-call.s3.GetObject", count_get)
    return S3Storage(bucket=BUCKET, cache=TempFileCache(Path(cache_dir), max_bytes=max_bytes), client=client)


def _fetch_worker(endpoint: str, cache_dir: str, gets: Any, barrier: Barrier, results: Any) -> None:
    storage = _storage(endpoint, cache_dir, 64 * MIB, gets, delay=0.3)

    def one() -> None:
        barrier.wait(timeout=60)
        with held_leases():
            results.put(hashlib.sha256(storage.local_path("mast/obs/a_i2d.fits").read_bytes()).hexdigest())

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _run(processes: list[Any], timeout: float = 120) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0, f"worker exited with {process.exitcode}"


def test_one_object_is_fetched_once_by_two_processes(s3: S3Server, tmp_path: Path) -> None:
    content = _content("a", 3 * MIB)
    s3.client().put_object(Bucket=BUCKET, Key="mast/obs/a_i2d.fits", Body=content)
    gets = CTX.Value("i", 0)
    barrier = CTX.Barrier(4)  # two processes of two threads each ask at the same moment
    results = CTX.Queue()
    workers = [
        CTX.Process(target=_fetch_worker, args=(s3.endpoint, str(tmp_path), gets, barrier, results)) for _ in range(2)
    ]
    _run(workers)
    digests = [results.get(timeout=10) for _ in range(4)]
    assert digests == [hashlib.sha256(content).hexdigest()] * 4
    assert gets.value == 1
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    assert entries[0].read_bytes() == content


def _reader(endpoint: str, cache_dir: str, gets: Any, ready: Event, done: Event, results: Any) -> None:
    storage = _storage(endpoint, cache_dir, 5 * MIB // 2, gets, delay=0.0)
    expected = hashlib.sha256(_content("pinned", MIB)).hexdigest()
    reads, errors = 0, []
    with held_leases():  # one job holding its input while another worker fills the cache
        path = storage.local_path("mast/obs/pinned_i2d.fits")
        ready.set()
        while True:
            finished = done.is_set()  # one more read after the filler's last eviction
            try:
                with open(path, "rb") as handle:  # reopened by path each time, as astropy does
                    if hashlib.sha256(handle.read()).hexdigest() != expected:
                        errors.append("wrong bytes")
                reads += 1
            except OSError as error:
                errors.append(type(error).__name__)
            if finished:
                break
            time.sleep(0.01)
    results.put((reads, errors, str(path)))


def _filler(endpoint: str, cache_dir: str, gets: Any, ready: Event, done: Event, rounds: int) -> None:
    storage = _storage(endpoint, cache_dir, 5 * MIB // 2, gets, delay=0.0)
    ready.wait(timeout=60)
    try:
        for _ in range(rounds):
            for index in range(6):
                with held_leases():  # one short job per object
                    storage.local_path(f"mast/obs/other{index}_i2d.fits")
    finally:
        done.set()


def test_eviction_by_another_process_never_breaks_a_reader(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.put_object(Bucket=BUCKET, Key="mast/obs/pinned_i2d.fits", Body=_content("pinned", MIB))
    for index in range(6):
        client.put_object(Bucket=BUCKET, Key=f"mast/obs/other{index}_i2d.fits", Body=_content(f"o{index}", MIB))
    gets = CTX.Value("i", 0)
    ready, done = CTX.Event(), CTX.Event()
    results = CTX.Queue()
    reader = CTX.Process(target=_reader, args=(s3.endpoint, str(tmp_path), gets, ready, done, results))
    filler = CTX.Process(target=_filler, args=(s3.endpoint, str(tmp_path), gets, ready, done, 3))
    _run([reader, filler])
    reads, errors, pinned = results.get(timeout=10)
    assert errors == []
    assert reads > 0
    # the cache holds 2.5 objects: every insert of the filler evicted, so each round fetched all six again
    assert gets.value == 1 + 3 * 6
    assert Path(pinned).exists()  # never evicted while leased, though the oldest entry
    cache = TempFileCache(tmp_path, max_bytes=MIB)
    cache.evict()  # the lease has ended: now the pinned file, the oldest, goes first
    assert not Path(pinned).exists()
    assert cache.total_bytes() <= MIB
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
