"""Source detection through the app: the backend's request, every method, and every documented error."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.analysis.conftest import make_settings, stars
from tests.support.fits_factory import write_image

URL = "/analysis/detect-sources"


def test_backend_request_finds_the_injected_stars(client: TestClient, keys: dict[str, str]) -> None:
    payload = {"file_path": keys["stars"], "threshold_sigma": 5, "fwhm": 3, "method": "auto", "npixels": 10}
    r = client.post(URL, json={**payload, "deblend": True})
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"sources", "n_sources", "method", "threshold_sigma", "threshold_value", "estimated_fwhm"}
    assert got["method"] == "segmentation"
    assert got["n_sources"] == len(got["sources"])
    assert re.search(r'"n_sources":\d+[,}]', r.text)
    assert re.search(r'"id":1[,}]', r.text)
    assert got["estimated_fwhm"] == pytest.approx(3.0, rel=0.1)
    truth = stars()[1]
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in got["sources"]])
    d = np.hypot(truth[:, None, 0] - xy[None, :, 0], truth[:, None, 1] - xy[None, :, 1]).min(axis=1)
    assert (d < 1.0).mean() >= 0.9


@pytest.mark.parametrize("method", ["daofind", "iraf", "segmentation"])
def test_each_method_with_nulls(client: TestClient, keys: dict[str, str], method: str) -> None:
    payload = {
        "file_path": keys["stars"],
        "threshold_sigma": None,
        "fwhm": None,
        "method": method,
        "npixels": None,
        "deblend": None,
        "hdu_index": None,
    }
    r = client.post(URL, json=payload)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == method
    assert got["threshold_sigma"] == 5.0
    assert [s["id"] for s in got["sources"]] == list(range(1, got["n_sources"] + 1))
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-finite JSON token {c}"))


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        ({"method": "psf"}, 400, "Invalid method"),
        ({"hdu_index": 9}, 400, "out of range"),
        ({"threshold_sigma": 0.5}, 422, None),
        ({"threshold_sigma": 51}, 422, None),
        ({"fwhm": 0.4}, 422, None),
        ({"fwhm": 21}, 422, None),
        ({"npixels": 0}, 422, None),
        ({"npixels": 1001}, 422, None),
    ],
)
def test_parameter_errors(
    client: TestClient, keys: dict[str, str], payload: dict[str, object], status: int, detail: str | None
) -> None:
    r = client.post(URL, json={"file_path": keys["stars"], **payload})
    assert r.status_code == status
    if detail:
        assert detail in r.json()["detail"]


def test_method_checked_before_the_file(client: TestClient) -> None:
    r = client.post(URL, json={"file_path": "missing/x.fits", "method": "nope"})
    assert r.status_code == 400


def test_all_nan_and_no_image(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(URL, json={"file_path": keys["allnan"]})
    assert r.status_code == 400
    assert "NaN" in r.json()["detail"]
    r = client.post(URL, json={"file_path": keys["spectrum"]})
    assert r.status_code == 400
    assert r.json()["detail"] == "No image data found in FITS file"


@pytest.mark.parametrize(("key", "status"), [("/abs.fits", 403), ("../up.fits", 403), ("x/none.fits", 404)])
def test_path_errors(client: TestClient, key: str, status: int) -> None:
    assert client.post(URL, json={"file_path": key}).status_code == status


def test_413_above_fifty_million_pixels_from_headers_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    from astropy.io import fits

    from main import create_app

    root = tmp_path_factory.mktemp("huge") / "data"
    root.mkdir()
    # A header that claims 8000 x 7000 float32 pixels; the data is never read.
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = 8000
    header["NAXIS2"] = 7000
    (root / "huge.fits").write_bytes(header.tostring().encode("ascii"))
    write_image(root / "ok.fits", np.zeros((8, 8), dtype=np.float32))
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as c:
        r = c.post(URL, json={"file_path": "huge.fits"})
        assert r.status_code == 413, r.text


def test_deadline_gives_504(client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.analysis import jobs

    monkeypatch.setattr(jobs, "DETECTION_DEADLINE_SECONDS", 0.0)
    r = client.post(URL, json={"file_path": keys["stars"]})
    assert r.status_code == 504
    assert "took longer" in r.json()["detail"]
