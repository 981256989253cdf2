"""Viewer endpoints through FastAPI's TestClient on real FITS files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from PIL import Image

from main import create_app
from tests.support.avm_reader import read_avm
from tests.viewer.conftest import CUBE_SHAPE, IMAGE_SHAPE, make_settings

ENDPOINTS = ("preview", "histogram", "pixeldata", "cubeinfo")


def _image(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


# --- preview -------------------------------------------------------------------------------------


def test_preview_png_keeps_aspect_and_orientation(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.get("/preview/abc", params={"file_path": keys["image"], "width": 400, "height": 400})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["x-cube-slices"] == "1"
    assert reply.headers["x-cube-current"] == "0"
    image = _image(reply.content)
    ny, nx = IMAGE_SHAPE
    assert image.size == (400, round(ny * 400 / nx))  # 400 x 240
    pixels = np.asarray(image.convert("L"))
    # the bright block sits in the last FITS rows = the top of the displayed image (origin=lower)
    assert pixels[:10, :10].mean() > 250
    assert pixels[-10:, :10].mean() < 250


def test_preview_height_limits_box(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.get("/preview/abc", params={"file_path": keys["image"], "width": 1000, "height": 60})
    assert reply.status_code == 200
    assert _image(reply.content).size == (100, 60)


def test_preview_jpeg_with_quality(client: TestClient, keys: dict[str, str]) -> None:
    params = {"file_path": keys["image"], "format": "jpeg", "quality": 50, "width": 200, "height": 200}
    reply = client.get("/preview/abc", params=params)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/jpeg"
    image = _image(reply.content)
    assert image.format == "JPEG"
    assert image.size == (200, 120)


@pytest.mark.parametrize(
    "cmap", ["grayscale", "gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet"]
)
def test_preview_every_colormap(client: TestClient, keys: dict[str, str], cmap: str) -> None:
    reply = client.get("/preview/abc", params={"file_path": keys["image"], "cmap": cmap, "width": 50, "height": 50})
    assert reply.status_code == 200
    image = _image(reply.content)
    assert image.mode == "RGB"
    assert image.size == (50, 30)


@pytest.mark.parametrize("stretch", ["zscale", "asinh", "log", "sqrt", "power", "histeq", "linear"])
def test_preview_every_stretch_and_smoothing(client: TestClient, keys: dict[str, str], stretch: str) -> None:
    params = {"file_path": keys["image"], "stretch": stretch, "width": 60, "height": 60, "smooth_method": "gaussian"}
    reply = client.get("/preview/abc", params=params)
    assert reply.status_code == 200
    assert _image(reply.content).size == (60, 36)


@pytest.mark.parametrize("method", ["gaussian", "median", "box", "astropy_gaussian", "astropy_box"])
def test_preview_every_smoothing_method(client: TestClient, keys: dict[str, str], method: str) -> None:
    params = {"file_path": keys["image"], "smooth_method": method, "smooth_size": 5, "width": 60, "height": 60}
    plain = client.get("/preview/abc", params={**params, "smooth_method": ""})
    reply = client.get("/preview/abc", params=params)
    assert reply.status_code == 200
    assert plain.status_code == 200
    assert reply.content != plain.content


@pytest.mark.parametrize(
    ("slice_index", "current"), [(-1, CUBE_SHAPE[0] // 2), (0, 0), (2, 2), (999, CUBE_SHAPE[0] - 1)]
)
def test_preview_cube_slice_headers(client: TestClient, keys: dict[str, str], slice_index: int, current: int) -> None:
    reply = client.get("/preview/abc", params={"file_path": keys["cube"], "slice_index": slice_index})
    assert reply.status_code == 200
    assert reply.headers["x-cube-slices"] == str(CUBE_SHAPE[0])
    assert reply.headers["x-cube-current"] == str(current)


def test_preview_embeds_avm(client: TestClient, keys: dict[str, str]) -> None:
    meta = json.dumps({"target_name": "M16", "filter": "F090W", "instrument": "NIRCAM", "ignored": 1})
    for fmt in ("png", "jpeg"):
        params = {"file_path": keys["image"], "embed_avm": "true", "avm_metadata": meta, "format": fmt, "width": 100}
        reply = client.get("/preview/abc", params=params)
        assert reply.status_code == 200
        avm = read_avm(reply.content)
        assert list(avm.Spatial.ReferenceDimension) == [100, 60]
        assert list(avm.Subject.Name) == ["M16"]
        assert list(avm.Spectral.Bandpass) == ["F090W"]
        # the factory's rotation_deg=25 is a CROTA2 of -25 degrees
        assert avm.Spatial.Rotation == pytest.approx(335.0, abs=0.01)
        assert avm.Spatial.Scale[1] == pytest.approx(0.063 / 3600 * 2, rel=1e-6)  # 200 px -> 100 px


def test_preview_invalid_avm_metadata_is_ignored(client: TestClient, keys: dict[str, str]) -> None:
    params = {"file_path": keys["image"], "embed_avm": "true", "avm_metadata": "{not json", "width": 50}
    reply = client.get("/preview/abc", params=params)
    assert reply.status_code == 200
    avm = read_avm(reply.content)
    assert avm.Subject.Name is None
    assert avm.Spatial.ReferenceDimension is not None


BAD_PREVIEW_PARAMS = [
    {"cmap": "foo"},
    {"width": 9},
    {"width": 8001},
    {"height": 9},
    {"height": 8001},
    {"stretch": "cubic"},
    {"gamma": 0.09},
    {"gamma": 5.01},
    {"black_point": -0.01},
    {"white_point": 1.01},
    {"black_point": 0.5, "white_point": 0.5},
    {"black_point": 0.6, "white_point": 0.4},
    {"asinh_a": 0.0009},
    {"asinh_a": 1.01},
    {"slice_index": -2},
    {"format": "jpg"},
    {"quality": 0},
    {"quality": 101},
    {"smooth_method": "bilateral"},
    {"smooth_sigma": 0.09},
    {"smooth_sigma": 10.1},
    {"smooth_size": 0},
    {"smooth_size": 4},
    {"smooth_size": 27},
]


@pytest.mark.parametrize("bad", BAD_PREVIEW_PARAMS)
def test_preview_bad_parameters_give_400_before_file_lookup(client: TestClient, bad: dict[str, object]) -> None:
    reply = client.get("/preview/abc", params={"file_path": "does/not/exist.fits", **bad})
    assert reply.status_code == 400, reply.text
    assert isinstance(reply.json()["detail"], str)


@pytest.mark.parametrize(
    "good",
    [{"width": 10, "height": 10}, {"gamma": 0.1}, {"gamma": 5.0}, {"asinh_a": 0.001}, {"asinh_a": 1.0},
     {"quality": 1}, {"quality": 100}, {"smooth_sigma": 0.1, "smooth_size": 1}, {"smooth_sigma": 10.0},
     {"smooth_size": 25, "smooth_method": "median"}, {"black_point": 0.0, "white_point": 0.01}],
)  # fmt: skip
def test_preview_boundary_values_are_accepted(
    client: TestClient, keys: dict[str, str], good: dict[str, object]
) -> None:
    reply = client.get("/preview/abc", params={"file_path": keys["image"], "width": 40, "height": 40, **good})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_file_path_is_422(client: TestClient, endpoint: str) -> None:
    reply = client.get(f"/{endpoint}/abc")
    assert reply.status_code == 422
    assert isinstance(reply.json()["detail"], list)


def test_thumbnail_missing_file_path_is_422(client: TestClient) -> None:
    assert client.post("/thumbnail", json={}).status_code == 422


# --- path errors, for every endpoint -------------------------------------------------------------


def _call(client: TestClient, endpoint: str, key: str) -> tuple[int, dict[str, object]]:
    if endpoint == "thumbnail":
        reply = client.post("/thumbnail", json={"file_path": key})
    else:
        reply = client.get(f"/{endpoint}/abc", params={"file_path": key})
    return reply.status_code, reply.json()


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, "thumbnail"])
def test_path_errors(client: TestClient, keys: dict[str, str], endpoint: str) -> None:
    assert _call(client, endpoint, "/etc/passwd") == (403, {"detail": "Access denied: invalid path"})
    assert _call(client, endpoint, "img/../../secret.fits") == (403, {"detail": "Access denied: invalid path"})
    status, body = _call(client, endpoint, "img/missing_i2d.fits")
    assert status == 404
    assert body["detail"] == "File not found: missing_i2d.fits"
    assert _call(client, endpoint, keys["directory"]) == (400, {"detail": "Path is not a file"})


# --- bad files -----------------------------------------------------------------------------------

FAILING_CASES = {
    "random_bytes": 400,
    "empty_file": 400,
    "truncated_header": 400,
    "truncated_data": 400,
    "tables_only": 400,
    "one_dimensional": 400,
    "header_only": 400,
    "all_nan": 400,
}
READABLE_CASES = (
    "scaled_integers",
    "tile_compressed",
    "gzip_compressed",
    "cube_3d",
    "cube_4d",
    "with_infinities",
    "no_celestial_wcs",
    "sip_distortion",
    "singular_cd",
    "many_cards",
)


@pytest.mark.parametrize("case", sorted(FAILING_CASES))
@pytest.mark.parametrize("endpoint", ["preview", "histogram", "pixeldata", "thumbnail"])
def test_bad_files_give_clear_4xx(client: TestClient, keys: dict[str, str], case: str, endpoint: str) -> None:
    status, body = _call(client, endpoint, keys[f"bad_{case}"])
    assert status == FAILING_CASES[case], body
    assert isinstance(body["detail"], str)
    assert body["detail"]


@pytest.mark.parametrize("case", READABLE_CASES)
def test_awkward_but_valid_files_render(client: TestClient, keys: dict[str, str], case: str) -> None:
    params = {"file_path": keys[f"bad_{case}"], "embed_avm": "true", "width": 80, "height": 80}
    assert client.get("/preview/abc", params=params).status_code == 200
    for endpoint in ("histogram", "pixeldata", "cubeinfo", "thumbnail"):
        status, body = _call(client, endpoint, keys[f"bad_{case}"])
        assert status == 200, (endpoint, body)


def test_huge_header_is_413_before_reading(client: TestClient, keys: dict[str, str]) -> None:
    for endpoint in ("preview", "histogram", "pixeldata"):
        status, body = _call(client, endpoint, keys["bad_huge_header"])
        assert status == 413
        assert "too large" in str(body["detail"])


def test_scaled_integers_apply_bscale_bzero_blank(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.get("/pixeldata/abc", params={"file_path": keys["bad_scaled_integers"]})
    body = reply.json()
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(body["preview_shape"])
    raw = np.arange(64 * 80, dtype=np.int16).reshape(64, 80) % 1000
    expected = raw * 0.5 + 100.0
    expected[10:20, 10:20] = 0.0  # BLANK -> NaN -> 0
    assert_allclose(pixels, expected)


# --- 413 with a small limit ----------------------------------------------------------------------


def test_array_limit_gives_413(viewer_root: tuple[Path, dict[str, str]]) -> None:
    root, keys = viewer_root
    app = create_app(make_settings(root, MAX_FITS_ARRAY_ELEMENTS=1000))
    with TestClient(app) as small:
        for endpoint in ("preview", "histogram", "pixeldata"):
            status, body = _call(small, endpoint, keys["image"])
            assert status == 413, body
        # thumbnail and cubeinfo have no size check
        assert _call(small, "thumbnail", keys["image"])[0] == 200
        assert _call(small, "cubeinfo", keys["cube"])[0] == 200


# --- histogram -----------------------------------------------------------------------------------


def test_histogram_shape_and_keys(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.get("/histogram/abc123", params={"file_path": keys["image"], "bins": 50, "stretch": "asinh"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"data_id", "histogram", "raw_histogram", "percentiles", "stats", "cube_info"}
    assert body["data_id"] == "abc123"
    assert set(body["percentiles"]) == {"p0", "p1", "p5", "p25", "p50", "p75", "p95", "p99"}
    for key in ("histogram", "raw_histogram"):
        hist = body[key]
        assert hist["n_bins"] == 50
        assert len(hist["counts"]) == 50
        assert len(hist["bin_edges"]) == 51
        assert len(hist["bin_centers"]) == 50
        assert sum(hist["counts"]) == IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
        assert all(isinstance(c, int) for c in hist["counts"])
    assert body["raw_histogram"]["bin_edges"][0] == 0.0
    assert body["raw_histogram"]["bin_edges"][-1] == 1.0
    stats = body["stats"]
    assert 0.0 <= stats["min"] <= stats["mean"] <= stats["max"] <= 1.0
    p = body["percentiles"]
    assert p["p0"] <= p["p1"] <= p["p5"] <= p["p25"] <= p["p50"] <= p["p75"] <= p["p95"] <= p["p99"]
    assert body["cube_info"] == {"n_slices": 1, "current_slice": 0}


def test_histogram_cube_and_bins_validation(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.get("/histogram/x", params={"file_path": keys["cube"], "slice_index": 3})
    assert reply.json()["cube_info"] == {"n_slices": CUBE_SHAPE[0], "current_slice": 3}
    for bins in (9, 10001):
        assert client.get("/histogram/x", params={"file_path": "missing.fits", "bins": bins}).status_code == 400
    for bins in (10, 10000):
        assert client.get("/histogram/x", params={"file_path": keys["image"], "bins": bins}).status_code == 200
    assert client.get("/histogram/x", params={"file_path": "missing.fits", "gamma": 9}).status_code == 400


# --- pixel data ----------------------------------------------------------------------------------


def test_pixeldata_full_resolution(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/pixeldata/p1", params={"file_path": keys["image"]}).json()
    assert body["original_shape"] == list(IMAGE_SHAPE)
    assert body["preview_shape"] == list(IMAGE_SHAPE)
    assert body["scale_factor"] == 1.0
    assert body["units"] == "MJy/sr"
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(IMAGE_SHAPE)
    with fits.open(Path(client.app.state.settings.storage_base_path) / keys["image"]) as hdul:  # type: ignore[attr-defined]
        assert_allclose(pixels, hdul["SCI"].data)
    wcs = body["wcs"]
    assert wcs["ctype1"] == "RA---TAN"
    assert wcs["crval1"] == pytest.approx(274.7)
    assert wcs["cdelt2"] == pytest.approx(0.063 / 3600)
    theta = np.deg2rad(25)
    assert wcs["cd2_2"] == pytest.approx(0.063 / 3600 * np.cos(theta))


def test_pixeldata_downsampled(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/pixeldata/p1", params={"file_path": keys["image"], "max_size": 100}).json()
    assert body["scale_factor"] == pytest.approx(2.0)
    assert body["preview_shape"] == [60, 100]
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4")
    assert pixels.size == 60 * 100
    assert np.isfinite(pixels).all()


def test_pixeldata_cube_slice_and_validation(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/pixeldata/c", params={"file_path": keys["cube"], "slice_index": 4}).json()
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(body["preview_shape"])
    assert pixels.min() == pytest.approx(4.0)
    assert pixels.max() == pytest.approx(4.5)
    assert body["wcs"]["cd1_2"] == 0.0
    for bad in ({"max_size": 99}, {"max_size": 8001}, {"slice_index": -2}):
        assert client.get("/pixeldata/c", params={"file_path": "nope.fits", **bad}).status_code == 400


def test_pixeldata_wcs_null_without_reference(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/pixeldata/c", params={"file_path": keys["bad_cube_4d"]}).json()
    assert body["wcs"] is None
    assert body["units"] == ""


# --- cube info -----------------------------------------------------------------------------------


def test_cubeinfo_cube(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/cubeinfo/id1", params={"file_path": keys["cube"]}).json()
    assert body == {
        "data_id": "id1",
        "is_cube": True,
        "n_slices": CUBE_SHAPE[0],
        "axis3": {"crval3": 1.0, "cdelt3": 0.01, "crpix3": 1.0, "cunit3": "um", "ctype3": "WAVE"},
        "slice_unit": "um",
        "slice_label": "Wavelength",
    }


def test_cubeinfo_plain_image_and_bad_file(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/cubeinfo/id2", params={"file_path": keys["image"]}).json()
    assert body == {
        "data_id": "id2",
        "is_cube": False,
        "n_slices": 1,
        "axis3": None,
        "slice_unit": "",
        "slice_label": "Frame",
    }
    assert client.get("/cubeinfo/x", params={"file_path": keys["bad_random_bytes"]}).status_code == 400
    four_d = client.get("/cubeinfo/x", params={"file_path": keys["bad_cube_4d"]}).json()
    assert four_d["is_cube"] is True
    assert four_d["n_slices"] == 2
    assert four_d["axis3"] is None


# --- thumbnail -----------------------------------------------------------------------------------


def test_thumbnail_png(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.post("/thumbnail", json={"file_path": keys["image"]})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"thumbnail_base64"}
    image = _image(base64.b64decode(body["thumbnail_base64"]))
    assert image.format == "PNG"
    assert image.size == (256, round(256 * IMAGE_SHAPE[0] / IMAGE_SHAPE[1]))
    pixels = np.asarray(image.convert("L"))
    assert pixels[:5, :5].mean() > 250  # bright block at the top-left (origin=lower)


def test_thumbnail_of_cube_uses_middle_slice(client: TestClient, keys: dict[str, str]) -> None:
    reply = client.post("/thumbnail", json={"file_path": keys["cube"]})
    image = _image(base64.b64decode(reply.json()["thumbnail_base64"]))
    assert image.size == (256, round(256 * CUBE_SHAPE[1] / CUBE_SHAPE[2]))
