"""The composite on real HST data: the CANDELS GOODS-N cutout shipped in astroquery's test data.

Three ACS filters (F606W, F814W, F850LP) of the same 3 x 3 arcsec field are split into three
single-image FITS files and composited blue/green/red by wavelength, with the backend's default
channel settings. The assertions are real outcomes: exact size, a well-exposed picture, the
brightest source drawn where its RA/Dec falls in the output's AVM WCS, and colour ordering.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fastapi.testclient import TestClient
from PIL import Image
from scipy import ndimage

from main import create_app
from tests.composite.conftest import channel, make_settings, request_body
from tests.support.avm_reader import avm_wcs
from tests.support.real_data import FILTERS, copy_corpus, extract_candels_cutout

URL = "/composite/generate-nchannel"
#: Hues by wavelength: bluest filter blue, middle green, reddest red.
HUES = {"f606w": 240.0, "f814w": 120.0, "f850lp": 0.0}
WIDTH, HEIGHT = 360, 300


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return extract_candels_cutout(tmp_path_factory.mktemp("candels"))


@pytest.fixture(scope="module")
def real_client(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = next(iter(files.values())).parent
    tmp = tmp_path_factory.mktemp("cache")
    with TestClient(create_app(make_settings(root, tmp, COMPOSITE_CACHE_DIR=tmp / "composite-cache"))) as client:
        yield client


def _body(hues: dict[str, float] = HUES, weights: dict[str, float] | None = None, **kw: object) -> dict[str, object]:
    channels = [
        channel(
            [f"{name}.fits"],
            hue=hues[name],
            label=name.upper(),
            wavelength_um=wavelength,
            weight=(weights or {}).get(name, 1.0),
        )
        for name, wavelength in FILTERS.items()
    ]
    body: dict[str, object] = request_body(channels, width=WIDTH, height=HEIGHT)
    body.update(kw)
    return body


def _render(client: TestClient, body: dict[str, object]) -> tuple[np.ndarray, Image.Image, dict[str, str]]:
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    return np.asarray(image.convert("RGB")).astype(float), image, dict(response.headers)


def _content(img: np.ndarray, headers: dict[str, str]) -> np.ndarray:
    """The covered part of a letterboxed output (the content box is centred)."""
    w, h = (int(v) for v in headers["x-composite-content-shape"].split("x"))
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def _peak_centroid(
    plane: np.ndarray, *, sigma: float, half: int, near: tuple[float, float] | None = None, radius: int = 0
) -> tuple[float, float]:
    """``(x, y)`` centroid (0-based) of the brightest smoothed peak, background-subtracted.

    With ``near`` the peak is searched within ``radius`` pixels of that ``(x, y)`` only.
    """
    smooth = ndimage.gaussian_filter(plane.astype(float), sigma)
    search = smooth
    if near is not None:
        search = np.full_like(smooth, -np.inf)
        cx, cy = round(near[0]), round(near[1])
        sl = (slice(max(0, cy - radius), cy + radius + 1), slice(max(0, cx - radius), cx + radius + 1))
        search[sl] = smooth[sl]
    iy, ix = np.unravel_index(int(np.argmax(search)), smooth.shape)
    y0, x0 = max(0, iy - half), max(0, ix - half)
    window = smooth[y0 : iy + half + 1, x0 : ix + half + 1]
    weights = np.clip(window - np.median(window), 0.0, None)
    yy, xx = np.mgrid[: window.shape[0], : window.shape[1]]
    return float((xx * weights).sum() / weights.sum() + x0), float((yy * weights).sum() / weights.sum() + y0)


def test_cutout_is_three_acs_filters_with_wcs(files: dict[str, Path]) -> None:
    for name, path in files.items():
        header = fits.getheader(path)
        assert (header["NAXIS1"], header["NAXIS2"]) == (100, 100)
        assert header["INSTRUME"].strip() == "ACS"
        assert name.upper() in (header["FILTER1"], header["FILTER2"])
        assert WCS(header).has_celestial
    # pivot wavelengths increase in the order the channels are coloured blue, green, red
    plam = [fits.getheader(files[name])["PHOTPLAM"] for name in FILTERS]
    assert plam == sorted(plam)


def test_default_composite_is_exact_size_and_well_exposed(real_client: TestClient) -> None:
    img, image, headers = _render(real_client, _body())
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)
    assert headers["x-composite-grid-shape"] == "100x100"
    assert headers["x-composite-content-shape"] == "300x300"
    content = _content(img, headers)
    # letterbox bars are black, the content is not
    assert img[:, :30].max() == 0
    assert img[:, -30:].max() == 0
    luminance = 0.2126 * content[..., 0] + 0.7152 * content[..., 1] + 0.0722 * content[..., 2]
    assert 25 <= float(np.median(luminance)) <= 110
    assert float((content == 255).all(axis=-1).mean()) < 0.005
    # the picture has contrast: the galaxy's bright knots stand well above its median
    assert float(np.percentile(luminance, 99.5)) > float(np.median(luminance)) + 60


def test_auto_stretch_is_well_exposed_too(real_client: TestClient) -> None:
    body = _body()
    for ch in body["channels"]:  # type: ignore[union-attr]
        ch["stretch"] = "auto"  # type: ignore[index]
    img, _, headers = _render(real_client, body)
    assert "x-composite-auto-stretch" in headers
    content = _content(img, headers)
    luminance = 0.2126 * content[..., 0] + 0.7152 * content[..., 1] + 0.0722 * content[..., 2]
    assert 25 <= float(np.median(luminance)) <= 110
    assert float((content == 255).all(axis=-1).mean()) < 0.005


def test_brightest_source_lands_where_its_sky_position_predicts(
    real_client: TestClient, files: dict[str, Path]
) -> None:
    # the brightest compact source of the summed F606W + F814W data, located in the input file
    data = sum(fits.getdata(files[name]).astype(float) for name in ("f606w", "f814w"))
    x_in, y_in = _peak_centroid(data, sigma=1.0, half=4)
    ra, dec = WCS(fits.getheader(files["f606w"])).pixel_to_world_values(x_in, y_in)
    response = real_client.post(URL, json=_body())
    assert response.status_code == 200, response.text
    img = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(float)
    out_wcs = avm_wcs(response.content)
    x_avm, y_avm = out_wcs.world_to_pixel_values(ra, dec)
    # AVM counts rows from the bottom of the displayed image
    x_pred, row_pred = float(x_avm), HEIGHT - 1 - float(y_avm)
    luminance = 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]
    scale = 3.0  # output pixels per input pixel (100 -> 300)
    # the stretch saturates several knots of the galaxy to similar levels, so look for the drawn peak
    # within 5 input pixels of the prediction, then check it is a real peak at the predicted pixel
    x_out, row_out = _peak_centroid(luminance, sigma=3.0, half=12, near=(x_pred, row_pred), radius=15)
    assert abs(x_out - x_pred) < scale
    assert abs(row_out - row_pred) < scale
    smooth = ndimage.gaussian_filter(luminance, 3.0)
    assert smooth[round(row_out), round(x_out)] >= np.percentile(smooth, 98)
    # it is drawn near the bottom-left of the picture, as its input pixel (29, 9) says
    assert x_out < WIDTH / 2
    assert row_out > HEIGHT * 0.75


def test_colour_follows_the_channel_hues(real_client: TestClient) -> None:
    base, _, headers = _render(real_client, _body())
    base = _content(base, headers)
    # swapping the blue and red assignments swaps the output's blue and red planes exactly
    swapped_hues = {"f606w": 0.0, "f814w": 120.0, "f850lp": 240.0}
    swapped, _, _ = _render(real_client, _body(hues=swapped_hues))
    swapped = _content(swapped, headers)
    assert np.abs(base[..., 0] - swapped[..., 2]).max() <= 1
    assert np.abs(base[..., 2] - swapped[..., 0]).max() <= 1
    assert np.abs(base[..., 1] - swapped[..., 1]).max() <= 1
    # a red-heavy mix (F850LP weight 2, F606W weight 0.5) turns the mean colour red
    red_heavy, _, _ = _render(real_client, _body(weights={"f850lp": 2.0, "f606w": 0.5}))
    red_heavy = _content(red_heavy, headers)
    base_mean, red_mean = base.reshape(-1, 3).mean(axis=0), red_heavy.reshape(-1, 3).mean(axis=0)
    assert red_mean[0] - red_mean[2] > base_mean[0] - base_mean[2] + 20
    assert red_mean[0] > red_mean[1] > red_mean[2]


def test_auto_exposure_respects_explicit_tones(real_client: TestClient) -> None:
    _, _, defaults = _render(real_client, _body())
    assert defaults["x-composite-auto-exposure"] == "on"
    body = _body()
    for ch in body["channels"]:  # type: ignore[union-attr]
        ch["gamma"] = 2.0  # type: ignore[index]
    img, _, explicit = _render(real_client, body)
    assert explicit["x-composite-auto-exposure"] == "off"
    # the user's gamma is applied as given, not pulled back into the auto-exposure band
    content = _content(img, explicit)
    luminance = 0.2126 * content[..., 0] + 0.7152 * content[..., 1] + 0.0722 * content[..., 2]
    assert float(np.median(luminance)) > 110


# --- channels that cannot be composited --------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_files(files: dict[str, Path]) -> dict[str, str]:
    """Next to the cutout: F850LP moved 10 arcsec east (no overlap), M13 (50 degrees away), no WCS."""
    root = next(iter(files.values())).parent
    with fits.open(files["f850lp"]) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data.copy()
    header["CRVAL1"] = header["CRVAL1"] + 10.0 / 3600.0 / np.cos(np.radians(header["CRVAL2"]))
    fits.PrimaryHDU(data, header).writeto(root / "f850lp_moved.fits", overwrite=True)
    copy_corpus(root, ["m13", "no_wcs"])
    return {"moved": "f850lp_moved.fits", "m13": "m13.fits", "no_wcs": "no_wcs.fits"}


def _named(paths: dict[str, str], hues: dict[str, float]) -> dict[str, object]:
    channels = [channel([path], hue=hues[name], label=name) for name, path in paths.items()]
    return request_body(channels, width=WIDTH, height=HEIGHT)


@pytest.mark.parametrize("far", ["moved", "m13"])
def test_channels_that_do_not_overlap_are_refused(real_client: TestClient, odd_files: dict[str, str], far: str) -> None:
    paths = {"F606W": "f606w.fits", "F814W": "f814w.fits", "FAR": odd_files[far]}
    response = real_client.post(URL, json=_named(paths, {"F606W": 240.0, "F814W": 120.0, "FAR": 0.0}))
    assert response.status_code == 422
    assert response.json()["detail"] == "Channels do not overlap on the sky: F606W and FAR; F814W and FAR"


def test_a_channel_without_celestial_wcs_is_named(real_client: TestClient, odd_files: dict[str, str]) -> None:
    paths = {"F606W": "f606w.fits", "PLAIN": odd_files["no_wcs"]}
    response = real_client.post(URL, json=_named(paths, {"F606W": 240.0, "PLAIN": 0.0}))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("No celestial WCS")
    assert "channel PLAIN" in detail


# --- background neutralisation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def offset_sky(files: dict[str, Path]) -> str:
    """F850LP with its sky raised by 30 % of its range and a 5-pixel chip gap of zeros (a drizzled gap).

    Percentile limits then start at the gap, so the raised sky sits well above black in this channel
    only: a red cast unless the sky colour is neutralised.
    """
    with fits.open(files["f850lp"]) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data.astype(np.float32)
    data += np.float32(0.3 * (np.percentile(data, 99) - np.percentile(data, 1)))
    data[:, 45:50] = 0.0
    path = files["f850lp"].parent / "f850lp_offset_sky.fits"
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return path.name


def _channel_medians(client: TestClient, red: str, neutralise: bool) -> np.ndarray:
    paths = {"f606w": "f606w.fits", "f814w": "f814w.fits", "f850lp": red}
    channels = [channel([paths[name]], hue=HUES[name]) for name in FILTERS]
    body = request_body(channels, width=300, height=300, background_neutralization=neutralise)
    img, _, _ = _render(client, body)
    return np.median(img.reshape(-1, 3), axis=0)


def test_background_neutralization_makes_the_sky_grey(real_client: TestClient, offset_sky: str) -> None:
    tinted = _channel_medians(real_client, offset_sky, neutralise=False)
    grey = _channel_medians(real_client, offset_sky, neutralise=True)
    assert tinted[0] - max(tinted[1], tinted[2]) > 8  # red cast without the option
    assert grey.max() - grey.min() <= 3  # grey with it
    # on the original files the sky stays grey with the option
    plain = _channel_medians(real_client, "f850lp.fits", neutralise=True)
    assert plain.max() - plain.min() <= 3
