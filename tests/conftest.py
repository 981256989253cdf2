"""Session-wide fixtures: the S3 server and engine/proxy settings on temporary roots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.support.s3_server import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 API as a real server on 127.0.0.1 for the whole session."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def settings(storage_root: Path, tmp_path: Path) -> Settings:
    """Settings for an app on a temporary local storage root, thread executor."""
    return Settings(
        STORAGE_PROVIDER="local",
        STORAGE_BASE_PATH=storage_root,
        MAST_DOWNLOAD_DIR=storage_root / "mast",
        SEMANTIC_DATA_DIR=storage_root / "semantic",
        STORAGE_TEMP_CACHE_DIR=tmp_path / "cache",
        ENGINE_EXECUTOR="thread",
        LOG_FORMAT="text",
    )
