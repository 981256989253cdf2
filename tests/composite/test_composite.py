"""N-channel composite endpoint: colour, alignment, sizes, budgets, errors."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS
from fastapi.testclient import TestClient
from PIL import Image

from app.composite.jobs import render_composite
from app.composite.schemas import NChannelCompositeRequest
from app.composite.service import build_job
from main import create_app
from tests.composite.conftest import STAR_DEC, STAR_RA, channel, make_settings, request_body
from tests.support.avm_reader import avm_wcs
from tests.support.jobs import run_job

URL = "/composite/generate-nchannel"


def _image(response) -> np.ndarray:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(float)


def _centroid(plane: np.ndarray, half: int = 8) -> tuple[float, float]:
    """Background-subtracted centroid of the brightest source, re-centred until stable."""
    y, x = (float(v) for v in np.unravel_index(np.argmax(plane), plane.shape))
    background = np.median(plane)
    for _ in range(5):
        iy, ix = round(y), round(x)
        y0, x0 = max(0, iy - half), max(0, ix - half)
        win = np.clip(plane[y0 : iy + half + 1, x0 : ix + half + 1] - background, 0, None)
        yy, xx = np.mgrid[: win.shape[0], : win.shape[1]]
        x, y = float((xx * win).sum() / win.sum() + x0), float((yy * win).sum() / win.sum() + y0)
    return x, y


def test_single_hue_red_has_no_green_or_blue(client: TestClient) -> None:
    response = client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0)]))
    img = _image(response)
    assert response.headers["content-type"] == "image/png"
    assert img.shape == (240, 300, 3)
    bright = img[..., 0] > 128
    assert bright.sum() > 50
    assert img[..., 1][bright].max() <= 1
    assert img[..., 2][bright].max() <= 1


def test_swapping_hues_swaps_colours(client: TestClient) -> None:
    one = _image(client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0), channel(["ch/b.fits"], hue=240)])))
    two = _image(client.post(URL, json=request_body([channel(["ch/a.fits"], hue=240), channel(["ch/b.fits"], hue=0)])))
    assert np.abs(one[..., 0] - two[..., 2]).max() <= 1
    assert np.abs(one[..., 2] - two[..., 0]).max() <= 1


def test_star_lands_on_same_pixel_in_every_channel(client: TestClient) -> None:
    body = request_body(
        [channel([f"single/{n}.fits"], hue=h, stretch="linear") for n, h in (("a", 0), ("b", 120), ("c", 240))],
        width=400,
        height=400,
    )
    response = client.post(URL, json=body)
    img = _image(response)
    positions = [_centroid(img[..., k]) for k in range(3)]
    for pos in positions[1:]:
        assert abs(pos[0] - positions[0][0]) < 0.5
        assert abs(pos[1] - positions[0][1]) < 0.5
    # the AVM WCS of the output puts the star where it is drawn (AVM y counts from the bottom)
    wcs: WCS = avm_wcs(response.content)
    x, y = wcs.world_to_pixel_values(STAR_RA, STAR_DEC)
    assert abs(x - positions[0][0]) < 1.0
    assert abs((400 - 1 - y) - positions[0][1]) < 1.0


def test_output_is_exact_size_with_black_letterbox_and_jpeg(client: TestClient) -> None:
    response = client.post(
        URL,
        json=request_body([channel(["ch/a.fits"], hue=30)], width=500, height=120, output_format="jpeg", quality=90),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    img = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(float)
    assert img.shape == (120, 500, 3)
    content_w, content_h = (int(v) for v in response.headers["X-Composite-Content-Shape"].split("x"))
    assert content_h == 120
    assert content_w < 500
    left = (500 - content_w) // 2
    assert img[:, : left - 2].max() < 12  # black bars (JPEG ringing tolerance)
    assert response.headers["X-Composite-Output-Shape"] == "500x120"


def test_multi_file_channel_and_duplicate_labels(client: TestClient) -> None:
    body = request_body(
        [
            channel(["ch/a.fits", "ch/a2.fits"], hue=0, label="F1"),
            channel(["ch/b.fits"], hue=120, label="F1"),
            channel(["ch/c.fits"], lum=True, label="F1", weight=0.5),
        ]
    )
    img = _image(client.post(URL, json=body))
    assert img[..., 0].max() > 150
    assert img[..., 1].max() > 150


def test_unknown_stretch_falls_back_to_zscale_and_says_so(client: TestClient) -> None:
    response = client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0, stretch="fancy")]))
    assert response.status_code == 200
    assert response.headers["X-Composite-Stretch-Fallback"] == "0:zscale"


def test_auto_stretch_reports_parameters(client: TestClient) -> None:
    response = client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0, stretch="auto")]))
    assert response.status_code == 200
    assert "asinh_a=" in response.headers["X-Composite-Auto-Stretch"]


def test_cache_is_reused_for_same_grid_only(client: TestClient) -> None:
    body = request_body([channel(["ch/c.fits"], hue=0)], width=64, height=64)
    first = client.post(URL, json=body)
    again = client.post(URL, json={**body, "channels": [channel(["ch/c.fits"], hue=0, gamma=2)]})
    bigger = client.post(URL, json={**body, "width": 1024, "height": 1024})
    assert again.headers["X-Composite-Cache"] == "hit"
    assert first.headers["X-Composite-Downscaled"] == "true"
    assert bigger.headers["X-Composite-Cache"] == "miss"
    assert bigger.headers["X-Composite-Downscaled"] == "false"


def test_overall_adjustments_apply(client: TestClient) -> None:
    base = _image(client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0)])))
    overall = {"stretch": "linear", "black_point": 0.0, "white_point": 1.0, "gamma": 2.0, "asinh_a": 0.1}
    brighter = _image(client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0)], overall=overall)))
    assert brighter[..., 0].mean() > base[..., 0].mean() + 5


@pytest.mark.parametrize(
    ("channels", "fragment"),
    [
        (
            [channel(["x.fits"], lum=True), channel(["y.fits"], lum=True), channel(["z.fits"], hue=0)],
            "At most one luminance",
        ),
        ([channel(["x.fits"], lum=True)], "At least one color channel"),
        ([channel(["x.fits"], hue=10, rgb=[1, 0, 0])], "exactly one of"),
        ([channel(["x.fits"])], "exactly one of"),
        ([channel(["x.fits"], hue=0, black_point=0.6, white_point=0.5)], "black_point"),
    ],
)
def test_semantic_422_before_any_file_is_read(
    client: TestClient, channels: list[dict[str, object]], fragment: str
) -> None:
    response = client.post(URL, json=request_body(channels))
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [
        {"output_format": "jpg"},
        {"width": 0},
        {"height": 4097},
        {"quality": 0},
        {"channels": []},
    ],
)
def test_pydantic_422(client: TestClient, change: dict[str, object]) -> None:
    response = client.post(URL, json={**request_body([channel(["ch/a.fits"], hue=0)]), **change})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "bad",
    [
        {"gamma": 0},
        {"gamma": 6},
        {"asinh_a": 0},
        {"weight": 3},
        {"curve": "wavy"},
        {"color": {"hue": 400, "rgb": None, "luminance": False}},
        {"color": {"hue": None, "rgb": [1, 0], "luminance": False}},
    ],
)
def test_channel_field_ranges(client: TestClient, bad: dict[str, object]) -> None:
    response = client.post(URL, json=request_body([channel(["ch/a.fits"], hue=0, **bad)]))
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("key", "status", "detail"),
    [
        ("/etc/passwd", 403, "Access denied: invalid path"),
        ("ch/../ch/a.fits", 403, "Access denied: invalid path"),
        ("ch/missing.fits", 404, "File not found: missing.fits"),
        ("adir", 400, "Path is not a file"),
    ],
)
def test_path_errors(client: TestClient, key: str, status: int, detail: str) -> None:
    response = client.post(URL, json=request_body([channel([key], hue=0)]))
    assert response.status_code == status
    assert response.json()["detail"] == detail


def test_channel_without_usable_data_is_400(client: TestClient) -> None:
    body = request_body(
        [channel(["ch/a.fits"], hue=0), channel(["bad/nowcs.fits", "bad/empty.fits"], hue=120, label="F200W")]
    )
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == "No usable image data for channel F200W"


def test_budget_that_cannot_be_met_is_413(data_root: Path, tmp_path: Path) -> None:
    app = create_app(make_settings(data_root, tmp_path, ENGINE_JOB_MEMORY_MB=1))
    with TestClient(app) as small:
        response = small.post(URL, json=request_body([channel(["ch/a.fits"], hue=0)]))
    assert response.status_code == 413
    assert "memory budget" in response.json()["detail"]


def test_reproject_pixel_budget_downscales(data_root: Path, tmp_path: Path) -> None:
    app = create_app(make_settings(data_root, tmp_path, MAX_COMPOSITE_REPROJECT_PIXELS=2000))
    with TestClient(app) as small:
        response = small.post(URL, json=request_body([channel(["ch/a.fits"], hue=0)], width=1000, height=1000))
    assert response.status_code == 200
    gw, gh = (int(v) for v in response.headers["X-Composite-Grid-Shape"].split("x"))
    assert gw * gh <= 2000 * 1.1
    assert response.headers["X-Composite-Downscaled"] == "true"
    assert Image.open(io.BytesIO(response.content)).size == (1000, 1000)


@pytest.mark.parametrize("threads", [1, 2])
def test_memory_estimate_bounds_measured_allocations(data_root: Path, tmp_path: Path, threads: int) -> None:
    settings = make_settings(
        data_root, tmp_path, COMPOSITE_CACHE_DIR=tmp_path / "composite-cache", ENGINE_JOB_THREADS=threads
    )
    request = NChannelCompositeRequest.model_validate(
        request_body(
            [channel(["ch/a.fits"], hue=0), channel(["ch/b.fits"], hue=120), channel(["ch/c.fits"], hue=240)],
            width=800,
            height=800,
        )
    )
    job = build_job(request, settings)
    run_job(data_root, lambda: None)  # build the job storage before measuring
    tracemalloc.start()
    try:
        output = run_job(data_root, render_composite, job)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from app.composite.planning import BASELINE_BYTES

    estimate = int(output.headers["X-Composite-Memory-Estimate-MB"]) * 1024 * 1024
    assert peak < estimate - BASELINE_BYTES
    assert peak > (estimate - BASELINE_BYTES) / (20 * threads)  # the estimate is not absurdly loose


def test_default_parameters_are_well_exposed(tmp_path: Path) -> None:
    from tests.support.fits_factory import gaussian_stars, make_wcs, write_image

    root = tmp_path / "data"
    for i in range(3):
        data, _ = gaussian_stars((256, 256), n_stars=80, seed=10 + i, background=50.0, noise=2.0)
        data[7, 9] = 1e7  # a hot pixel
        write_image(root / f"w{i}.fits", data, wcs=make_wcs((256, 256)))
    app = create_app(make_settings(root, tmp_path))
    body = request_body([channel([f"w{i}.fits"], hue=h) for i, h in enumerate((0, 120, 240))], width=256, height=256)
    with TestClient(app) as c:
        img = _image(c.post(URL, json=body))
    luminance = 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]
    assert 25 <= np.median(luminance) <= 110
    assert (img == 255).all(axis=-1).mean() < 0.005


def test_threads_do_not_change_a_single_pixel(data_root: Path, tmp_path: Path) -> None:
    body = request_body(
        [channel(["ch/a.fits", "ch/b.fits"], hue=0), channel(["ch/b.fits"], hue=120), channel(["ch/c.fits"], hue=240)],
        width=300,
        height=200,
    )
    request = NChannelCompositeRequest.model_validate(body)
    outputs = []
    for threads in (1, 2, 3):
        settings = make_settings(data_root, tmp_path, ENGINE_JOB_THREADS=threads, COMPOSITE_CACHE_MAX_ENTRIES=0)
        outputs.append(run_job(data_root, render_composite, build_job(request, settings)).content)
    assert outputs[0] == outputs[1] == outputs[2]
    image = np.asarray(Image.open(io.BytesIO(outputs[0])))
    assert image.shape == (200, 300, 3)
    assert image.max() > 100  # a real picture, not a black frame
