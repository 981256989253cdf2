"""Composite, mosaic and footprint through a real uvicorn engine with its process pool."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from tests.composite.conftest import channel, live_engine, request_body
from tests.support.live_server import LiveServer
from tests.support.request_bodies import mosaic_body


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live-data")
    with live_engine(root, workers=1) as server:
        yield server


def test_composite_over_http(engine: LiveServer) -> None:
    body = request_body([channel(["f0.fits"], hue=0), channel(["f1.fits"], hue=200)], width=320, height=200)
    response = httpx.post(f"{engine.url}/composite/generate-nchannel", json=body, timeout=60)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (320, 200)
    assert response.headers["X-Composite-Output-Shape"] == "320x200"
    assert np.asarray(image.convert("RGB"))[..., 0].max() > 200
    bad = httpx.post(
        f"{engine.url}/composite/generate-nchannel",
        json=request_body([channel(["f0.fits"], lum=True), channel(["f1.fits"], lum=True)]),
        timeout=60,
    )
    assert bad.status_code == 422
    assert "luminance" in bad.json()["detail"]


def test_mosaic_and_footprint_over_http(engine: LiveServer, tmp_path: Path) -> None:
    body = mosaic_body(["f0.fits", "f1.fits"])
    response = httpx.post(f"{engine.url}/mosaic/generate", json=body, timeout=60)
    assert response.status_code == 200, response.text
    with fits.open(io.BytesIO(response.content)) as hdul:
        assert hdul[0].header["EXTNAME"] == "MOSAIC"
        assert hdul["SRCMETA"].data is not None
        assert np.isfinite(hdul[0].data).any()
    footprint = httpx.post(f"{engine.url}/mosaic/footprint", json={"file_paths": ["f0.fits", "f1.fits"]}, timeout=60)
    assert footprint.status_code == 200
    assert footprint.json()["n_files"] == 2
