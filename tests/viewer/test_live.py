"""The viewer endpoints through a real uvicorn process with the process-pool executor."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support.live_server import LiveServer
from tests.viewer.conftest import CUBE_SHAPE, IMAGE_SHAPE


@pytest.fixture(scope="module")
def live(viewer_root: tuple[Path, dict[str, str]]) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    root, keys = viewer_root
    env = {
        "STORAGE_BASE_PATH": str(root),
        "MAST_DOWNLOAD_DIR": str(root / "mast"),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "ENGINE_WORKERS": "1",
    }
    with LiveServer("main", env=env) as server:
        yield server, keys


def test_live_preview_and_cube_headers(live: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = live
    with httpx.Client(base_url=server.url, timeout=60) as client:
        reply = client.get(
            "/preview/665f1c2b9a1e4b0012345678",
            params={"file_path": keys["cube"], "slice_index": 1, "format": "jpeg", "cmap": "inferno", "width": 120},
        )
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/jpeg"
        assert reply.headers["x-cube-slices"] == str(CUBE_SHAPE[0])
        assert reply.headers["x-cube-current"] == "1"
        assert Image.open(io.BytesIO(reply.content)).size == (120, 80)

        reply = client.get("/preview/x", params={"file_path": keys["image"], "embed_avm": "true"})
        assert reply.status_code == 200
        assert reply.headers["x-cube-slices"] == "1"
        image = Image.open(io.BytesIO(reply.content))
        assert image.size == (1000, 600)
        assert "xmp" in image.info


def test_live_json_endpoints(live: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = live
    with httpx.Client(base_url=server.url, timeout=60) as client:
        hist = client.get("/histogram/h", params={"file_path": keys["image"], "bins": 20}).json()
        assert hist["histogram"]["n_bins"] == 20
        assert "p99" in hist["percentiles"]
        pix = client.get("/pixeldata/p", params={"file_path": keys["image"], "max_size": 100}).json()
        values = np.frombuffer(base64.b64decode(pix["pixels"]), dtype="<f4")
        assert values.size == 60 * 100
        assert pix["original_shape"] == list(IMAGE_SHAPE)
        cube = client.get("/cubeinfo/c", params={"file_path": keys["cube"]}).json()
        assert cube["is_cube"]
        assert cube["slice_label"] == "Wavelength"
        thumb = client.post("/thumbnail", json={"file_path": keys["image"]}).json()
        assert Image.open(io.BytesIO(base64.b64decode(thumb["thumbnail_base64"]))).size[0] == 256


def test_live_errors(live: tuple[LiveServer, dict[str, str]]) -> None:
    server, keys = live
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/preview/x", params={"file_path": "../etc/passwd"}).status_code == 403
        assert client.get("/preview/x", params={"file_path": "missing.fits", "width": 5}).status_code == 400
        reply = client.get("/preview/x", params={"file_path": keys["bad_truncated_data"]})
        assert reply.status_code == 400
        assert reply.json()["detail"]
        assert client.get("/histogram/x", params={"file_path": keys["bad_huge_header"]}).status_code == 413
        assert client.get("/pixeldata/x").status_code == 422
