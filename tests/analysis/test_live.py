"""Every analysis endpoint through a real uvicorn engine with a worker process (one shared server)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.analysis.conftest import N_TABLE_ROWS
from tests.support.fits_factory import EDGE_WIDTH, exposure_edge_field
from tests.support.live_server import LiveServer
from tests.support.reference_detection import recovered


@pytest.fixture(scope="module")
def http(live_engine: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_engine.url, timeout=60) as client:
        yield client


def test_region_statistics_live(http: httpx.Client, keys: dict[str, str]) -> None:
    payload = {
        "file_path": keys["cube"],
        "region_type": "rectangle",
        "rectangle": {"x": 1, "y": 2, "width": 3, "height": 4},
        "ellipse": None,
        "hdu_index": -1,
    }
    r = http.post("/analysis/region-statistics", json=payload)
    assert r.status_code == 200, r.text
    assert r.json() == {"mean": 2.0, "median": 2.0, "std": 0.0, "min": 2.0, "max": 2.0, "sum": 24.0, "pixel_count": 12}
    payload["region_type"] = "ellipse"
    assert http.post("/analysis/region-statistics", json=payload).status_code == 400


def test_detect_sources_live(http: httpx.Client, keys: dict[str, str]) -> None:
    payload = {"file_path": keys["stars"], "threshold_sigma": 5, "fwhm": 3, "method": "daofind", "npixels": 10}
    r = http.post("/analysis/detect-sources", json={**payload, "deblend": True})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == "daofind"
    assert got["n_sources"] >= 22
    assert got["estimated_fwhm"] is not None
    r = http.post("/analysis/detect-sources", json={"file_path": keys["allnan"]})
    assert r.status_code == 400


def test_detect_sources_with_a_weight_extension_live(http: httpx.Client, keys: dict[str, str]) -> None:
    """The WHT/ERR extension scales the threshold: the 5x-noisier edge gives no detections."""
    truth = exposure_edge_field()[3]
    r = http.post("/analysis/detect-sources", json={"file_path": keys["edge"], "weight_hdu": None})
    assert r.status_code == 200, r.text
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in r.json()["sources"]])
    inner = np.all((xy >= EDGE_WIDTH - 0.5) & (xy < 400 - EDGE_WIDTH - 0.5), axis=1)
    assert inner.mean() >= 0.95
    assert recovered(truth[:, :2], r.json()["sources"]).all()
    r = http.post("/analysis/detect-sources", json={"file_path": keys["edge"], "weight_hdu": 1})
    assert r.status_code == 400


def test_tables_and_spectra_live(http: httpx.Client, keys: dict[str, str]) -> None:
    info = http.get("/analysis/table-info", params={"file_path": keys["catalog"]})
    assert info.status_code == 200
    assert info.json()["table_hdus"][0]["n_rows"] == N_TABLE_ROWS
    data = http.get(
        "/analysis/table-data",
        params={"file_path": keys["catalog"], "hdu_index": 1, "page": 1, "page_size": 50, "search": "galaxy"},
    )
    assert data.status_code == 200
    assert data.json()["total_rows"] == 124
    assert data.json()["rows"][0]["ID"] == 500
    spec = http.get("/analysis/spectral-data", params={"file_path": keys["spectrum"], "hdu_index": 1})
    assert spec.status_code == 200
    assert spec.json()["n_points"] == 200
    missing = http.get("/analysis/spectral-data", params={"file_path": "nope/x.fits"})
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("File not found:")
