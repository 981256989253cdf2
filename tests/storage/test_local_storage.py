"""Local storage: round trips, the contract's 403/404/400, and symlinks out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.exceptions import AccessDeniedError, NotAFileError, NotFoundError
from app.storage.local_storage import LocalStorage


def test_round_trip_and_listing(storage_root: Path) -> None:
    storage = LocalStorage(storage_root)
    storage.write_bytes("mast/obs1/a.fits", b"abc")
    storage.write_bytes("mast/obs1/b.fits", b"defg")
    assert storage.read_bytes("mast/obs1/a.fits") == b"abc"
    assert storage.size("mast/obs1/b.fits") == 4
    assert storage.exists("mast/obs1/a.fits")
    assert storage.list_keys("mast") == ["mast/obs1/a.fits", "mast/obs1/b.fits"]
    assert storage.local_path("mast/obs1/a.fits") == (storage_root / "mast/obs1/a.fits").resolve()
    assert storage.delete("mast/obs1/a.fits") is True
    assert storage.delete("mast/obs1/a.fits") is False
    assert not list((storage_root / "mast/obs1").glob(".tmp-*"))


def test_upload_file(storage_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"\x00" * 1000)
    storage = LocalStorage(storage_root)
    storage.upload_file("mast/o/x.fits", source)
    assert storage.read_bytes("mast/o/x.fits") == b"\x00" * 1000


def test_missing_is_404_with_basename(storage_root: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        LocalStorage(storage_root).local_path("mast/obs/nothing.fits")
    assert missing.value.detail == "File not found: nothing.fits"


def test_directory_is_400(storage_root: Path) -> None:
    (storage_root / "mast").mkdir()
    with pytest.raises(NotAFileError) as directory:
        LocalStorage(storage_root).local_path("mast")
    assert directory.value.detail == "Path is not a file"


def test_symlink_out_of_root_is_403(storage_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.fits").write_bytes(b"secret")
    os.symlink(outside, storage_root / "link")
    os.symlink(outside / "secret.fits", storage_root / "file-link.fits")
    storage = LocalStorage(storage_root)
    for key in ("link/secret.fits", "file-link.fits"):
        with pytest.raises(AccessDeniedError):
            storage.local_path(key)


def test_symlink_inside_root_is_followed(storage_root: Path) -> None:
    (storage_root / "real").mkdir()
    (storage_root / "real/a.fits").write_bytes(b"a")
    os.symlink(storage_root / "real", storage_root / "alias")
    assert LocalStorage(storage_root).read_bytes("alias/a.fits") == b"a"
