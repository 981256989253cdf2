"""Mosaic and footprint endpoints: pixels, combine methods, provenance, errors."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fastapi.testclient import TestClient
from PIL import Image

from app.mosaic.jobs import combine, load_sources
from app.processing.reprojection import Grid, optimal_celestial_grid, reproject_fast
from main import create_app
from tests.mosaic.conftest import TILE_KEYS, big_image, make_settings, mosaic_body
from tests.support.jobs import run_job

URL = "/mosaic/generate"


def _fits(response) -> fits.HDUList:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fits"
    return fits.open(io.BytesIO(response.content))


def _grid_of(hdul: fits.HDUList) -> Grid:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(hdul[0].header)
    return Grid(wcs, hdul[0].data.shape)


def test_mosaic_reproduces_the_source_image(client: TestClient) -> None:
    hdul = _fits(client.post(URL, json=mosaic_body(TILE_KEYS)))
    mosaic = hdul[0].data.astype(np.float64)
    assert hdul[0].data.dtype == np.dtype(">f4")
    big, wcs = big_image()
    reference = reproject_fast(big, wcs, _grid_of(hdul)).astype(np.float64)
    covered = np.isfinite(mosaic)
    both = covered & np.isfinite(reference)
    assert both.mean() > 0.6
    rms = np.sqrt(np.mean(reference[both] ** 2))
    diff = np.abs(mosaic[both] - reference[both])
    assert np.sqrt(np.mean(diff**2)) < 0.005 * rms
    assert np.percentile(diff, 99) < 0.005 * rms
    # the grid corners are outside the rotated union of tiles: NaN there
    assert np.isnan(mosaic[0, 0])
    assert np.isnan(mosaic[-1, -1])


@pytest.mark.parametrize("method", ["mean", "sum", "first", "last", "min", "max", "median"])
def test_combine_methods_match_numpy_on_the_stack(data_root: Path, method: str) -> None:
    paths = tuple(str(data_root / k) for k in TILE_KEYS)
    sources = run_job(data_root, load_sources, tuple(TILE_KEYS))
    grid = optimal_celestial_grid([(s.wcs, s.shape) for s in sources])
    stack = []
    for path in paths:
        with fits.open(path) as hdul:
            data = hdul["SCI"].data.astype(np.float32)
            wcs = WCS(hdul["SCI"].header)
        data[data == 0] = np.nan
        stack.append(reproject_fast(data, wcs, grid))
    cube = np.array(stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = {
            "mean": lambda c: np.nanmean(c, axis=0),
            "sum": lambda c: np.where(np.isfinite(c).any(0), np.nansum(c, axis=0), np.nan),
            "min": lambda c: np.nanmin(c, axis=0),
            "max": lambda c: np.nanmax(c, axis=0),
            "median": lambda c: np.nanmedian(c, axis=0),
        }
        if method in expected:
            want = expected[method](cube)
        else:
            order = range(len(stack)) if method == "last" else reversed(range(len(stack)))
            want = np.full(grid.shape, np.nan, dtype=np.float32)
            for k in order:
                take = np.isfinite(cube[k])
                want[take] = cube[k][take]
    got = combine(sources, grid, method)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(combine(sources, grid, method, threads=2), got)  # threads change nothing


def test_fits_provenance_round_trip(client: TestClient) -> None:
    hdul = _fits(client.post(URL, json=mosaic_body(TILE_KEYS, combine_method="median")))
    header = hdul[0].header
    assert header["EXTNAME"] == "MOSAIC"
    assert header["MOSAIC"] is True
    assert header["NINPUTS"] == 4
    assert header["COMBMETH"] == "median"
    assert header["SRC0001"] == "t0.fits"
    assert header["SRC0004"] == "t3.fits"
    assert header["SRCINST"] == "NIRCAM"
    assert header["SRCFILT"] == "F200W,F444W"
    assert header["SRCTARG"] == "M16"
    assert header["INSTRUME"] == "NIRCAM"
    assert "FILTER" not in header
    for key in ("ORIGIN", "CREATOR", "DATE"):
        assert key in header
    assert any("Mosaic of 4 files" in str(h) for h in header["HISTORY"])
    table = hdul["SRCMETA"].data
    assert set(table.columns.names) == {"SRCINDEX", "FILENAME", "KEYWORD", "VALUE", "COMMENT"}
    rows = {(int(r["SRCINDEX"]), r["KEYWORD"]): r["VALUE"] for r in table}
    assert rows[(3, "FILTER")] == "F444W"
    assert rows[(1, "INSTRUME")] == "NIRCAM"
    assert rows[(1, "TARGNAME")] == "M16"
    grid = _grid_of(hdul)
    assert grid.wcs.has_celestial


def test_png_with_width_keeps_aspect_and_uncovered_is_black(client: TestClient) -> None:
    response = client.post(URL, json=mosaic_body(TILE_KEYS, output_format="png", width=200, cmap="viridis"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert img.shape[1] == 200
    assert img[0, 0].tolist() == [0, 0, 0]
    assert response.headers["X-Mosaic-Downscaled"] == "true"
    both = client.post(URL, json=mosaic_body(TILE_KEYS, output_format="jpeg", width=120, height=90))
    assert both.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(both.content)).size == (120, 90)


def test_footprints_match_astropy(client: TestClient, data_root: Path) -> None:
    response = client.post("/mosaic/footprint", json={"file_paths": TILE_KEYS[:2]})
    assert response.status_code == 200
    body = response.json()
    assert body["n_files"] == 2
    assert isinstance(body["n_files"], int)
    for key, fp in zip(TILE_KEYS[:2], body["footprints"], strict=True):
        assert fp["file_path"] == key
        with fits.open(data_root / key) as hdul:
            wcs = WCS(hdul["SCI"].header)
            h, w = hdul["SCI"].data.shape
        ra, dec = wcs.pixel_to_world_values([0, w - 1, w - 1, 0], [0, 0, h - 1, h - 1])
        np.testing.assert_allclose(fp["corners_ra"], ra, atol=1e-9)
        np.testing.assert_allclose(fp["corners_dec"], dec, atol=1e-9)
        corners = wcs.calc_footprint(axes=(w, h))
        np.testing.assert_allclose(sorted(fp["corners_ra"]), sorted(corners[:, 0]), atol=1e-9)
        cra, cdec = wcs.pixel_to_world_values(w / 2, h / 2)
        assert fp["center_ra"] == pytest.approx(float(cra))
        assert fp["center_dec"] == pytest.approx(float(cdec))
    box = body["bounding_box"]
    assert box["min_ra"] < box["max_ra"]
    assert box["min_dec"] < box["max_dec"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (mosaic_body(TILE_KEYS[:1]), 422, None),
        (mosaic_body(TILE_KEYS, combine_method="mode"), 422, None),
        (mosaic_body(TILE_KEYS, output_format="tiff"), 422, None),
        (mosaic_body(TILE_KEYS, output_format="png", cmap="foo"), 400, "Invalid cmap"),
        (mosaic_body(TILE_KEYS, width=100), 400, "Width/height resizing is not supported for FITS output"),
        (mosaic_body(["tiles/t0.fits", "bad/nowcs.fits"]), 400, "No celestial WCS found in FITS file: nowcs.fits"),
        (mosaic_body(["tiles/t0.fits", "bad/empty.fits"]), 400, "No image data found in FITS file: empty.fits"),
        (mosaic_body(["tiles/t0.fits", "/etc/passwd"]), 403, "Access denied: invalid path"),
        (mosaic_body(["tiles/t0.fits", "../x.fits"]), 403, "Access denied: invalid path"),
        (mosaic_body(["tiles/t0.fits", "tiles/nope.fits"]), 404, "File not found: nope.fits"),
        (mosaic_body(["tiles/t0.fits", "adir"]), 400, "Path is not a file"),
    ],
)
def test_errors(client: TestClient, body: dict[str, object], status: int, detail: str | None) -> None:
    response = client.post(URL, json=body)
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"].startswith(detail)


def test_footprint_errors(client: TestClient) -> None:
    assert client.post("/mosaic/footprint", json={"file_paths": []}).status_code == 422
    response = client.post("/mosaic/footprint", json={"file_paths": ["bad/nowcs.fits"]})
    assert response.status_code == 400
    assert response.json()["detail"] == "No celestial WCS found in FITS file: nowcs.fits"


def test_limits_give_413(data_root: Path, tmp_path: Path) -> None:
    app = create_app(make_settings(data_root, tmp_path, MAX_FITS_FILE_SIZE_MB=1, MAX_MOSAIC_OUTPUT_PIXELS=10_000))
    with TestClient(app) as small:
        too_big_file = small.post(URL, json=mosaic_body(["tiles/t0.fits", "big/big.fits"]))
        too_big_grid = small.post(URL, json=mosaic_body(TILE_KEYS))
        preview = small.post(URL, json=mosaic_body(TILE_KEYS, output_format="png", width=80))
    assert too_big_file.status_code == 413
    assert "big.fits" in too_big_file.json()["detail"]
    assert too_big_grid.status_code == 413
    assert "exceeds the limit" in too_big_grid.json()["detail"]
    assert preview.status_code == 200


def test_fits_temp_file_is_deleted(client: TestClient) -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("jwst-mosaic-*.fits"))
    _fits(client.post(URL, json=mosaic_body(TILE_KEYS[:2])))
    after = set(Path(tempfile.gettempdir()).glob("jwst-mosaic-*.fits"))
    assert after <= before


def test_mean_is_inverse_variance_weighted_with_err_extensions(tmp_path: Path) -> None:
    from tests.support.fits_factory import make_wcs

    root = tmp_path / "data"
    root.mkdir()
    wcs = make_wcs((40, 60))
    for name, value, err, x0 in (("a.fits", 10.0, 1.0, 0), ("b.fits", 20.0, 2.0, 20)):
        tile_wcs = wcs.deepcopy()
        tile_wcs.wcs.crpix = np.asarray(tile_wcs.wcs.crpix) - np.array([x0, 0.0])
        header = tile_wcs.to_header()
        sci = fits.ImageHDU(np.full((40, 40), value, dtype=np.float32), header=header, name="SCI")
        errs = fits.ImageHDU(np.full((40, 40), err, dtype=np.float32), header=header, name="ERR")
        fits.HDUList([fits.PrimaryHDU(), sci, errs]).writeto(root / name)
    app = create_app(make_settings(root, tmp_path))
    with TestClient(app) as c:
        response = c.post(URL, json=mosaic_body(["a.fits", "b.fits"]))
    hdul = _fits(response)
    assert response.headers["X-Mosaic-Weighting"] == "inverse-variance"
    assert hdul[0].header["COMBWGT"] == "inverse-variance"
    data = hdul[0].data
    values = np.unique(np.round(data[np.isfinite(data)], 3))
    # only a: 10; only b: 20; overlap: (10 * 1 + 20 * 0.25) / 1.25 = 12
    assert set(values.tolist()) <= {10.0, 12.0, 20.0}
    assert 12.0 in values.tolist()


def test_background_matching_removes_tile_offsets(tmp_path: Path) -> None:
    from tests.mosaic.conftest import TILES, tile_wcs
    from tests.support.fits_factory import write_image

    root = tmp_path / "data"
    big, wcs = big_image()
    offsets = (6.0, -4.0, 0.0, 3.0)
    for i, ((y0, x0, ny, nx), offset) in enumerate(zip(TILES, offsets, strict=True)):
        write_image(
            root / f"o{i}.fits", big[y0 : y0 + ny, x0 : x0 + nx] + np.float32(offset), wcs=tile_wcs(wcs, y0, x0)
        )
    keys = [f"o{i}.fits" for i in range(len(TILES))]
    app = create_app(make_settings(root, tmp_path))
    with TestClient(app) as c:
        plain = _fits(c.post(URL, json=mosaic_body(keys)))
        matched_response = c.post(URL, json=mosaic_body(keys, match_background=True))
    matched = _fits(matched_response)
    reference = reproject_fast(big, wcs, _grid_of(matched))

    def residual(hdul: fits.HDUList) -> float:
        diff = hdul[0].data - reference
        diff = diff[np.isfinite(diff)]
        return float(np.std(diff))

    assert residual(matched) < 0.05 < residual(plain)
    found = [float(v) for v in matched_response.headers["X-Mosaic-Background-Offsets"].split(",")]
    np.testing.assert_allclose(found, np.array(offsets) - np.mean(offsets), atol=0.05)
    assert matched[0].header["BKGMATCH"] is True
    assert "BKGOFFST" in set(matched["SRCMETA"].data["KEYWORD"])


def test_inputs_without_provenance_keywords_and_non_ascii_names(tmp_path: Path) -> None:
    from tests.support.fits_factory import make_wcs, write_image

    root = tmp_path / "data"
    data = np.ones((30, 30), dtype=np.float32)
    write_image(root / "plain.fits", data, wcs=make_wcs((30, 30)), primary=True, bunit=None)
    write_image(root / "étoile.fits", data, wcs=make_wcs((30, 30), ra=274.7001), primary=True, bunit=None)
    app = create_app(make_settings(root, tmp_path))
    with TestClient(app) as c:
        hdul = _fits(c.post(URL, json=mosaic_body(["plain.fits", "étoile.fits"])))
    assert hdul[0].header["SRC0002"] == "?toile.fits"
    assert len(hdul["SRCMETA"].data) == 0
