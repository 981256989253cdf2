"""The viewer on real files shipped in astropy, astroquery and reproject (``tests/support/real_data.py``).

The preview's exposure must not depend on the output size: the display limits come from a
full-resolution sample of the whole image, so a globular cluster core or the Sun looks the same
at 300, 600, 1000 and 2000 px, matches astropy's own ZScaleInterval rendering of the full image,
and a wide blank border (NaN, or zeros in a float image) changes nothing.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS
from fastapi.testclient import TestClient
from PIL import Image

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import write_radio_cube
from tests.support.real_data import copy_corpus, dss_plate_only

SIZES = (300, 600, 1000, 2000)
IMAGES = ("m13", "sun_aia171", "magpis_galactic", "ukidss", "irsa_dust", "azp")
BORDER = 150


def _first_image(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            hdu = next(h for h in hdul if h.is_image and h.data is not None and h.data.ndim >= 2)
            return np.asarray(hdu.data, dtype=np.float64)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real") / "data"
    files = copy_corpus(root)
    core = _first_image(files["m13"]).astype(np.float32)
    fits.PrimaryHDU(core).writeto(root / "m13_core.fits")
    for name, fill in (("m13_nan_border", np.nan), ("m13_zero_border", 0.0)):
        framed = np.full((core.shape[0] + 2 * BORDER, core.shape[1] + 2 * BORDER), fill, dtype=np.float32)
        framed[BORDER:-BORDER, BORDER:-BORDER] = core
        fits.PrimaryHDU(framed).writeto(root / f"{name}.fits")
        files[name] = root / f"{name}.fits"
    files["m13_core"] = root / "m13_core.fits"
    files["dss_plate"] = dss_plate_only(root / "dss_plate.fits")
    return files


@pytest.fixture(scope="module")
def client(corpus: dict[str, Path]) -> Iterator[TestClient]:
    root = corpus["m13"].parent
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as test_client:
        yield test_client


def _gray(client: TestClient, key: str, size: int, **params: object) -> np.ndarray:
    reply = client.get("/preview/x", params={"file_path": key, "width": size, "height": size, **params})
    assert reply.status_code == 200, reply.text
    return np.asarray(Image.open(io.BytesIO(reply.content)).convert("L"), dtype=np.float64)


@pytest.mark.parametrize("name", IMAGES)
def test_preview_exposure_does_not_depend_on_size(client: TestClient, corpus: dict[str, Path], name: str) -> None:
    key = corpus[name].name
    pictures = {size: _gray(client, key, size) for size in SIZES}
    means = [pictures[size].mean() for size in SIZES]
    saturated = [(pictures[size] >= 254).mean() for size in SIZES]
    assert max(means) - min(means) < 2.0, means
    assert max(saturated) - min(saturated) < 0.01, saturated
    assert 10.0 < means[0] < 200.0  # neither black nor blown out
    assert saturated[0] < 0.1


@pytest.mark.parametrize("name", ["m13", "sun_aia171", "ukidss"])
def test_preview_matches_astropy_zscale_of_the_full_image(
    client: TestClient, corpus: dict[str, Path], name: str
) -> None:
    data = _first_image(corpus[name])
    vmin, vmax = ZScaleInterval(n_samples=data.size).get_limits(data)
    expected = np.clip((data - vmin) / (vmax - vmin), 0.0, 1.0)[::-1] * 255.0
    ny, nx = data.shape
    ours = _gray(client, corpus[name].name, max(ny, nx))
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).mean() < 3.0  # within about 1 % of the span


def test_preview_of_a_smaller_output_keeps_the_sky_level(client: TestClient, corpus: dict[str, Path]) -> None:
    """Block-averaged previews (factor 2 and 3) keep the exposure of the full-resolution one."""
    full = np.median(_gray(client, "m13.fits", 300))
    for size in (100, 150):
        assert abs(np.median(_gray(client, "m13.fits", size)) - full) < 4.0


@pytest.mark.parametrize("border", ["m13_nan_border", "m13_zero_border"])
def test_blank_border_does_not_change_the_exposure(client: TestClient, corpus: dict[str, Path], border: str) -> None:
    core = _gray(client, "m13_core.fits", 300)
    side = 300 + 2 * BORDER
    framed = _gray(client, corpus[border].name, side)
    assert np.array_equal(framed[BORDER:-BORDER, BORDER:-BORDER], core)
    assert framed[:BORDER].max() == 0.0  # the blank border is black


# --- radio cubes with a Stokes axis of length 1 ----------------------------------------------------

N_FREQ = 7


@pytest.fixture(scope="module")
def radio_keys(corpus: dict[str, Path]) -> dict[str, str]:
    """The real VLA FIRST cutout as 7 channels (channel k = image + 1000 k), in both CASA axis orders."""
    base = _first_image(corpus["first"]).astype(np.float32)
    channels = np.stack([base + 1000.0 * k for k in range(N_FREQ)])
    root = corpus["m13"].parent
    write_radio_cube(root / "radio_stokes_last.fits", channels, stokes_last=True)
    write_radio_cube(root / "radio_stokes_third.fits", channels, stokes_last=False)
    return {"stokes_last": "radio_stokes_last.fits", "stokes_third": "radio_stokes_third.fits"}


@pytest.mark.parametrize(("layout", "freq_axis"), [("stokes_last", 3), ("stokes_third", 4)])
def test_radio_cube_cubeinfo_browses_frequency(
    client: TestClient, radio_keys: dict[str, str], layout: str, freq_axis: int
) -> None:
    body = client.get("/cubeinfo/r", params={"file_path": radio_keys[layout]}).json()
    assert body["is_cube"] is True
    assert body["n_slices"] == N_FREQ
    assert body["axis3"] == {"crval3": 2.3e11, "cdelt3": 1.0e6, "crpix3": 1.0, "cunit3": "Hz", "ctype3": "FREQ"}
    assert body["slice_label"] == "Frequency"
    assert body["slice_unit"] == "Hz"


@pytest.mark.parametrize("layout", ["stokes_last", "stokes_third"])
def test_radio_cube_slices_in_pixeldata_preview_histogram(
    client: TestClient, radio_keys: dict[str, str], layout: str
) -> None:
    key = radio_keys[layout]
    for k in (0, 3, 6):
        body = client.get("/pixeldata/r", params={"file_path": key, "slice_index": k}).json()
        pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4")
        assert 1000.0 * k - 1.0 < float(np.median(pixels)) < 1000.0 * k + 1.0
        reply = client.get("/preview/r", params={"file_path": key, "slice_index": k, "width": 66, "height": 66})
        assert reply.status_code == 200
        assert (reply.headers["x-cube-slices"], reply.headers["x-cube-current"]) == (str(N_FREQ), str(k))
        histogram = client.get("/histogram/r", params={"file_path": key, "slice_index": k}).json()
        assert histogram["cube_info"] == {"n_slices": N_FREQ, "current_slice": k}
    middle = client.get("/preview/r", params={"file_path": key, "width": 66, "height": 66})
    assert middle.headers["x-cube-current"] == str(N_FREQ // 2)


# --- pixel data of a DSS plate, and files the engine cannot read ------------------------------------


def _flat_wcs(block: dict[str, object]) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [str(block["ctype1"]), str(block["ctype2"])]
    wcs.wcs.crpix = [float(block["crpix1"]), float(block["crpix2"])]  # type: ignore[arg-type]
    wcs.wcs.crval = [float(block["crval1"]), float(block["crval2"])]  # type: ignore[arg-type]
    wcs.wcs.cd = [[block["cd1_1"], block["cd1_2"]], [block["cd2_1"], block["cd2_2"]]]
    return wcs


def test_pixeldata_wcs_of_a_dss_plate_solution(client: TestClient, corpus: dict[str, Path]) -> None:
    body = client.get("/pixeldata/d", params={"file_path": corpus["dss_plate"].name}).json()
    block = body["wcs"]
    assert block is not None
    assert (block["ctype1"], block["ctype2"]) == ("RA---TAN", "DEC--TAN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = WCS(fits.getheader(corpus["dss_plate"]))
    xs, ys = np.array([0.0, 99.0, 99.0, 0.0, 49.5]), np.array([0.0, 0.0, 99.0, 99.0, 49.5])
    ours = _flat_wcs(block).pixel_to_world(xs, ys)
    assert ours.separation(truth.pixel_to_world(xs, ys)).arcsec.max() < 1.0  # 1.7" pixels
    # the DSS file as distributed also carries linear TAN cards (CRPIX, CRVAL, CD): ours agrees with them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cards = fits.getheader(corpus["dss"])
    keys = ("ctype1", "ctype2", "crpix1", "crpix2", "crval1", "crval2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")
    shipped = _flat_wcs({key: cards[key.upper()] for key in keys})
    assert ours.separation(shipped.pixel_to_world(xs, ys)).arcsec.max() < 3.0


def test_lzw_compressed_file_is_refused_with_415(client: TestClient, corpus: dict[str, Path]) -> None:
    key = corpus["lzw"].name
    for reply in (
        client.get("/preview/z", params={"file_path": key}),
        client.get("/pixeldata/z", params={"file_path": key}),
        client.get("/cubeinfo/z", params={"file_path": key}),
        client.post("/thumbnail", json={"file_path": key}),
    ):
        assert reply.status_code == 415
        assert "Unix compress (LZW, .Z)" in reply.json()["detail"]
    assert client.post("/mosaic/footprint", json={"file_paths": [key]}).status_code == 415


def test_thin_image_keeps_its_last_row(client: TestClient, corpus: dict[str, Path]) -> None:
    """A 5 x 2751 strip whose only signal is its last row: block reduction must not drop it."""
    strip = np.zeros((5, 2751), dtype=np.float32)
    strip[4] = _first_image(corpus["m13"])[150].repeat(10)[:2751].astype(np.float32)
    path = corpus["m13"].parent / "strip.fits"
    fits.PrimaryHDU(strip).writeto(path, overwrite=True)
    body = client.get("/pixeldata/s", params={"file_path": path.name}).json()
    assert body["original_shape"] == [5, 2751]
    assert body["preview_shape"] == [2, 1200]
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(2, 1200)
    assert float(pixels[1].min()) > 0.5 * float(strip[4].min())  # the last row reaches the top row
    assert float(pixels[0].max()) == 0.0


@pytest.mark.parametrize("name", ["dss", "m13", "sun_aia171", "magpis_galactic", "ukidss", "irsa_dust", "first", "azp"])
def test_every_real_image_previews_and_its_exposure_holds_at_256_600_1000(
    client: TestClient, corpus: dict[str, Path], name: str
) -> None:
    """The real DSS plate carries a non-standard card (``SKEW = '-1.38, -1.69'``) astropy fixes: still 200."""
    pictures = [_gray(client, corpus[name].name, size) for size in (256, 600, 1000)]
    saturated = [float((p >= 255).mean()) for p in pictures]
    black = [float((p <= 0).mean()) for p in pictures]
    assert max(saturated) - min(saturated) < 0.005, saturated
    assert max(black) - min(black) < 0.005, black
    assert max(saturated) < 0.10  # nothing blown out
