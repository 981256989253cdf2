"""Asynchronous composites and mosaics in one engine: submit, progress, result, cancel, errors."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.request_bodies import channel, mosaic_body, request_body


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("async-jobs")
    for index, (dx, dy) in enumerate([(0, 0), (700, 0), (0, 700), (700, 700)]):
        wcs = make_wcs((900, 900), ra=150.0, dec=2.0, pixel_scale_arcsec=0.1)
        wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([dx, dy], dtype=float)
        data = gaussian_stars((900, 900), n_stars=40, seed=index)[0].astype(np.float32)
        write_image(root / "tiles" / f"t{index}.fits", data, wcs=wcs)
    return root


@pytest.fixture
def client(root: Path, tmp_path: Path) -> Iterator[TestClient]:
    # a small memory budget: the 1600 x 1600 mosaic is built by blocks
    settings = make_settings(root, tmp_path, ENGINE_JOB_MEMORY_MB=310, ENGINE_ASYNC_JOB_HEARTBEAT_SECONDS=0.2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


KEYS = [f"tiles/t{i}.fits" for i in range(4)]


def wait_until_final(client: TestClient, job_id: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Poll the job's status until it ends; return every status seen."""
    seen: list[dict[str, Any]] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        reply = client.get(f"/jobs/{job_id}")
        assert reply.status_code == 200, reply.text
        seen.append(reply.json())
        if seen[-1]["status"] in ("completed", "failed", "cancelled"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {seen[-1]}")


def test_a_mosaic_job_reports_its_blocks_and_gives_the_synchronous_bytes(client: TestClient) -> None:
    body = mosaic_body(KEYS, combine_method="mean")
    direct = client.post("/mosaic/generate", json=body)
    assert direct.status_code == 200, direct.text
    blocks = int(direct.headers["x-mosaic-blocks"])
    assert blocks > 1
    accepted = client.post("/jobs/mosaic", json=body)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] == "queued"
    assert job["result_url"] == f"/jobs/{job['job_id']}/result"
    seen = wait_until_final(client, job["job_id"])
    final = seen[-1]
    assert final["status"] == "completed", final
    assert final["fraction"] == 1.0
    assert final["blocks_done"] == final["blocks_total"] == blocks
    fractions = [s["fraction"] for s in seen]
    assert fractions == sorted(fractions)  # progress only moves forward
    done = [s["blocks_done"] for s in seen if s["blocks_done"] is not None]
    assert done == sorted(done)
    result = client.get(job["result_url"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/fits"
    assert result.headers["x-mosaic-blocks"] == str(blocks)
    with fits.open(io.BytesIO(result.content)) as ours, fits.open(io.BytesIO(direct.content)) as theirs:
        np.testing.assert_array_equal(ours[0].data, theirs[0].data)
    assert final["result_bytes"] == len(result.content)


def test_a_composite_job_gives_the_synchronous_png(client: TestClient) -> None:
    body = request_body([channel(KEYS[:1], hue=0), channel(KEYS[1:2], hue=120), channel(KEYS[2:3], hue=240)])
    direct = client.post("/composite/generate-nchannel", json=body)
    assert direct.status_code == 200, direct.text
    job = client.post("/jobs/composite", json=body).json()
    assert wait_until_final(client, job["job_id"])[-1]["status"] == "completed"
    result = client.get(f"/jobs/{job['job_id']}/result")
    assert result.headers["content-type"] == "image/png"
    assert result.content == direct.content


def test_bad_requests_are_refused_at_submit_as_the_synchronous_endpoint_does(client: TestClient) -> None:
    bad = mosaic_body(KEYS, cmap="nope")
    assert client.post("/mosaic/generate", json=bad).status_code == 400
    assert client.post("/jobs/mosaic", json=bad).status_code == 400
    assert client.post("/jobs/composite", json=request_body([])).status_code == 422


def test_a_missing_file_is_404_at_submit(client: TestClient) -> None:
    reply = client.post("/jobs/mosaic", json=mosaic_body(["tiles/missing.fits", KEYS[0]]))
    assert reply.status_code == 404
    assert reply.json() == {"detail": "File not found: missing.fits"}


def test_a_job_on_a_damaged_file_fails_with_the_synchronous_status(client: TestClient, root: Path) -> None:
    (root / "tiles" / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    body = mosaic_body(["tiles/broken.fits", KEYS[0]])
    direct = client.post("/mosaic/generate", json=body)
    job = client.post("/jobs/mosaic", json=body).json()
    final = wait_until_final(client, job["job_id"])[-1]
    assert final["status"] == "failed"
    assert final["error_status"] == direct.status_code == 400
    assert final["error"] == direct.json()["detail"]
    result = client.get(f"/jobs/{job['job_id']}/result")
    assert result.status_code == 409
    assert "failed" in result.json()["detail"]


def test_unknown_jobs_are_404(client: TestClient) -> None:
    for path in ("/jobs/0123456789abcdef0123456789abcdef", "/jobs/../etc", "/jobs/nothex/result"):
        assert client.get(path).status_code == 404, path
    assert client.post("/jobs/0123456789abcdef0123456789abcdef/cancel").status_code == 404


def test_a_cancelled_job_ends_cancelled_and_has_no_result(client: TestClient, root: Path) -> None:
    job = client.post("/jobs/mosaic", json=mosaic_body(KEYS, combine_method="median")).json()
    cancelled = client.post(f"/jobs/{job['job_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/jobs/{job['job_id']}/result").status_code == 409
    assert client.post(f"/jobs/{job['job_id']}/cancel").status_code == 409  # already ended
