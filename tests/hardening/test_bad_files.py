"""Every engine endpoint that reads FITS, with every file of the bad-file corpus, over real HTTP.

A usable file gets a 200; anything else a 4xx whose ``detail`` is a clear string that carries no
local path and no exception text. Never a 5xx, never slower than the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hardening.conftest import GOOD_KEYS
from tests.support.bad_files import CASES
from tests.support.live_server import LiveServer

DEADLINE_S = 30.0

Request = Callable[[str], tuple[str, str, dict[str, Any]]]


def _get(path: str, **params: Any) -> Request:
    return lambda key: ("GET", path, {"params": {"file_path": key, **params}})


def _post(path: str, body: Callable[[str], dict[str, Any]]) -> Request:
    return lambda key: ("POST", path, {"json": body(key)})


def _channel(key: str, hue: float) -> dict[str, Any]:
    return {
        "file_paths": [key],
        "stretch": "asinh",
        "black_point": 0,
        "white_point": 1,
        "gamma": 1,
        "asinh_a": 0.05,
        "curve": "linear",
        "weight": 1,
        "color": {"hue": hue, "rgb": None, "luminance": False},
        "label": None,
        "wavelength_um": None,
    }


ENDPOINTS: dict[str, Request] = {
    "thumbnail": _post("/thumbnail", lambda key: {"file_path": key}),
    "preview": _get("/preview/0123456789abcdef01234567", width=64, height=64),
    "preview_jpeg_avm": _get(
        "/preview/0123456789abcdef01234567",
        width=64,
        height=64,
        format="jpeg",
        embed_avm="true",
        stretch="histeq",
        smooth_method="median",
    ),
    "histogram": _get("/histogram/0123456789abcdef01234567", bins=32),
    "pixeldata": _get("/pixeldata/0123456789abcdef01234567", max_size=100),
    "cubeinfo": _get("/cubeinfo/0123456789abcdef01234567"),
    "composite": _post(
        "/composite/generate-nchannel",
        lambda key: {
            "channels": [_channel(key, 0), _channel(GOOD_KEYS[0], 240)],
            "overall": None,
            "background_neutralization": True,
            "output_format": "png",
            "quality": 95,
            "width": 64,
            "height": 64,
        },
    ),
    "mosaic": _post(
        "/mosaic/generate",
        lambda key: {
            "files": [
                {"file_path": key, "stretch": "asinh", "black_point": 0, "white_point": 1, "gamma": 1, "asinh_a": 0.1},
                {
                    "file_path": GOOD_KEYS[0],
                    "stretch": "asinh",
                    "black_point": 0,
                    "white_point": 1,
                    "gamma": 1,
                    "asinh_a": 0.1,
                },
            ],
            "output_format": "png",
            "quality": 95,
            "width": 64,
            "height": None,
            "combine_method": "mean",
            "cmap": "grayscale",
        },
    ),
    "footprint": _post("/mosaic/footprint", lambda key: {"file_paths": [key]}),
    "region_statistics": _post(
        "/analysis/region-statistics",
        lambda key: {
            "file_path": key,
            "region_type": "rectangle",
            "rectangle": {"x": 2, "y": 3, "width": 20, "height": 10},
            "ellipse": None,
            "hdu_index": -1,
        },
    ),
    "detect_sources": _post(
        "/analysis/detect-sources",
        lambda key: {
            "file_path": key,
            "threshold_sigma": 5,
            "fwhm": 3,
            "method": "auto",
            "npixels": 10,
            "deblend": True,
        },
    ),
    "table_info": _get("/analysis/table-info"),
    "table_data": _get("/analysis/table-data", hdu_index=1, page=0, page_size=10),
    "spectral_data": _get("/analysis/spectral-data", hdu_index=1),
}

#: Files whose image data is usable: the viewer endpoints must answer 200 for them.
USABLE_IMAGES = {
    "scaled_integers",
    "tile_compressed",
    "gzip_compressed",
    "cube_3d",
    "cube_4d",
    "with_infinities",
    "sip_distortion",
    "many_cards",
    "no_celestial_wcs",
    "singular_cd",
}
VIEWER = {"preview", "histogram", "pixeldata", "cubeinfo", "thumbnail"}


@pytest.fixture(scope="module")
def client(engine_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=engine_server.url, timeout=DEADLINE_S) as http:
        yield http


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_bad_corpus_never_breaks_an_endpoint(endpoint: str, client: httpx.Client, hardening_root: Path) -> None:
    served = {route.path for route in _routes(client)}
    method, path, kwargs = ENDPOINTS[endpoint]("x")
    assert _template(path) in served, f"{path} is not served"
    problems: list[str] = []
    for case, (filename, _) in CASES.items():
        key = f"bad/{filename}"
        method, path, kwargs = ENDPOINTS[endpoint](key)
        reply = client.request(method, path, **kwargs)
        status = reply.status_code
        if status >= 500:
            problems.append(f"{case}: {status} {reply.text[:200]}")
            continue
        if endpoint in VIEWER and case in USABLE_IMAGES and status != 200:
            problems.append(f"{case}: usable image got {status} {reply.text[:200]}")
        if 400 <= status < 500:
            detail = reply.json().get("detail")
            if status != 422 and not (isinstance(detail, str) and detail.strip()):
                problems.append(f"{case}: {status} without a clear detail: {reply.text[:200]}")
            if str(hardening_root) in reply.text or "Traceback" in reply.text:
                problems.append(f"{case}: {status} leaks internals: {reply.text[:200]}")
    assert problems == []


def _template(path: str) -> str:
    parts = path.split("/")
    if len(parts) == 3 and parts[2] == "0123456789abcdef01234567":
        return f"/{parts[1]}/{{data_id}}"
    return path


class _Route:
    def __init__(self, path: str) -> None:
        self.path = path


def _routes(client: httpx.Client) -> list[_Route]:
    schema = client.get("/openapi.json").json()
    return [_Route(path) for path in schema["paths"]]


def _peak_mib(pid: int) -> float:
    """High-water mark of a process's resident memory (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_bad_corpus_stays_within_memory_budget(engine_server: LiveServer, client: httpx.Client) -> None:
    """After every endpoint has seen every bad file, no process ever held more than its budget.

    Worker processes live for the whole session, so their ``VmHWM`` is the peak over every job they
    ran: the claimed 100000 x 100000 image and the truncated files were refused before allocation.
    """
    import psutil

    assert client.get("/health").status_code == 200
    assert engine_server.process is not None
    parent = psutil.Process(engine_server.process.pid)
    peaks = {proc.pid: _peak_mib(proc.pid) for proc in [parent, *parent.children(recursive=True)]}
    budget_mib = 1024  # ENGINE_JOB_MEMORY_MB is 3072; these files are tiny, so 1 GiB is already generous
    assert max(peaks.values()) < budget_mib, peaks
