"""Overload and leaks, against a real engine process.

* 20 simultaneous composites and previews: the overflow gets 429 with ``Retry-After``, no worker is
  killed, ``/health`` p99 stays under 50 ms, and RSS comes back near its idle value.
* 300 sequential previews: no memory growth (the old engine grew 8-20 MB per preview).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.live_server import LiveServer
from tests.support.probe import HealthProbe, p99

SIZE = (1024, 1024)
MIB = 1024 * 1024


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its children."""
    parent = psutil.Process(pid)
    total = 0
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _uvicorn_pid(server: LiveServer) -> int:
    assert server.process is not None
    return server.process.pid


@pytest.fixture(scope="module")
def overload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, list[str]]]:
    root: Path = tmp_path_factory.mktemp("overload")
    keys = []
    for i, (ra, rot) in enumerate([(10.0, 0.0), (10.0003, 5.0), (9.9997, -4.0)]):
        data, _ = gaussian_stars(SIZE, n_stars=300, seed=i)
        key = f"mast/obs/ch{i}_i2d.fits"
        write_image(root / key, data, wcs=make_wcs(SIZE, ra=ra, dec=-30.0, rotation_deg=rot))
        keys.append(key)
    env = {
        "STORAGE_BASE_PATH": str(root),
        "ENGINE_WORKERS": "2",
        "ENGINE_QUEUE_SIZE": "4",
        "ENGINE_RETRY_AFTER_SECONDS": "2",
    }
    with LiveServer("main", env=env) as server:
        yield server, keys


def _preview(client: httpx.Client, key: str) -> httpx.Response:
    return client.get("/preview/0123456789abcdef01234567", params={"file_path": key, "width": 400, "height": 400})


def _composite(client: httpx.Client, keys: list[str]) -> httpx.Response:
    channels = [
        {
            "file_paths": [key],
            "stretch": "asinh",
            "black_point": 0,
            "white_point": 1,
            "gamma": 1,
            "asinh_a": 0.05,
            "curve": "linear",
            "weight": 1,
            "color": {"hue": hue, "rgb": None, "luminance": False},
            "label": f"F{i}",
            "wavelength_um": None,
        }
        for i, (key, hue) in enumerate(zip(keys, (240, 120, 0), strict=True))
    ]
    body = {
        "channels": channels,
        "overall": None,
        "background_neutralization": True,
        "output_format": "png",
        "quality": 95,
        "width": 1024,
        "height": 1024,
    }
    return client.post("/composite/generate-nchannel", json=body)


def _served(server: LiveServer, path: str) -> bool:
    return path in httpx.get(f"{server.url}/openapi.json").json()["paths"]


def test_burst_gets_429_and_health_stays_fast(overload_server: tuple[LiveServer, list[str]]) -> None:
    server, keys = overload_server
    assert _served(server, "/composite/generate-nchannel")
    assert _served(server, "/preview/{data_id}")
    pid = _uvicorn_pid(server)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        # Warm up: both workers import their stack and fill their bounded channel caches.
        with ThreadPoolExecutor(max_workers=2) as pool:
            warm = [pool.submit(_composite, client, keys) for _ in range(2)]
            warm += [pool.submit(_preview, client, key) for key in keys]
            assert [f.result().status_code for f in warm] == [200] * 5
        time.sleep(1.0)
        idle = _tree_rss(pid)
        workers_before = {p.pid for p in psutil.Process(pid).children(recursive=True)}

        # The /health probe runs in its own interpreter so the 20 client threads here cannot
        # delay it through this process's GIL: it measures the server, not the test.
        probe = HealthProbe(server.url, 6.0)
        time.sleep(0.3)
        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [
                pool.submit(_composite if i % 2 else _preview, client, keys if i % 2 else keys[i % 3])
                for i in range(20)
            ]
            replies = [f.result() for f in futures]
        latencies = probe.latencies()
        time.sleep(1.5)
        after = _tree_rss(pid)
        workers_after = {p.pid for p in psutil.Process(pid).children(recursive=True)}

    statuses = [r.status_code for r in replies]
    print(  # the figures for the closing note: run with -s
        f"overload: 200={statuses.count(200)} 429={statuses.count(429)} /health p99={p99(latencies):.1f} ms "
        f"over {len(latencies)} probes; RSS idle={idle / MIB:.0f} MiB after={after / MIB:.0f} MiB"
    )
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) >= 1, "the gate never refused anything"
    assert statuses.count(200) >= 6
    assert all(r.headers.get("retry-after") == "2" for r in replies if r.status_code == 429)
    # Workers start on demand, so new ones may appear; none may disappear (killed for memory).
    assert workers_before <= workers_after, "a worker process died or was replaced"
    assert p99(latencies) < 50, f"/health p99 {p99(latencies):.1f} ms over {len(latencies)} probes"
    assert after <= idle * 1.2 + 20 * MIB, f"RSS idle {idle / MIB:.0f} MiB, after burst {after / MIB:.0f} MiB"


def test_sequential_previews_do_not_grow(overload_server: tuple[LiveServer, list[str]]) -> None:
    server, keys = overload_server
    assert _served(server, "/preview/{data_id}")
    pid = _uvicorn_pid(server)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(30):
            assert _preview(client, keys[0]).status_code == 200
        baseline = _tree_rss(pid)
        for i in range(270):
            assert _preview(client, keys[i % 3]).status_code == 200
        grown = _tree_rss(pid) - baseline
    print(f"previews: RSS after 30={baseline / MIB:.0f} MiB, growth over 270 more={grown / MIB:.1f} MiB")
    assert grown < 25 * MIB, f"grew {grown / MIB:.1f} MiB over 270 previews"
