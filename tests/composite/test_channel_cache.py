"""The on-disk reprojected-channel cache: shared across processes, bounded by age, entries and bytes."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.composite.channel_cache import DiskChannelCache
from app.composite.jobs import CompositeJob, channel_cache, render_composite
from app.composite.schemas import NChannelCompositeRequest
from app.composite.service import build_job
from tests.composite.conftest import live_engine
from tests.support.engine_settings import make_settings
from tests.support.jobs import run_job
from tests.support.live_server import LiveServer
from tests.support.request_bodies import channel, request_body

URL = "/composite/generate-nchannel"


def _job(data_root: Path, cache_dir: Path, *, files: tuple[str, ...] = ("a.fits",), **body: object) -> CompositeJob:
    gamma = body.pop("gamma", 1)
    channels = [channel([f"ch/{name}"], hue=120.0 * i, gamma=gamma) for i, name in enumerate(files)]
    request = NChannelCompositeRequest.model_validate(request_body(channels, **body))
    settings = make_settings(data_root, cache_dir.parent, COMPOSITE_CACHE_DIR=cache_dir)
    return build_job(request, settings)


def _cache(directory: Path, **kw: float) -> DiskChannelCache:
    bounds: dict[str, float] = {"ttl_seconds": 600.0, "max_entries": 10, "max_bytes": 1 << 20, **kw}
    return DiskChannelCache(
        directory,
        ttl_seconds=bounds["ttl_seconds"],
        max_entries=int(bounds["max_entries"]),
        max_bytes=int(bounds["max_bytes"]),
    )


def _age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def _put_many(directory: str, key: tuple[object, ...], value: float, rounds: int) -> int:
    """Worker of the concurrent-writer test: write and read one entry ``rounds`` times."""
    cache = DiskChannelCache(directory, ttl_seconds=600.0, max_entries=3, max_bytes=1 << 24)
    array = np.full((64, 64), value, dtype=np.float32)
    good = 0
    for _ in range(rounds):
        cache.put(key, array)
        got = cache.get(key, (64, 64))
        if got is not None and np.all((got == 1.0) | (got == 2.0)) and np.unique(got).size == 1:
            good += 1
    return good


# --------------------------------------------------------------------------- unit


def test_round_trip_is_memory_mapped_and_read_only(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert cache.put(("k", 1), array)
    got = cache.get(("k", 1), (3, 4))
    assert isinstance(got, np.memmap)
    assert not got.flags.writeable
    np.testing.assert_array_equal(got, array)
    assert cache.get(("k", 2), (3, 4)) is None
    assert cache.get(("k", 1), (4, 3)) is None  # wrong shape: ignored and deleted
    assert not cache.entry_path(("k", 1)).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ttl_expiry_by_mtime(tmp_path: Path) -> None:
    cache = _cache(tmp_path, ttl_seconds=60)
    cache.put(("old",), np.ones((2, 2), dtype=np.float32))
    cache.put(("new",), np.ones((2, 2), dtype=np.float32))
    _age(cache.entry_path(("old",)), 61)
    _age(cache.entry_path(("new",)), 59)
    assert cache.get(("old",), (2, 2)) is None
    assert not cache.entry_path(("old",)).exists()
    assert cache.get(("new",), (2, 2)) is not None
    assert time.time() - cache.entry_path(("new",)).stat().st_mtime < 30  # a hit refreshes the age


def test_byte_bound_evicts_oldest(tmp_path: Path) -> None:
    one = np.zeros((64, 64), dtype=np.float32)  # 16 KiB + header
    cache = _cache(tmp_path, max_bytes=int(2.5 * one.nbytes))
    for i in range(3):
        cache.put((i,), one)
        _age(cache.entry_path((i,)), 100 - i)  # 0 oldest
    assert [cache.get((i,), one.shape) is not None for i in range(3)] == [False, True, True]
    assert sum(e.size for e in cache.entries()) <= cache.max_bytes
    big = np.zeros((256, 256), dtype=np.float32)
    assert not cache.put(("big",), big)  # larger than the whole cache: not stored
    assert len(cache.entries()) == 2


def test_entry_bound_and_disabled_cache(tmp_path: Path) -> None:
    cache = _cache(tmp_path, max_entries=2)
    for i in range(4):
        cache.put((i,), np.zeros((2, 2), dtype=np.float32))
        _age(cache.entry_path((i,)), 100 - i)
    assert {e.path.name for e in cache.entries()} == {cache.entry_path((2,)).name, cache.entry_path((3,)).name}
    off = _cache(tmp_path / "off", ttl_seconds=0)
    assert not off.put((1,), np.zeros((2, 2), dtype=np.float32))
    assert off.get((1,), (2, 2)) is None
    assert not (tmp_path / "off").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_file_is_ignored_and_rewritten(data_root: Path, tmp_path: Path, damage: str) -> None:
    job = _job(data_root, tmp_path / "cc", width=64, height=64)
    first = run_job(data_root, render_composite, job)
    cache = channel_cache(job)
    assert cache is not None
    (entry,) = cache.entries()
    good = entry.path.read_bytes()
    damaged = {"garbage": b"not a numpy file" * 10, "truncated": good[: len(good) // 2], "empty": b""}[damage]
    entry.path.write_bytes(damaged)
    again = run_job(data_root, render_composite, job)
    assert again.headers["X-Composite-Cache"] == "miss"
    assert again.content == first.content
    assert entry.path.read_bytes() == good  # rewritten whole
    assert run_job(data_root, render_composite, job).headers["X-Composite-Cache"] == "hit"


# --------------------------------------------------------------------------- the composite job


def test_full_size_export_never_reuses_preview_grid(data_root: Path, tmp_path: Path) -> None:
    preview = run_job(
        data_root, render_composite, _job(data_root, tmp_path / "cc", files=("c.fits",), width=64, height=64)
    )
    full_job = _job(data_root, tmp_path / "cc", files=("c.fits",), width=1024, height=1024)
    full = run_job(data_root, render_composite, full_job)
    assert preview.headers["X-Composite-Downscaled"] == "true"
    assert full.headers["X-Composite-Downscaled"] == "false"
    assert preview.headers["X-Composite-Cache"] == "miss"
    assert full.headers["X-Composite-Cache"] == "miss"
    cache = channel_cache(full_job)
    assert cache is not None
    shapes = sorted(np.load(e.path, mmap_mode="r").shape for e in cache.entries())
    pw, ph = (int(v) for v in preview.headers["X-Composite-Grid-Shape"].split("x"))
    fw, fh = (int(v) for v in full.headers["X-Composite-Grid-Shape"].split("x"))
    assert shapes == sorted([(ph, pw), (fh, fw)])
    assert (ph, pw) != (fh, fw)
    again = run_job(data_root, render_composite, full_job)
    assert again.headers["X-Composite-Cache"] == "hit"
    assert again.headers["X-Composite-Grid-Shape"] == full.headers["X-Composite-Grid-Shape"]


def test_second_process_hits_what_the_first_wrote(data_root: Path, tmp_path: Path) -> None:
    job = _job(data_root, tmp_path / "cc", files=("a.fits", "b.fits"), width=96, height=80)
    restretch = _job(data_root, tmp_path / "cc", files=("a.fits", "b.fits"), width=96, height=80, gamma=2)
    spawn = multiprocessing.get_context("spawn")
    results = []
    for one_job in (job, restretch):
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            pid = pool.submit(os.getpid).result()
            results.append((pid, pool.submit(run_job, data_root, render_composite, one_job).result()))
    (pid1, first), (pid2, second) = results
    assert pid1 != pid2 != os.getpid()
    assert first.headers["X-Composite-Cache"] == "miss,miss"
    assert second.headers["X-Composite-Cache"] == "hit,hit"
    assert second.content != first.content  # the re-stretch did apply


def test_two_processes_writing_one_entry_never_corrupt_it(tmp_path: Path) -> None:
    key = ("same", 1)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_put_many, str(tmp_path), key, value, 40) for value in (1.0, 2.0)]
        assert [f.result() for f in futures] == [40, 40]
    got = DiskChannelCache(tmp_path, ttl_seconds=600, max_entries=3, max_bytes=1 << 24).get(key, (64, 64))
    assert got is not None
    assert np.unique(got).size == 1
    assert float(got[0, 0]) in (1.0, 2.0)
    assert [p.name for p in tmp_path.iterdir()] == [f"{DiskChannelCache.digest(key)}.npy"]


# --------------------------------------------------------------------------- live engine, two workers


@pytest.fixture(scope="module")
def engine2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live2-data")
    cache_dir = str(root.parent / f"{root.name}-composite-cache")
    with live_engine(root, workers=2, COMPOSITE_CACHE_DIR=cache_dir) as server:
        yield server


def test_restretch_hits_on_any_worker_over_http(engine2: LiveServer) -> None:
    url = f"{engine2.url}{URL}"
    channels = [channel(["f0.fits"], hue=0), channel(["f1.fits"], hue=200)]
    first = httpx.post(url, json=request_body(channels, width=160, height=120), timeout=60)
    assert first.status_code == 200, first.text
    assert first.headers["X-Composite-Cache"] == "miss,miss"
    # Two re-stretches at once keep both workers busy: whichever worker serves one, it hits.
    bodies = [
        request_body([channel(["f0.fits"], hue=0, gamma=g), channel(["f1.fits"], hue=200)], width=160, height=120)
        for g in (1.5, 2.5)
    ]
    with ThreadPoolExecutor(max_workers=2) as threads:
        responses = list(threads.map(lambda b: httpx.post(url, json=b, timeout=60), bodies))
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.headers["X-Composite-Cache"] == "hit,hit"
    assert responses[0].content != responses[1].content
