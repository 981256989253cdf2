"""Fixtures of the MAST proxy tests: the MAST emulator, the public bucket and live proxies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.mast_emulator import Faults, MastEmulator
from tests.support.s3_server import S3Server

PUBLIC_BUCKET = "stpubdata-test"
OBS = "jw02739-o001_t001_nircam_clear-f090w"
OBS_FILES = [
    "jw02739-o001_t001_nircam_clear-f090w_i2d.fits",
    "jw02739001001_02101_00001_nrca1_cal.fits",
    "jw02739001001_02101_00002_nrca1_cal.fits",
]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastEmulator]:
    emu = MastEmulator(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def public_bucket(s3_server: S3Server, emulator: MastEmulator) -> str:
    s3_server.create_bucket(PUBLIC_BUCKET)
    emulator.upload_to_s3(s3_server.client(), PUBLIC_BUCKET)
    return PUBLIC_BUCKET


@pytest.fixture(autouse=True)
def _reset_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        emu: MastEmulator = request.getfixturevalue("emulator")
        emu.faults = Faults()


def proxy_env(emulator: MastEmulator, s3_server: S3Server, bucket: str, data_root: Path) -> dict[str, str]:
    """Environment of a proxy talking only to the emulator and the moto server."""
    return {
        "MAST_BASE_URL": emulator.url,
        "MAST_S3_ENDPOINT_URL": s3_server.endpoint,
        "MAST_S3_BUCKET": bucket,
        "MAST_DOWNLOAD_DIR": str(data_root / "mast"),
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": str(data_root),
        "MAST_SEARCH_TIMEOUT": "3",
        "MAST_DOWNLOAD_CHUNK_BYTES": "262144",
        "MAST_S3_PART_BYTES": "262144",
        "MAST_S3_SPLIT_AFTER_SECONDS": "0",  # split every object at once: the live tests exercise ranged GETs
        "MAST_DOWNLOAD_BACKOFF_SECONDS": "0.05",
        "MAST_DOWNLOAD_READ_TIMEOUT": "1.5",
        "MAST_DOWNLOAD_CONNECT_TIMEOUT": "2",
    }


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-data")


@pytest.fixture(scope="session")
def proxy(emulator: MastEmulator, s3_server: S3Server, public_bucket: str, data_root: Path) -> Iterator[LiveServer]:
    """Run the proxy with two uvicorn workers, like production."""
    server = LiveServer("main_mast", workers=2, env=proxy_env(emulator, s3_server, public_bucket, data_root))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(proxy: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=30) as http:
        yield http


def poll(
    client: httpx.Client,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 30.0,
    interval: float = 0.5,
    path: str = "progress-chunked",
) -> dict[str, Any]:
    """Poll progress like the backend (every 500 ms by default) until ``until(progress)``."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/mast/download/{path}/{job_id}")
        if response.status_code == 200:
            last = response.json()
            if until(last):
                return last
        time.sleep(interval)
    raise AssertionError(f"job {job_id} did not reach the expected state: {last}")
