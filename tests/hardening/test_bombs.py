"""Decompression bombs against every FITS-reading endpoint of a live engine (process executor).

Each bomb is a ~4 MB file whose headers declare 4.4 GB of pixels (tests/support/bombs.py). Every
endpoint must answer 413 or 400 quickly, and no process of the engine may grow past the job
budget: the peak resident memory (``VmHWM``) of each worker is reset before each request and read
back after it. Files whose declared size the engine can read without inflating it (a plain file
read in bands, a small gzip file) keep working.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from astropy.io import fits

from tests.hardening.conftest import GOOD_KEYS
from tests.hardening.test_bad_files import ENDPOINTS
from tests.support.bombs import BOMBS, write_bombs
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.live_server import LiveServer

JOB_MEMORY_MB = 512
#: Generous on a loaded 2-core machine; a bomb used to take minutes.
ANSWER_WITHIN_S = 15.0
GOOD_KEY = GOOD_KEYS[0]  # the companion file of the composite and mosaic bodies
#: Endpoints that read headers only may describe a bomb (200) as long as they inflate nothing.
HEADERS_ONLY = {"footprint", "cubeinfo", "table_info"}
FIGURES: dict[str, tuple[int, float, float]] = {}


def _plain_large(path: Path, side: int) -> None:
    """A plain float32 image of ``side``² declared pixels, written as a sparse file (zeros)."""
    header = fits.PrimaryHDU().header
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = side
    header["NAXIS2"] = side
    header.update(make_wcs((side, side)).to_header())
    head = header.tostring(padding=True).encode("ascii")
    data_bytes = -(-side * side * 4 // 2880) * 2880
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(len(head) + data_bytes)


@pytest.fixture(scope="module")
def bomb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bombs")
    write_bombs(root / "bombs")
    data, _ = gaussian_stars((96, 128), n_stars=20, seed=1)
    write_image(root / GOOD_KEY, data, wcs=make_wcs((96, 128)))
    (root / "good").mkdir()
    _plain_large(root / "good" / "plain_large.fits", 9000)  # 324 MB declared: above the inflation budget
    return root


@pytest.fixture(scope="module")
def engine(bomb_root: Path) -> Iterator[LiveServer]:
    env = {
        "STORAGE_BASE_PATH": str(bomb_root),
        "SEMANTIC_DATA_DIR": str(bomb_root / "semantic"),
        "ENGINE_WORKERS": "2",
        "ENGINE_EXECUTOR": "process",
        "ENGINE_JOB_MEMORY_MB": str(JOB_MEMORY_MB),
        "MAX_FITS_ARRAY_ELEMENTS": "200000000",
    }
    with LiveServer("main", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def client(engine: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=300.0) as http:
        yield http
    for name, (status, elapsed, peak) in sorted(FIGURES.items()):  # the record, shown with -s
        print(f"{name:45s} {status} {elapsed:6.2f} s {peak:7.0f} MiB")


def _workers(server: LiveServer) -> list[psutil.Process]:
    assert server.process is not None
    return psutil.Process(server.process.pid).children(recursive=True)


def _reset_peaks(procs: list[psutil.Process]) -> None:
    for proc in procs:
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("bomb", sorted(BOMBS))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_bomb_is_refused_fast_within_the_job_budget(
    endpoint: str, bomb: str, engine: LiveServer, client: httpx.Client
) -> None:
    assert client.get("/health").status_code == 200
    key = f"bombs/{BOMBS[bomb][0]}"
    method, path, kwargs = ENDPOINTS[endpoint](key)
    client.request(method, path, **ENDPOINTS[endpoint](GOOD_KEY)[2])  # workers are up and warm
    procs = _workers(engine)
    _reset_peaks(procs)
    started = time.monotonic()
    reply = client.request(method, path, **kwargs)
    elapsed = time.monotonic() - started
    peak = max(_peak_mib(proc.pid) for proc in procs)
    FIGURES[f"{endpoint}/{bomb}"] = (reply.status_code, elapsed, peak)
    allowed = {400, 413} | ({200} if endpoint in HEADERS_ONLY else set())
    assert reply.status_code in allowed, reply.text[:300]
    if reply.status_code == 413:
        assert "too large" in reply.json()["detail"].lower()
    assert elapsed < ANSWER_WITHIN_S
    assert peak < JOB_MEMORY_MB, f"a worker peaked at {peak:.0f} MiB"


def test_a_plain_file_above_the_inflation_budget_still_renders(client: httpx.Client) -> None:
    """Banded reads of a plain file inflate nothing: 324 MB declared, budget 256 MB, still a thumbnail."""
    reply = client.post("/thumbnail", json={"file_path": "good/plain_large.fits"})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["thumbnail_base64"]
    preview = client.get("/preview/0123456789abcdef01234567", params={"file_path": "good/plain_large.fits"})
    assert preview.status_code == 200
    assert preview.content[:4] == b"\x89PNG"
