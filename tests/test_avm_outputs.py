"""Every PNG and JPEG picture (preview, composite, mosaic) carries AVM that pyavm reads back to the right sky.

For each output the AVM is read with pyavm (``AVM.from_image`` then ``to_wcs``) and checked two ways:

* the bright stars written into the inputs are found where they are drawn, and the AVM's sky
  position of that drawn pixel is the input WCS's position of the star, within one output pixel;
* for previews, a grid of output pixels maps to the sky where the input WCS puts the input pixel
  each one shows (resize and flip), within one output pixel.

Inputs cover the WCS forms that broke the hand-written packet: CDELT + PC with a rotation, CD +
PC + CDELT together, TAN-SIP, and the real M13 file.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from fastapi.testclient import TestClient
from PIL import Image
from scipy import ndimage

from main import create_app
from tests.support.avm_reader import assert_sky_matches, avm_wcs, read_avm, resized
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import make_wcs
from tests.support.real_data import copy_corpus
from tests.support.request_bodies import channel, mosaic_body, request_body

SHAPE = (150, 200)
#: Input pixels ``(x, y)`` of the bright stars, well apart and off-centre (so a flip would show).
STARS = [(40.0, 30.0), (150.0, 50.0), (90.0, 120.0)]


def star_image(shape: tuple[int, int], stars: list[tuple[float, float]]) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    data = np.random.default_rng(0).normal(10.0, 0.5, shape)
    for x, y in stars:
        data += 2000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return data.astype(np.float32)


def cd_pc_cdelt_header() -> fits.Header:
    header = make_wcs(SHAPE, rotation_deg=30.0, ra=210.8, dec=54.3).to_header()
    for key, value in (("CD1_1", 1.0), ("CD1_2", 0.0), ("CD2_1", 0.0), ("CD2_2", 1.0)):
        header[key] = value  # stale CD next to PC + CDELT: wcslib uses PC
    return header


def sip_header() -> fits.Header:
    header = make_wcs(SHAPE, rotation_deg=-12.0, ra=150.1, dec=2.2).to_header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header["A_ORDER"], header["B_ORDER"] = 2, 2
    header["A_2_0"], header["A_0_2"], header["B_1_1"] = 4e-5, -3e-5, 3e-5  # up to ~1 px at the corners
    return header


def write(path: Path, data: np.ndarray, header: fits.Header) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header, name="SCI")]).writeto(path)
    return str(path.name)


def input_wcs(root: Path, key: str) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(root / key) as hdul:
            hdu = next(h for h in hdul if h.data is not None)
            return WCS(hdu.header).celestial


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("avm") / "data"
    data = star_image(SHAPE, STARS)
    write(base / "rot.fits", data, make_wcs(SHAPE, rotation_deg=25.0).to_header())
    write(base / "cdpc.fits", data, cd_pc_cdelt_header())
    write(base / "sip.fits", data, sip_header())
    # two overlapping tiles of one sky (the right one shifted 120 px east), each with its stars
    sky = make_wcs((150, 320), rotation_deg=10.0)
    left, right = sky.deepcopy(), sky.deepcopy()
    right.wcs.crpix = [sky.wcs.crpix[0] - 120.0, sky.wcs.crpix[1]]
    field = star_image((150, 320), [(40.0, 30.0), (150.0, 50.0), (90.0, 120.0), (260.0, 100.0)])
    write(base / "tile_a.fits", field[:, :200], left.to_header())
    write(base / "tile_b.fits", field[:, 120:], right.to_header())
    copy_corpus(base, ["m13"])
    return base


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as test_client:
        yield test_client


def drawn_stars(content: bytes) -> np.ndarray:
    """``(x, row)`` of the bright blobs of the picture, 0-based, row 0 at the top."""
    gray = np.asarray(Image.open(io.BytesIO(content)).convert("L"), dtype=float)
    labels, n = ndimage.label(gray > 0.8 * gray.max())
    centres = ndimage.center_of_mass(gray, labels, range(1, n + 1))
    return np.array([(c[1], c[0]) for c in centres]).reshape(-1, 2)


def assert_stars_on_the_sky(content: bytes, star_sky: list[tuple[float, float]], *, min_found: int) -> None:
    """Each drawn star's AVM sky position is its input sky position, within one output pixel."""
    out = avm_wcs(content)
    height = Image.open(io.BytesIO(content)).size[1]
    drawn = drawn_stars(content)
    scale = float(np.min(proj_plane_pixel_scales(out)))
    found = 0
    for ra, dec in star_sky:
        x, y = out.world_to_pixel_values(ra, dec)
        predicted = np.array([float(x), height - 1 - float(y)])
        if not drawn.size:
            break
        d = np.hypot(*(drawn - predicted).T)
        if d.min() < 3.0:
            found += 1
            best = drawn[d.argmin()]
            lon, lat = out.pixel_to_world_values(best[0], height - 1 - best[1])
            sep = np.hypot((lon - ra) * np.cos(np.radians(dec)), lat - dec)
            assert sep / scale < 1.0, f"star at {ra:.5f},{dec:.5f}: {sep / scale:.2f} output px"
    assert found >= min_found


def sky_of(root: Path, key: str, pixels: list[tuple[float, float]]) -> list[tuple[float, float]]:
    wcs = input_wcs(root, key)
    return [tuple(float(v) for v in wcs.pixel_to_world_values(x, y)) for x, y in pixels]  # type: ignore[misc]


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("key", ["rot.fits", "cdpc.fits", "sip.fits"])
def test_preview(client: TestClient, root: Path, key: str, fmt: str) -> None:
    meta = json.dumps({"target_name": "test field"})
    params = {"file_path": key, "embed_avm": "true", "format": fmt, "width": 100, "avm_metadata": meta}
    reply = client.get("/preview/x", params=params)
    assert reply.status_code == 200, reply.text
    width, height = Image.open(io.BytesIO(reply.content)).size
    avm = read_avm(reply.content)
    assert avm.Spatial.CoordsystemProjection == "TAN"
    assert list(avm.Subject.Name) == ["test field"]
    assert_sky_matches(reply.content, (height, width), input_wcs(root, key), resized(SHAPE, (height, width)))
    assert_stars_on_the_sky(reply.content, sky_of(root, key, STARS), min_found=3)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_preview_of_the_real_m13_file(client: TestClient, root: Path, fmt: str) -> None:
    reply = client.get("/preview/x", params={"file_path": "m13.fits", "embed_avm": "true", "format": fmt, "width": 120})
    assert reply.status_code == 200, reply.text
    width, height = Image.open(io.BytesIO(reply.content)).size
    assert (width, height) == (120, 120)
    assert_sky_matches(reply.content, (height, width), input_wcs(root, "m13.fits"), resized((300, 300), (120, 120)))


def test_preview_without_avm_has_no_packet(client: TestClient) -> None:
    reply = client.get("/preview/x", params={"file_path": "rot.fits", "width": 100})
    assert reply.status_code == 200
    assert b"xpacket" not in reply.content


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize(("key", "size"), [("cdpc.fits", (300, 160)), ("sip.fits", (160, 300))])
def test_composite_letterboxed(client: TestClient, root: Path, key: str, size: tuple[int, int], fmt: str) -> None:
    width, height = size
    body = request_body([channel([key], hue=0.0, stretch="linear")], width=width, height=height, output_format=fmt)
    reply = client.post("/composite/generate-nchannel", json=body)
    assert reply.status_code == 200, reply.text
    assert Image.open(io.BytesIO(reply.content)).size == (width, height)
    assert read_avm(reply.content).Spatial.ReferenceDimension == [width, height]
    assert_stars_on_the_sky(reply.content, sky_of(root, key, STARS), min_found=3)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("width", [None, 200])
def test_mosaic(client: TestClient, root: Path, fmt: str, width: int | None) -> None:
    body = mosaic_body(["tile_a.fits", "tile_b.fits"], output_format=fmt, width=width)
    body["files"] = [{**f, "stretch": "linear"} for f in body["files"]]  # type: ignore[attr-defined]
    reply = client.post("/mosaic/generate", json=body)
    assert reply.status_code == 200, reply.text
    avm = read_avm(reply.content)
    assert avm.Spatial.CoordsystemProjection == "TAN"
    stars = sky_of(root, "tile_a.fits", [(40.0, 30.0), (150.0, 50.0), (90.0, 120.0)])
    stars += sky_of(root, "tile_b.fits", [(140.0, 100.0)])
    assert_stars_on_the_sky(reply.content, stars, min_found=4)
