"""Fixtures for the hardening suite: live services on a storage root holding real FITS files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.bad_files import write_bad_corpus
from tests.support.fits_factory import gaussian_stars, make_wcs, write_cube, write_image, write_table
from tests.support.live_server import LiveServer

#: Keys of good files present in the hardening storage root (fuzzed requests are pointed at them).
GOOD_KEYS = ["mast/obs1/img_i2d.fits", "mast/obs1/img2_i2d.fits", "mast/obs2/cube_s3d.fits", "mast/obs2/cat_x1d.fits"]


def populate_root(root: Path) -> dict[str, Path]:
    """Write a few real FITS files (and the bad corpus under ``bad/``) into ``root``."""
    data, _ = gaussian_stars((96, 128), n_stars=20, seed=1)
    write_image(root / GOOD_KEYS[0], data, wcs=make_wcs((96, 128)), header={"INSTRUME": "NIRCAM", "FILTER": "F200W"})
    write_image(
        root / GOOD_KEYS[1],
        data[::-1].copy(),
        wcs=make_wcs((96, 128), ra=274.701, rotation_deg=10),
        header={"INSTRUME": "NIRCAM", "FILTER": "F444W"},
    )
    write_cube(root / GOOD_KEYS[2], np.random.default_rng(0).normal(size=(4, 32, 40)).astype(np.float32))
    write_table(
        root / GOOD_KEYS[3],
        {"WAVELENGTH": np.linspace(1, 5, 50), "FLUX": np.linspace(0, 1, 50)},
        extname="EXTRACT1D",
        units={"WAVELENGTH": "um", "FLUX": "Jy"},
    )
    return write_bad_corpus(root / "bad")


@pytest.fixture(scope="session")
def hardening_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hardening-data")
    populate_root(root)
    return root


@pytest.fixture(scope="session")
def engine_server(hardening_root: Path) -> Iterator[LiveServer]:
    env = {
        "STORAGE_BASE_PATH": str(hardening_root),
        "SEMANTIC_DATA_DIR": str(hardening_root / "semantic"),
        "ENGINE_WORKERS": "2",
        "ENGINE_QUEUE_SIZE": "8",
        "MAX_FITS_ARRAY_ELEMENTS": "50000000",
    }
    with LiveServer("main", env=env) as server:
        yield server


@pytest.fixture(scope="session")
def proxy_server(hardening_root: Path) -> Iterator[LiveServer]:
    # MAST itself is pointed at a closed port: searches must fail cleanly (502), never 500.
    env = {
        "STORAGE_BASE_PATH": str(hardening_root),
        "MAST_DOWNLOAD_DIR": str(hardening_root / "mast-dl"),
        "MAST_BASE_URL": "http://127.0.0.1:9",
        "MAST_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "MAST_SEARCH_TIMEOUT": "5",
    }
    with LiveServer("main_mast", env=env, workers=2) as server:
        yield server


#: The service token of the guarded servers (long and distinctive, so a leak into a log is found).
SERVICE_TOKEN = "svc-token-7f3a9c2e41d84b6f9e0a5d1c3b7e8f20"
#: Deadlines of the guarded servers, short so that the slow-client tests run in seconds.
HEAD_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
#: Finished download states the guarded proxy keeps.
GUARDED_MAX_FINISHED = 10


def _guarded_env(hardening_root: Path) -> dict[str, str]:
    return {
        "SERVICE_TOKEN": SERVICE_TOKEN,
        "REQUEST_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "LOG_LEVEL": "DEBUG",
        "STORAGE_BASE_PATH": str(hardening_root),
    }


@pytest.fixture(scope="session")
def guarded_engine(hardening_root: Path) -> Iterator[LiveServer]:
    """The engine with a service token and short head/body deadlines."""
    env = {
        **_guarded_env(hardening_root),
        "SEMANTIC_DATA_DIR": str(hardening_root / "semantic-guarded"),
        "ENGINE_WORKERS": "1",
        "ENGINE_EXECUTOR": "thread",
    }
    with LiveServer("main", env=env) as server:
        yield server


@pytest.fixture(scope="session")
def guarded_proxy(hardening_root: Path) -> Iterator[LiveServer]:
    """The proxy (two workers, MAST unreachable) with a service token, short deadlines, few finished states."""
    env = {
        **_guarded_env(hardening_root),
        "MAST_DOWNLOAD_DIR": str(hardening_root / "mast-dl-guarded"),
        "MAST_BASE_URL": "http://127.0.0.1:9",
        "MAST_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "MAST_SEARCH_TIMEOUT": "5",
        "MAST_MAX_FINISHED_JOBS": str(GUARDED_MAX_FINISHED),
    }
    with LiveServer("main_mast", env=env, workers=2) as server:
        yield server
