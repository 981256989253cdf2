"""Proxy inputs and job state against a live proxy with two uvicorn workers and the MAST emulator.

- Numbers sent on to MAST are finite and in range, or the request is a 422 (a ``dec`` of 1e16 used
  to come back as a 502, an ``ra`` of NaN as a 200 with ``ra: null``, a negative radius as a 200).
- Progress polled across both workers never goes backwards.
- The synchronous download of an observation MAST does not know fails and says so.
- Resuming through ``start-chunked`` answers exactly four fields.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.mast_emulator import Faults, MastEmulator

OBS = "jw02739-o001_t001_nircam_clear-f090w"
CHUNKED = {"obs_id": OBS, "product_type": "SCIENCE", "resume_job_id": None, "calib_level": None}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastEmulator]:
    emu = MastEmulator(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-inputs")


@pytest.fixture(scope="module")
def proxy(emulator: MastEmulator, data_root: Path) -> Iterator[LiveServer]:
    env = {
        "MAST_BASE_URL": emulator.url,
        "MAST_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "MAST_DOWNLOAD_DIR": str(data_root / "mast"),
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": str(data_root),
        "MAST_SEARCH_TIMEOUT": "5",
        "MAST_DOWNLOAD_CHUNK_BYTES": "65536",
        "MAST_DOWNLOAD_BACKOFF_SECONDS": "0.05",
    }
    with LiveServer("main_mast", env=env, workers=2) as server:
        yield server


@pytest.fixture
def client(proxy: LiveServer, emulator: MastEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=30.0) as http:
        yield http
    emulator.faults = Faults()


def _cone(**values: Any) -> dict[str, Any]:
    return {"ra": 274.7, "dec": -13.8, "radius": 0.2, "calib_level": None, **values}


OUT_OF_RANGE = [
    ("coordinates", _cone(dec=1e16)),
    ("coordinates", _cone(dec=90.0001)),
    ("coordinates", _cone(dec=-90.5)),
    ("coordinates", _cone(ra=-0.001)),
    ("coordinates", _cone(ra=360.0)),
    ("coordinates", _cone(ra=1e400)),  # JSON's 1e400 parses as infinity
    ("coordinates", _cone(radius=-5)),
    ("coordinates", _cone(radius=0)),
    ("coordinates", _cone(radius=10.5)),
    ("coordinates", _cone(radius=-1e400)),
    ("coordinates", _cone(calib_level=[99])),
    ("target", {"target_name": "m16", "radius": -5, "calib_level": None}),
    ("target", {"target_name": "m16", "radius": 1e400, "calib_level": None}),
    ("target", {"target_name": "m16", "radius": 0.2, "calib_level": [2, 10**30]}),
    ("program", {"program_id": "2739", "calib_level": [-2]}),
    ("observation", {"obs_id": OBS, "calib_level": [5]}),
]


@pytest.mark.parametrize(("kind", "body"), OUT_OF_RANGE)
def test_out_of_range_numbers_are_a_422(client: httpx.Client, emulator: MastEmulator, kind: str, body: dict) -> None:
    calls = len(emulator.invocations)
    reply = _raw(client, kind, body) if "inf" in str(body) else client.post(f"/mast/search/{kind}", json=body)
    assert reply.status_code == 422, reply.text
    assert isinstance(reply.json()["detail"], list)
    assert len(emulator.invocations) == calls  # MAST was never asked


def _raw(client: httpx.Client, kind: str, body: dict) -> httpx.Response:
    """Send ``body`` with infinities written as ``1e400`` (which JSON allows and Python reads as inf)."""
    text = str(body).replace("'", '"').replace("None", "null").replace("inf", "1e400")
    return client.post(f"/mast/search/{kind}", content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "edge",
    [{"ra": 0.0}, {"ra": 359.999}, {"dec": 90.0}, {"dec": -90.0}, {"radius": 10.0}, {"radius": 1e-6}],
)
def test_numbers_at_the_edges_are_searched(client: httpx.Client, edge: dict[str, float]) -> None:
    reply = client.post("/mast/search/coordinates", json=_cone(**edge))
    assert reply.status_code == 200, reply.text
    params = reply.json()["query_params"]
    for key, value in edge.items():
        assert params[key] == value


def test_the_422_names_the_field(client: httpx.Client) -> None:
    reply = client.post("/mast/search/coordinates", json=_cone(dec=1e16))
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["body", "dec"]
    assert error["type"] == "less_than_equal"


def _fresh_poll(url: str) -> dict[str, Any] | None:
    """One progress poll on a new connection, so that either worker may answer it."""
    reply = httpx.get(url, timeout=10.0, headers={"connection": "close"})
    return reply.json() if reply.status_code == 200 else None


def test_progress_never_goes_backwards_across_workers(
    proxy: LiveServer, client: httpx.Client, emulator: MastEmulator, data_root: Path
) -> None:
    for path in (data_root / "mast" / OBS).glob("*"):
        path.unlink()
    emulator.faults.piece_delay = 0.12
    emulator.faults.piece_bytes = 32 * 1024
    job_id = client.post("/mast/download/start-chunked", json=CHUNKED).json()["job_id"]
    url = f"{proxy.url}/mast/download/progress-chunked/{job_id}"
    seen: list[int] = []
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        progress = _fresh_poll(url)
        if progress is not None:
            seen.append(progress["downloaded_bytes"])
            if progress["is_complete"]:
                assert progress["stage"] == "complete"
                break
        time.sleep(0.05)
    assert len(seen) >= 20, seen
    assert 0 < seen[-1] == max(seen)
    backwards = [(a, b) for a, b in itertools.pairwise(seen) if b < a]
    assert backwards == []


def test_sync_download_of_an_unknown_observation_fails(client: httpx.Client) -> None:
    body = {"obs_id": "jw00000-o000_t000_nircam_nothing", "product_type": "SCIENCE", "product_id": None}
    reply = client.post("/mast/download", json=body)
    assert reply.status_code == 200
    result = reply.json()
    assert result["status"] == "failed"
    assert result["error"] == "Observation jw00000-o000_t000_nircam_nothing was not found in MAST"
    assert result["files"] == []
    assert result["file_count"] == 0


def test_sync_download_of_an_observation_without_fits_completes_empty(client: httpx.Client) -> None:
    body = {"obs_id": "jw07777-o001_t001_nircam_nofits", "product_type": "SCIENCE", "product_id": None}
    result = client.post("/mast/download", json=body).json()
    assert result["status"] == "completed"
    assert result["error"] is None
    assert result["files"] == []
    assert result["file_count"] == 0


def test_resume_through_start_chunked_answers_exactly_four_fields(
    client: httpx.Client, emulator: MastEmulator, data_root: Path
) -> None:
    for path in (data_root / "mast" / OBS).glob("*"):
        path.unlink()
    emulator.faults.piece_delay = 0.1
    started = client.post("/mast/download/start-chunked", json=CHUNKED).json()
    assert set(started) == {"job_id", "obs_id", "message", "is_resume", "download_source"}
    assert started["download_source"] is None
    job_id = started["job_id"]
    deadline = time.monotonic() + 30.0
    while client.get(f"/mast/download/progress-chunked/{job_id}").json()["downloaded_bytes"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.post(f"/mast/download/pause/{job_id}", json={}).status_code == 200
    emulator.faults.piece_delay = 0.0
    resumed = client.post("/mast/download/start-chunked", json={**CHUNKED, "resume_job_id": job_id})
    assert resumed.status_code == 200
    assert resumed.json() == {"job_id": job_id, "obs_id": OBS, "message": "Download resumed", "is_resume": True}
    while not client.get(f"/mast/download/progress-chunked/{job_id}").json()["is_complete"]:
        assert time.monotonic() < deadline + 30.0
        time.sleep(0.1)
