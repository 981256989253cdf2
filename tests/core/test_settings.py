"""Settings read the contract's environment names, once, with the contract's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.settings import Settings


def test_defaults_match_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAST_BASE_URL", "MAST_S3_BUCKET", "STORAGE_PROVIDER", "MAX_FITS_ARRAY_ELEMENTS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.mast_base_url == "https://mast.stsci.edu"
    assert s.mast_s3_endpoint_url is None
    assert s.mast_s3_bucket == "stpubdata"
    assert s.storage_provider == "local"
    assert s.storage_base_path == Path("/app/data")
    assert s.max_fits_array_elements == 200_000_000
    assert s.max_mosaic_output_pixels == 64_000_000
    assert s.max_composite_reproject_pixels == 64_000_000
    assert s.max_composite_input_pixels == 16_000_000
    assert s.storage_temp_cache_max_bytes == 2 * 1024**3
    assert s.mast_search_timeout == 120
    assert s.mast_download_timeout == 600
    assert s.s3_force_path_style is True
    assert (s.composite_cache_ttl_seconds, s.composite_cache_max_entries) == (600, 3)


def test_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "MAST_BASE_URL": "http://127.0.0.1:9999/",
        "MAST_S3_ENDPOINT_URL": "http://127.0.0.1:9998",
        "MAST_S3_BUCKET": "pub",
        "MAST_DOWNLOAD_DIR": str(tmp_path / "mast"),
        "STORAGE_PROVIDER": "S3",
        "S3_BUCKET_NAME": "b",
        "S3_ENDPOINT": "http://127.0.0.1:1",
        "S3_FORCE_PATH_STYLE": "false",
        "STORAGE_TEMP_CACHE_MAX_BYTES": "1000",
        "MAX_FITS_ARRAY_ELEMENTS": "42",
        "MAX_FITS_FILE_SIZE_MB": "7",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.mast_base_url == "http://127.0.0.1:9999"
    assert s.mast_s3_endpoint_url == "http://127.0.0.1:9998"
    assert s.mast_s3_bucket == "pub"
    assert s.mast_download_dir == tmp_path / "mast"
    assert s.storage_provider == "s3"
    assert s.s3_force_path_style is False
    assert s.storage_temp_cache_max_bytes == 1000
    assert s.max_fits_array_elements == 42
    assert s.max_fits_file_size_bytes == 7 * 1024 * 1024


def test_unknown_provider_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_PROVIDER", "ftp")
    with pytest.raises(ValidationError, match="STORAGE_PROVIDER"):
        Settings()


def test_no_environ_reads_outside_settings() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*root.joinpath("app").rglob("*.py"), root / "main.py", root / "main_mast.py"]:
        if path.name == "settings.py" and path.parent.name == "core":
            continue
        text = path.read_text()
        if "os.environ" in text or "os.getenv" in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
