"""Fixtures of the semantic tests: the reference embeddings, a labelled metadata set, an app client."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.semantic.encoder import MiniLMEncoder, get_encoder

DATA = Path(__file__).with_name("data")

#: A small labelled set: each query below should rank its file first.
LABELLED_ITEMS: list[dict[str, Any]] = [
    {
        "file_id": "carina_miri",
        "target_name": "Carina Nebula",
        "instrument": "MIRI/IMAGE",
        "filter_name": "F770W",
        "exposure_time": 1200.0,
        "wavelength_range": None,
        "processing_level": "L3",
        "calibration_level": 3,
        "observation_date": "2022-06-03",
        "proposal_pi": "Pontoppidan, Klaus",
        "proposal_id": "2731",
        "observation_title": "Early Release Observations: Carina Nebula",
        "data_type": "image",
        "file_name": "jw02731-o002_t017_miri_f770w_i2d.fits",
    },
    {
        "file_id": "carina_nircam",
        "target_name": "Carina Nebula",
        "instrument": "NIRCAM/IMAGE",
        "filter_name": "F444W",
        "exposure_time": 2000.0,
        "processing_level": "L3",
        "calibration_level": 3,
        "observation_date": "2022-06-03",
        "proposal_pi": "Pontoppidan, Klaus",
        "observation_title": "Early Release Observations: Carina Nebula",
        "file_name": "jw02731-o001_t017_nircam_clear-f444w_i2d.fits",
    },
    {
        "file_id": "ring_miri",
        "target_name": "Southern Ring Nebula NGC 3132",
        "instrument": "MIRI/IMAGE",
        "filter_name": "F1130W",
        "exposure_time": 800.0,
        "calibration_level": 2,
    },
    {
        "file_id": "wasp96",
        "target_name": "WASP-96",
        "instrument": "NIRISS/SOSS",
        "filter_name": "CLEAR",
        "exposure_time": 24000.0,
        "calibration_level": 2,
        "observation_title": "Transiting exoplanet atmosphere spectroscopy",
        "data_type": "spectrum",
    },
    {
        "file_id": "smacs",
        "target_name": "SMACS J0723.3-7327",
        "instrument": "NIRCAM/IMAGE",
        "filter_name": "F090W",
        "exposure_time": 7537.0,
        "calibration_level": 3,
        "observation_title": "Galaxy cluster deep field gravitational lensing",
    },
    {
        "file_id": "jupiter",
        "target_name": "Jupiter",
        "instrument": "NIRCAM/IMAGE",
        "filter_name": "F212N",
        "exposure_time": 75.0,
        "calibration_level": 1,
        "observation_date": "2022-07-14",
    },
]

#: query -> file id expected first
LABELLED_QUERIES: dict[str, str] = {
    "MIRI image of the Carina nebula": "carina_miri",
    "exoplanet transit spectrum": "wasp96",
    "Jupiter raw data": "jupiter",
    "gravitational lensing galaxy cluster": "smacs",
    "mid-infrared ring nebula": "ring_miri",
}


@pytest.fixture(scope="session")
def encoder() -> MiniLMEncoder:
    """The process-wide encoder (loaded once for the whole test session)."""
    return get_encoder()


@pytest.fixture(scope="session")
def reference() -> tuple[list[str], np.ndarray]:
    """Sentences and their sentence-transformers embeddings (see ``data/make_reference.py``)."""
    doc = json.loads((DATA / "reference_embeddings.json").read_text())
    texts = [item["text"] for item in doc["items"]]
    vectors = np.stack(
        [np.frombuffer(base64.b64decode(item["embedding_f32le_b64"]), dtype="<f4") for item in doc["items"]]
    )
    return texts, vectors


@pytest.fixture(scope="module")
def semantic_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A TestClient of the engine app on a fresh SEMANTIC_DATA_DIR, shared by a test module."""
    from main import create_app

    root = tmp_path_factory.mktemp("semantic-app")
    settings = Settings(
        STORAGE_PROVIDER="local",
        STORAGE_BASE_PATH=root,
        SEMANTIC_DATA_DIR=root / "semantic",
        STORAGE_TEMP_CACHE_DIR=root / "cache",
        ENGINE_EXECUTOR="thread",
        LOG_FORMAT="text",
    )
    with TestClient(create_app(settings)) as client:
        yield client
