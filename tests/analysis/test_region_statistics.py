"""Region statistics through the app: shapes, values, and every documented error."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.analysis.conftest import image_data

URL = "/analysis/region-statistics"


def body(key: str, region_type: str = "rectangle", **extra: object) -> dict[str, object]:
    base: dict[str, object] = {"file_path": key, "region_type": region_type, "rectangle": None, "ellipse": None}
    base.update(extra)
    return base


def test_rectangle_as_the_backend_sends_it(client: TestClient, keys: dict[str, str]) -> None:
    rect = {"x": 10, "y": 20, "width": 50, "height": 40}
    r = client.post(URL, json=body(keys["image"], rectangle=rect, hdu_index=-1))
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"mean", "median", "std", "min", "max", "sum", "pixel_count"}
    region = image_data()[20:60, 10:60].astype(np.float64)
    finite = region[np.isfinite(region)]
    assert got["pixel_count"] == finite.size
    assert '"pixel_count":' + str(finite.size) in r.text
    assert got["mean"] == pytest.approx(finite.mean(), rel=1e-9)
    assert got["median"] == pytest.approx(np.median(finite), rel=1e-9)
    assert got["std"] == pytest.approx(finite.std(), rel=1e-9)


def test_ellipse_and_polygon(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(URL, json=body(keys["image"], "ellipse", ellipse={"cx": 30, "cy": 30, "rx": 5, "ry": 5}))
    assert r.status_code == 200, r.text
    yy, xx = np.mgrid[0:90, 0:120]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 25
    assert r.json()["pixel_count"] == int(mask.sum())
    poly = [[0, 0], [9, 0], [9, 9], [0, 9]]
    r = client.post(URL, json=body(keys["image"], "polygon", polygon=poly, hdu_index=None))
    assert r.status_code == 200, r.text
    assert r.json()["pixel_count"] == 100
    assert r.json()["sum"] == pytest.approx(float(image_data()[:10, :10].astype(np.float64).sum()), rel=1e-9)


def test_cube_middle_slice(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(URL, json=body(keys["cube"], rectangle={"x": 0, "y": 0, "width": 5, "height": 5}))
    assert r.status_code == 200
    assert r.json()["mean"] == 2.0


@pytest.mark.parametrize(
    ("extra", "region_type", "detail"),
    [
        ({}, "rectangle", "Rectangle region parameters required"),
        ({"rectangle": {"x": 0, "y": 0, "width": 2, "height": 2}}, "ellipse", "Ellipse region parameters required"),
        ({}, "polygon", "Polygon region parameters required"),
        ({"polygon": [[0, 0], [5, 5]]}, "polygon", "Polygon region needs at least 3 vertices"),
        ({"rectangle": {"x": 500, "y": 0, "width": 2, "height": 2}}, "rectangle", "No valid pixels in selected region"),
        ({"rectangle": {"x": 61, "y": 41, "width": 5, "height": 5}}, "rectangle", "No valid pixels in selected region"),
        ({"rectangle": {"x": 0, "y": 0, "width": 2, "height": 2}, "hdu_index": 7}, "rectangle", "out of range"),
        ({"rectangle": {"x": 0, "y": 0, "width": 2, "height": 2}, "hdu_index": 0}, "rectangle", "no image data"),
    ],
)
def test_400_cases(
    client: TestClient, keys: dict[str, str], extra: dict[str, object], region_type: str, detail: str
) -> None:
    r = client.post(URL, json=body(keys["image"], region_type, **extra))
    assert r.status_code == 400
    assert detail.lower() in r.json()["detail"].lower()


def test_no_image_data_and_missing_region_checked_before_the_file(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(URL, json=body(keys["spectrum"], rectangle={"x": 0, "y": 0, "width": 2, "height": 2}))
    assert r.status_code == 400
    assert r.json()["detail"] == "No image data found in FITS file"
    r = client.post(URL, json=body("missing/file.fits"))  # region missing wins over 404
    assert r.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"region_type": "circle"},
        {"region_type": "rectangle", "rectangle": {"x": -1, "y": 0, "width": 2, "height": 2}},
        {"region_type": "rectangle", "rectangle": {"x": 0, "y": 0, "width": 0, "height": 2}},
        {"region_type": "ellipse", "ellipse": {"cx": 1, "cy": 1, "rx": 0, "ry": 2}},
    ],
)
def test_422_cases(client: TestClient, keys: dict[str, str], payload: dict[str, object]) -> None:
    r = client.post(URL, json={"file_path": keys["image"], **payload})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("key", "status"), [("/etc/passwd", 403), ("../x.fits", 403), ("nope/missing.fits", 404), ("a_directory", 400)]
)
def test_path_errors(client: TestClient, key: str, status: int) -> None:
    r = client.post(URL, json=body(key, rectangle={"x": 0, "y": 0, "width": 2, "height": 2}))
    assert r.status_code == status
    if status == 404:
        assert r.json()["detail"].startswith("File not found:")
