"""JWST pipeline products as the archive serves them, through the engine's HTTP endpoints.

The files are written by ``stdatamodels`` (``tests/support/jwst_products.py``): ``_cal`` and
``_i2d`` images with their SCI, ERR, DQ, VAR_* and WHT extensions and the ASDF extension, an
``_s3d`` IFU cube and an ``_x1d`` spectrum. Each test asserts what an astronomer would check: a
pixel the DQ array flags as hot is gone from the preview, the statistics and the detections; the
inverse-variance mosaic leans to the tile with the smaller ERR; the spectrum and the cube's
wavelength axis come back with their values and units; an extension is chosen by index or name.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient
from PIL import Image

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars
from tests.support.jwst_products import DQ, Sky, write_cal, write_i2d, write_s3d, write_x1d

SHAPE = (96, 128)  # ny, nx
HOT = (30, 40)  # (y, x) of the hot pixel the DQ array flags
HOT_VALUE = 5.0e5
#: Centre (y, x) of a star-like blob the DQ flags as a cosmic-ray residual (JUMP_DET | DO_NOT_USE).
BLOB = (70, 100)
SATURATED_STAR = 2  # index of the star whose peak is flagged SATURATED only (kept: a real star)
WAVE_START, WAVE_STEP, N_WAVE = 4.90, 0.0008, 12
#: A non-linear (prism-like) grid, written as a WAVE-TAB axis.
PRISM_WAVES = np.geomspace(0.6, 5.3, N_WAVE).astype(np.float32)


def _stars() -> tuple[np.ndarray, np.ndarray]:
    """A star field and its truth; the hot pixel lands on sky, far from every star."""
    data, truth = gaussian_stars(SHAPE, n_stars=12, flux_range=(3000.0, 8000.0), seed=11, margin=12)
    for y, x in (HOT, BLOB):
        assert np.hypot(truth[:, 0] - x, truth[:, 1] - y).min() > 10
    return data, truth


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("jwst") / "data"
    root.mkdir()
    sci, truth = _stars()
    sci[HOT] = HOT_VALUE
    dq = np.zeros(SHAPE, np.uint32)
    dq[HOT] = DQ["HOT"] | DQ["DO_NOT_USE"]
    x, y = truth[SATURATED_STAR, :2]
    peak = (round(y), round(x))
    dq[peak] = DQ["SATURATED"]
    dq[0, :] = DQ["NON_SCIENCE"]  # a non-science row (as the edge of a subarray)
    # a star-shaped cosmic-ray residual: a detector would call it a source unless its DQ is read
    yy, xx = np.mgrid[BLOB[0] - 3 : BLOB[0] + 4, BLOB[1] - 3 : BLOB[1] + 4]
    sci[yy, xx] += (4000.0 * np.exp(-((yy - BLOB[0]) ** 2 + (xx - BLOB[1]) ** 2) / 3.2)).astype(np.float32)
    dq[yy, xx] = DQ["JUMP_DET"] | DQ["DO_NOT_USE"]
    err = np.full(SHAPE, 0.5, np.float32)
    write_cal(root / "jw01_nrcb1_cal.fits", sci, dq=dq, err=err)
    # two overlapping i2d tiles of flat sky: a (10, ERR 1) and b (20, ERR 3); their WHT say the opposite
    tile = (40, 60)
    write_i2d(
        root / "tile_a_i2d.fits",
        np.full(tile, 10.0),
        err=np.full(tile, 1.0),
        wht=np.full(tile, 1.0),
        sky=Sky(),
    )
    write_i2d(
        root / "tile_b_i2d.fits",
        np.full(tile, 20.0),
        err=np.full(tile, 3.0),
        wht=np.full(tile, 100.0),
        sky=Sky().shifted(30.0),
    )
    cube = np.stack([np.full((10, 12), 1.0 + k, np.float32) for k in range(N_WAVE)])
    cube_dq = np.zeros(cube.shape, np.uint32)
    cube_dq[N_WAVE // 2, 4, 5] = DQ["DO_NOT_USE"]
    cube[N_WAVE // 2, 4, 5] = 1.0e6
    write_s3d(root / "jw02_ch1-short_s3d.fits", cube, wave_start_um=WAVE_START, wave_step_um=WAVE_STEP, dq=cube_dq)
    write_s3d(root / "jw04_prism_s3d.fits", cube, wavelengths_um=PRISM_WAVES)
    wave = np.linspace(0.6, 5.3, 200)
    flux = 1e-3 * (1.0 + np.exp(-0.5 * ((wave - 3.3) / 0.05) ** 2))
    write_x1d(root / "jw03_x1d.fits", wave, flux, flux * 0.05)
    return root, {"truth": truth, "peak": peak, "wave": wave, "flux": flux}


@pytest.fixture(scope="module")
def client(products: tuple[Path, dict[str, object]]) -> Iterator[TestClient]:
    root, _ = products
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as test_client:
        yield test_client


def _pixels(client: TestClient, key: str, **params: object) -> np.ndarray:
    r = client.get("/pixeldata/x", params={"file_path": key, "max_size": 8000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    ny, nx = body["preview_shape"]
    return np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(ny, nx).copy()


# --------------------------------------------------------------------------- _cal: DQ masking


def test_cal_default_hdu_is_sci_and_dq_flagged_pixels_are_blank(client: TestClient, products) -> None:  # type: ignore[no-untyped-def]
    _, facts = products
    pixels = _pixels(client, "jw01_nrcb1_cal.fits")
    assert pixels.shape == SHAPE
    assert pixels[HOT] == 0.0  # blank (NaN is sent as 0), not 5e5
    assert pixels.max() < 0.1 * HOT_VALUE
    assert np.all(pixels[0] == 0.0)  # the NON_SCIENCE row
    # a star peak flagged SATURATED only is kept: it is a real, bright star
    assert pixels[facts["peak"]] > 50.0
    # the raw SCI extension still holds the value: only the read masks it
    with fits.open(products[0] / "jw01_nrcb1_cal.fits") as hdul:
        assert hdul["SCI"].data[HOT] == HOT_VALUE


def test_hot_pixel_does_not_set_the_preview_white_point(client: TestClient, products) -> None:  # type: ignore[no-untyped-def]
    _, facts = products
    r = client.get(
        "/preview/x",
        params={"file_path": "jw01_nrcb1_cal.fits", "stretch": "linear", "width": SHAPE[1], "height": SHAPE[0]},
    )
    assert r.status_code == 200, r.text
    image = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"))[::-1]  # back to FITS row order
    assert image.shape == SHAPE
    assert image[HOT] < 40  # a blank, not the white point
    # with the hot pixel out of the limits, the brightest star reaches the white end
    x, y = facts["truth"][:, 0], facts["truth"][:, 1]
    peaks = [int(image[round(yy), round(xx)]) for xx, yy in zip(x, y, strict=True)]
    assert max(peaks) > 200


def test_region_statistics_leave_out_the_flagged_pixel(client: TestClient) -> None:
    box = {"x": HOT[1] - 3, "y": HOT[0] - 3, "width": 7, "height": 7}
    r = client.post(
        "/analysis/region-statistics",
        json={"file_path": "jw01_nrcb1_cal.fits", "region_type": "rectangle", "rectangle": box},
    )
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["pixel_count"] == 48
    assert stats["max"] < 100.0
    assert stats["mean"] == pytest.approx(10.0, abs=1.0)  # the sky level


@pytest.mark.parametrize("method", ["daofind", "segmentation"])
def test_detection_finds_the_stars_and_not_the_flagged_pixels(client: TestClient, products, method: str) -> None:  # type: ignore[no-untyped-def]
    _, facts = products
    r = client.post("/analysis/detect-sources", json={"file_path": "jw01_nrcb1_cal.fits", "method": method})
    assert r.status_code == 200, r.text
    found = np.array([[s["xcentroid"], s["ycentroid"]] for s in r.json()["sources"]])
    assert found.size
    for y, x in (HOT, BLOB):
        assert np.hypot(found[:, 0] - x, found[:, 1] - y).min() > 3.0
    truth = facts["truth"]
    d = np.hypot(truth[:, None, 0] - found[None, :, 0], truth[:, None, 1] - found[None, :, 1]).min(axis=1)
    assert (d < 1.5).mean() >= 0.8


# --------------------------------------------------------------------------- choosing the extension


def _index_of(path: Path, extname: str) -> int:
    with fits.open(path) as hdul:
        return int(hdul.index_of(extname))


def test_extension_by_name_and_by_index(client: TestClient, products) -> None:  # type: ignore[no-untyped-def]
    err = _pixels(client, "jw01_nrcb1_cal.fits", extname="err")
    dq = _pixels(client, "jw01_nrcb1_cal.fits", extname="DQ", extver=1)
    assert dq[HOT] == float(DQ["HOT"] | DQ["DO_NOT_USE"])  # the DQ plane itself is shown as it is
    masked = DQ["DO_NOT_USE"] | DQ["NON_SCIENCE"] | DQ["DEAD"] | DQ["HOT"]
    flagged = (dq.astype(np.int64) & masked) != 0
    assert flagged.sum() == 1 + 49 + SHAPE[1]  # the hot pixel, the blob, the non-science row
    assert np.all(err[flagged] == 0.0)  # the DQ blanks the ERR plane's pixels too
    assert np.all(err[~flagged] == 0.5)
    by_index = _pixels(client, "jw01_nrcb1_cal.fits", hdu_index=_index_of(products[0] / "jw01_nrcb1_cal.fits", "ERR"))
    np.testing.assert_array_equal(by_index, err)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"extname": "WHT"}, "its extensions are: PRIMARY, SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE, VAR_FLAT, ASDF"),
        ({"extname": "SCI", "extver": 2}, "No HDU with extname SCI,2"),
        ({"hdu_index": 42}, "out of range"),
        ({"extname": "ASDF"}, "holds no image data"),
        ({"extver": 1}, "extver needs an extname"),
        ({"extname": "SCI", "hdu_index": 1}, "not both"),
    ],
)
def test_bad_extension_choices_are_400(client: TestClient, params: dict[str, object], detail: str) -> None:
    for url in ("/preview/x", "/histogram/x", "/pixeldata/x", "/cubeinfo/x"):
        r = client.get(url, params={"file_path": "jw01_nrcb1_cal.fits", **params})
        assert r.status_code == 400, (url, r.text)
        assert detail in r.json()["detail"]
    r = client.post("/thumbnail", json={"file_path": "jw01_nrcb1_cal.fits", **params})
    assert r.status_code == 400, r.text  # a body breaking the rule is refused like the query string
    assert detail in r.json()["detail"]


def test_thumbnail_and_histogram_take_the_extension(client: TestClient) -> None:
    nulls = client.post(
        "/thumbnail", json={"file_path": "jw01_nrcb1_cal.fits", "hdu_index": None, "extname": None, "extver": None}
    )
    sci = client.post("/thumbnail", json={"file_path": "jw01_nrcb1_cal.fits"})
    err = client.post("/thumbnail", json={"file_path": "jw01_nrcb1_cal.fits", "extname": "ERR"})
    assert nulls.status_code == sci.status_code == err.status_code == 200
    assert nulls.json() == sci.json() != err.json()
    hist = client.get("/histogram/x", params={"file_path": "jw01_nrcb1_cal.fits", "extname": "VAR_RNOISE"})
    assert hist.status_code == 200, hist.text
    assert hist.json()["cube_info"] == {"n_slices": 1, "current_slice": 0}


# --------------------------------------------------------------------------- _i2d: inverse-variance mosaic


def _mosaic(client: TestClient, files: list[dict[str, object]]) -> tuple[fits.HDUList, dict[str, str]]:
    r = client.post("/mosaic/generate", json={"files": files, "output_format": "fits", "combine_method": "mean"})
    assert r.status_code == 200, r.text
    return fits.open(io.BytesIO(r.content)), dict(r.headers)


def test_ivar_mosaic_weights_the_tile_with_the_smaller_err(client: TestClient) -> None:
    hdul, headers = _mosaic(client, [{"file_path": "tile_a_i2d.fits"}, {"file_path": "tile_b_i2d.fits"}])
    assert headers["x-mosaic-weighting"] == "inverse-variance"
    data = hdul[0].data
    values = np.round(data[np.isfinite(data)], 3)
    # overlap: (10 / 1 + 20 / 9) / (1 + 1 / 9) = 11; WHT (1 vs 100) would have given about 19.9
    assert set(np.unique(values).tolist()) <= {10.0, 11.0, 20.0}
    assert (values == 11.0).sum() > 100


def test_mosaic_of_the_err_extensions_is_not_weighted(client: TestClient) -> None:
    hdul, headers = _mosaic(
        client, [{"file_path": "tile_a_i2d.fits", "extname": "ERR"}, {"file_path": "tile_b_i2d.fits", "extname": "ERR"}]
    )
    assert headers["x-mosaic-weighting"] == "none"
    data = hdul[0].data
    assert set(np.unique(np.round(data[np.isfinite(data)], 3)).tolist()) == {1.0, 2.0, 3.0}


def test_mosaic_of_cal_files_masks_their_dq(client: TestClient) -> None:
    hdul, _ = _mosaic(client, [{"file_path": "jw01_nrcb1_cal.fits"}, {"file_path": "jw01_nrcb1_cal.fits"}])
    data = hdul[0].data
    assert np.nanmax(data) < 0.1 * HOT_VALUE


# --------------------------------------------------------------------------- composite of three extensions


def test_composite_of_three_extensions_of_one_file_is_not_grey(client: TestClient, products) -> None:  # type: ignore[no-untyped-def]
    root, _ = products
    shape = (60, 80)
    sky = Sky()
    left = np.zeros(shape, np.float32)
    left[:, :40] = 1.0
    right = np.zeros(shape, np.float32)
    right[:, 40:] = 1.0
    # SCI bright on the left, WHT bright on the right; ERR flat
    write_i2d(root / "three_i2d.fits", 1.0 + 50.0 * left, err=np.full(shape, 0.2), wht=1.0 + 50.0 * right, sky=sky)

    def channel(hue: float, **hdu: object) -> dict[str, object]:
        return {"file_paths": ["three_i2d.fits"], "color": {"hue": hue}, "stretch": "linear", **hdu}

    body = {
        "channels": [channel(0.0, extname="SCI"), channel(240.0, extname="WHT")],
        "width": 80,
        "height": 60,
        "background_neutralization": False,
    }
    r = client.post("/composite/generate-nchannel", json=body)
    assert r.status_code == 200, r.text
    rgb = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
    h, w = rgb.shape[:2]
    # the file's WCS is north up, east left (RA falls with x), as the composite's grid: left stays left
    left_side, right_side = rgb[h // 4 : 3 * h // 4, : w // 5], rgb[h // 4 : 3 * h // 4, -w // 5 :]
    assert left_side[..., 0].mean() > left_side[..., 2].mean() + 80  # SCI, red
    assert right_side[..., 2].mean() > right_side[..., 0].mean() + 80  # WHT, blue
    # the same request without a choice reads SCI for both channels: grey-ish, no blue side
    same = client.post(
        "/composite/generate-nchannel", json={**body, "channels": [channel(0.0), channel(240.0, hdu_index=None)]}
    )
    assert same.status_code == 200
    grey = np.asarray(Image.open(io.BytesIO(same.content)).convert("RGB")).astype(int)
    assert abs(grey[..., 0].mean() - grey[..., 2].mean()) < 10


def test_composite_and_mosaic_refuse_a_bad_extension_choice(client: TestClient) -> None:
    channel = {"file_paths": ["tile_a_i2d.fits"], "color": {"hue": 0.0}}
    for hdu, detail in (
        ({"extname": "NOPE"}, "its extensions are: PRIMARY, SCI, ERR, CON, WHT, VAR_POISSON"),
        ({"extname": "ASDF"}, "holds no image data"),
        ({"hdu_index": 99}, "out of range"),
    ):
        r = client.post("/composite/generate-nchannel", json={"channels": [{**channel, **hdu}]})
        assert r.status_code == 400, r.text
        assert detail in r.json()["detail"]
        files = [{"file_path": "tile_a_i2d.fits", **hdu}, {"file_path": "tile_b_i2d.fits"}]
        r = client.post("/mosaic/generate", json={"files": files})
        assert r.status_code == 400, r.text
        assert detail in r.json()["detail"]
    r = client.post("/composite/generate-nchannel", json={"channels": [{**channel, "extver": 2}]})
    assert r.status_code == 400
    assert r.json() == {"detail": "extver needs an extname"}


# --------------------------------------------------------------------------- _s3d and _x1d


def test_s3d_cube_info_reports_the_wavelength_axis(client: TestClient) -> None:
    r = client.get("/cubeinfo/x", params={"file_path": "jw02_ch1-short_s3d.fits"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["is_cube"] is True
    assert info["n_slices"] == N_WAVE
    assert info["slice_label"] == "Wavelength"
    assert info["slice_unit"] == "um"
    axis = info["axis3"]
    assert axis["crval3"] == pytest.approx(WAVE_START)
    assert axis["cdelt3"] == pytest.approx(WAVE_STEP)
    assert axis["crpix3"] == 1.0
    assert (axis["ctype3"], axis["cunit3"]) == ("WAVE", "um")
    # the ERR cube by name: the same axis; the WMAP cube too
    err = client.get("/cubeinfo/x", params={"file_path": "jw02_ch1-short_s3d.fits", "extname": "ERR"}).json()
    assert err["n_slices"] == N_WAVE


def test_s3d_with_a_tabulated_wavelength_axis(client: TestClient) -> None:
    r = client.get("/cubeinfo/x", params={"file_path": "jw04_prism_s3d.fits"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert (info["n_slices"], info["slice_label"], info["slice_unit"]) == (N_WAVE, "Wavelength", "um")
    axis = info["axis3"]
    assert axis["ctype3"] == "WAVE-TAB"
    assert axis["crval3"] == pytest.approx(float(PRISM_WAVES[0]))
    assert axis["cdelt3"] == pytest.approx(float(PRISM_WAVES[-1] - PRISM_WAVES[0]) / (N_WAVE - 1))  # mean step
    assert axis["crpix3"] == 1.0


def test_s3d_slice_masks_its_dq(client: TestClient) -> None:
    middle = _pixels(client, "jw02_ch1-short_s3d.fits", slice_index=N_WAVE // 2)
    assert middle[4, 5] == 0.0  # flagged DO_NOT_USE: blank, not 1e6
    assert np.all(np.delete(middle.ravel(), 4 * 12 + 5) == pytest.approx(1.0 + N_WAVE // 2))
    assert _pixels(client, "jw02_ch1-short_s3d.fits", slice_index=0)[4, 5] == pytest.approx(1.0)


def test_x1d_spectrum_keeps_values_and_units(client: TestClient, products) -> None:  # type: ignore[no-untyped-def]
    _, facts = products
    info = client.get("/analysis/table-info", params={"file_path": "jw03_x1d.fits"})
    assert info.status_code == 200, info.text
    assert (info.json()["table_hdus"][0]["index"], info.json()["table_hdus"][0]["name"]) == (1, "EXTRACT1D")
    r = client.get("/analysis/spectral-data", params={"file_path": "jw03_x1d.fits", "hdu_index": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hdu_name"] == "EXTRACT1D"
    assert body["n_points"] == 200
    units = {c["name"]: c["unit"] for c in body["columns"]}
    assert (units["WAVELENGTH"], units["FLUX"], units["FLUX_ERROR"]) == ("um", "Jy", "Jy")
    assert body["columns"][0]["name"] == "WAVELENGTH"
    np.testing.assert_allclose(body["data"]["WAVELENGTH"], facts["wave"])
    np.testing.assert_allclose(body["data"]["FLUX"], facts["flux"])
    np.testing.assert_allclose(body["data"]["FLUX_ERROR"], facts["flux"] * 0.05)
    assert body["data"]["DQ"] == [0] * 200
