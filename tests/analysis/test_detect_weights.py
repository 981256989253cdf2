"""Source detection on crowded fields and on images with a noise extension: ``weight_hdu`` and the real M13 file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient

from tests.support.fits_factory import EDGE_WIDTH, exposure_edge_field
from tests.support.real_data import CORPUS
from tests.support.reference_detection import daofind_reference, recovered

URL = "/analysis/detect-sources"


def edge_fraction(sources: list[dict[str, float]]) -> float:
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in sources])
    inner = np.all((xy >= EDGE_WIDTH - 0.5) & (xy < 400 - EDGE_WIDTH - 0.5), axis=1)
    return float((~inner).mean())


def all_found(sources: list[dict[str, float]]) -> bool:
    truth = exposure_edge_field()[3]
    return bool(recovered(truth[:, :2], sources).all())


@pytest.mark.parametrize("key", ["edge", "edge_wht"])
@pytest.mark.parametrize("weight_hdu", ["absent", None, "auto"])
def test_the_noise_extension_is_used_by_default(
    client: TestClient, keys: dict[str, str], key: str, weight_hdu: str | None
) -> None:
    body: dict[str, object] = {"file_path": keys[key]}
    if weight_hdu != "absent":
        body["weight_hdu"] = weight_hdu
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    sources = r.json()["sources"]
    assert edge_fraction(sources) <= 0.05
    assert all_found(sources)
    assert r.json()["n_sources"] <= 42


def test_none_ignores_the_extension_and_the_edge_fills_with_noise(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(URL, json={"file_path": keys["edge"], "weight_hdu": "none"})
    assert r.status_code == 200, r.text
    assert edge_fraction(r.json()["sources"]) > 0.3


@pytest.mark.parametrize("index", [2, 3])
def test_an_explicit_err_or_wht_index(client: TestClient, keys: dict[str, str], index: int) -> None:
    r = client.post(URL, json={"file_path": keys["edge"], "weight_hdu": index, "method": "daofind"})
    assert r.status_code == 200, r.text
    assert edge_fraction(r.json()["sources"]) <= 0.05


@pytest.mark.parametrize(
    ("weight_hdu", "status", "detail"),
    [
        (1, 400, "is not a WHT or ERR extension"),
        (9, 400, "out of range"),
        (-1, 422, None),
        ("both", 422, None),
        (2.5, 422, None),
    ],
)
def test_weight_hdu_errors(
    client: TestClient, keys: dict[str, str], weight_hdu: object, status: int, detail: str | None
) -> None:
    r = client.post(URL, json={"file_path": keys["edge"], "weight_hdu": weight_hdu})
    assert r.status_code == status, r.text
    if detail:
        assert detail in r.json()["detail"]


def test_an_extension_of_another_shape_is_400(client: TestClient, analysis_root: tuple[Path, dict[str, str]]) -> None:
    root = analysis_root[0]
    science = fits.ImageHDU(np.zeros((40, 50), dtype=np.float32), name="SCI")
    weight = fits.ImageHDU(np.ones((20, 25), dtype=np.float32), name="WHT")
    fits.HDUList([fits.PrimaryHDU(), science, weight]).writeto(root / "img" / "mismatch.fits", overwrite=True)
    r = client.post(URL, json={"file_path": "img/mismatch.fits", "weight_hdu": 2})
    assert r.status_code == 400
    assert "has shape (20, 25), the image (40, 50)" in r.json()["detail"]
    r = client.post(URL, json={"file_path": "img/mismatch.fits"})  # auto: a WHT of another shape is not used
    assert r.status_code == 200, r.text


def test_real_m13_auto_finds_the_brightest_daofind_stars(client: TestClient, keys: dict[str, str]) -> None:
    reference = daofind_reference(np.asarray(fits.getdata(CORPUS["m13"].path), dtype=np.float32))
    r = client.post(URL, json={"file_path": keys["m13"], "method": "auto", "fwhm": round(reference.fwhm, 2)})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "segmentation"
    assert recovered(reference.xy[:50], r.json()["sources"]).mean() >= 0.95
