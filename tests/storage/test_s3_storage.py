"""S3 storage against a real S3 API (moto's server on 127.0.0.1), through the factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.exceptions import AccessDeniedError, NotAFileError, NotFoundError
from app.core.settings import Settings
from app.storage.factory import create_storage
from app.storage.s3_storage import S3Storage
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


@pytest.fixture
def s3_storage(s3_server: S3Server, tmp_path: Path) -> S3Storage:
    s3_server.create_bucket("jwst-data")
    settings = Settings(
        STORAGE_PROVIDER="s3",
        S3_BUCKET_NAME="jwst-data",
        S3_ENDPOINT=s3_server.endpoint,
        S3_ACCESS_KEY=ACCESS_KEY,
        S3_SECRET_KEY=SECRET_KEY,
        S3_FORCE_PATH_STYLE="true",
        STORAGE_TEMP_CACHE_DIR=tmp_path / "cache",
        STORAGE_TEMP_CACHE_MAX_BYTES=10_000,
    )
    storage = create_storage(settings)
    assert isinstance(storage, S3Storage)
    return storage


def test_bytes_round_trip(s3_storage: S3Storage, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 20
    s3_storage.write_bytes("mast/obs/a.fits", payload)
    assert s3_storage.exists("mast/obs/a.fits")
    assert s3_storage.size("mast/obs/a.fits") == len(payload)
    assert s3_storage.read_bytes("mast/obs/a.fits") == payload
    local = s3_storage.local_path("mast/obs/a.fits")
    assert local.read_bytes() == payload
    assert local.is_relative_to(tmp_path / "cache")
    source = tmp_path / "up.bin"
    source.write_bytes(b"uploaded")
    s3_storage.upload_file("mast/obs/b.fits", source)
    assert s3_storage.list_keys("mast/obs") == ["mast/obs/a.fits", "mast/obs/b.fits"]
    assert s3_storage.delete("mast/obs/b.fits") is True
    assert not s3_storage.exists("mast/obs/b.fits")


def test_changed_object_is_refetched(s3_storage: S3Storage) -> None:
    s3_storage.write_bytes("k/v.fits", b"one")
    assert s3_storage.local_path("k/v.fits").read_bytes() == b"one"
    s3_storage.write_bytes("k/v.fits", b"two!")
    assert s3_storage.local_path("k/v.fits").read_bytes() == b"two!"


def test_contract_errors(s3_storage: S3Storage) -> None:
    s3_storage.write_bytes("dir/inner.fits", b"x")
    with pytest.raises(NotFoundError, match=r"File not found: missing\.fits"):
        s3_storage.local_path("dir/missing.fits")
    with pytest.raises(NotAFileError):
        s3_storage.local_path("dir")
    with pytest.raises(AccessDeniedError):
        s3_storage.local_path("../dir/inner.fits")
    with pytest.raises(AccessDeniedError):
        s3_storage.local_path("%2e%2e/x")


def test_anonymous_public_read(s3_server: S3Server) -> None:
    s3_server.create_bucket("stpubdata-test")
    s3_server.client().put_object(Bucket="stpubdata-test", Key="jwst/x.fits", Body=b"pub", ACL="public-read")
    body = s3_server.anonymous_client().get_object(Bucket="stpubdata-test", Key="jwst/x.fits")["Body"].read()
    assert body == b"pub"
