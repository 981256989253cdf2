"""Fixtures of the operations tests: live engine and proxy, and a Prometheus text parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.mast.conftest import emulator, proxy_env, public_bucket  # noqa: F401 - fixtures reused here
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.live_server import LiveServer
from tests.support.mast_emulator import MastEmulator
from tests.support.s3_server import S3Server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``url/metrics``, keyed by name and labels."""
    reply = httpx.get(f"{url}/metrics", timeout=30)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= lab)


def has(samples: Samples, name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(n == name and wanted <= lab for (n, lab) in samples)


def write_fields(root: Path) -> list[str]:
    """Three rotated star fields of 256² with WCS; return their keys."""
    keys = []
    for i, rotation in enumerate((0.0, 15.0, -10.0)):
        data, _ = gaussian_stars((256, 256), n_stars=60, seed=i)
        key = f"mast/obs/f{i}_i2d.fits"
        write_image(root / key, data, wcs=make_wcs((256, 256), rotation_deg=rotation, ra=274.7 + i * 1e-3))
        keys.append(key)
    return keys


def engine_env(root: Path, **extra: str) -> dict[str, str]:
    return {
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": str(root),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "COMPOSITE_CACHE_DIR": str(root.parent / f"{root.name}-composite-cache"),
        "ENGINE_EXECUTOR": "process",
        "ENGINE_WORKERS": "1",
        "READY_TIMEOUT_SECONDS": "60",  # the first job of a cold pool imports numpy on a loaded machine
        **extra,
    }


@pytest.fixture(scope="module")
def engine_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ops-engine")
    write_fields(root)
    return root


@pytest.fixture(scope="module")
def engine(engine_root: Path) -> Iterator[LiveServer]:
    with LiveServer("main", env=engine_env(engine_root, ENGINE_QUEUE_SIZE="0")) as server:
        yield server


@pytest.fixture(scope="module")
def proxy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ops-proxy")


@pytest.fixture(scope="module")
def proxy(
    emulator: MastEmulator,  # noqa: F811
    s3_server: S3Server,
    public_bucket: str,  # noqa: F811
    proxy_root: Path,
) -> Iterator[LiveServer]:
    env = proxy_env(emulator, s3_server, public_bucket, proxy_root)
    with LiveServer("main_mast", workers=2, env=env) as server:
        yield server
