"""Both services refuse to start on storage they cannot write, naming the path and the uid."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.settings import Settings
from app.storage.factory import create_storage
from app.storage.local_storage import LocalStorage
from app.storage.startup import StorageNotWritableError, check_startup_storage
from tests.support.live_server import LOG_CONFIG, REPO_ROOT
from tests.support.net import free_port
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


def _blocked(tmp_path: Path) -> Path:
    """A path that cannot be created even by root: its parent is a regular file."""
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "data"


def test_missing_directories_are_created(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    check_startup_storage(storage, directories=[tmp_path / "data" / "semantic", tmp_path / "elsewhere" / "mast"])
    assert (tmp_path / "data" / "semantic").is_dir()
    assert (tmp_path / "elsewhere" / "mast").is_dir()
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "semantic"]  # no probe left behind


def test_unwritable_root_names_path_and_uid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _blocked(tmp_path)
    with caplog.at_level(logging.ERROR, logger="app.storage.startup"), pytest.raises(StorageNotWritableError) as info:
        check_startup_storage(LocalStorage(root))
    message = str(info.value)
    assert str(root) in message
    assert f"uid {os.getuid()}" in message
    assert "chown" in message
    record = next(r for r in caplog.records if r.getMessage() == "storage_not_writable")
    assert (record.path, record.uid) == (str(root), os.getuid())  # type: ignore[attr-defined]


def test_unwritable_extra_directory(tmp_path: Path) -> None:
    blocked = _blocked(tmp_path)
    with pytest.raises(StorageNotWritableError, match="file/data"):
        check_startup_storage(LocalStorage(tmp_path / "ok"), directories=[blocked])


def _s3_settings(s3_server: S3Server, tmp_path: Path, bucket: str, create: bool) -> Settings:
    return Settings(
        STORAGE_PROVIDER="s3",
        S3_BUCKET_NAME=bucket,
        S3_ENDPOINT=s3_server.endpoint,
        S3_ACCESS_KEY=ACCESS_KEY,
        S3_SECRET_KEY=SECRET_KEY,
        S3_CREATE_BUCKET=create,
        STORAGE_TEMP_CACHE_DIR=tmp_path / "cache",
    )


def test_missing_bucket_refused_or_created(s3_server: S3Server, tmp_path: Path) -> None:
    refused = _s3_settings(s3_server, tmp_path, "startup-missing", create=False)
    with pytest.raises(StorageNotWritableError, match=r"s3://startup-missing.*S3_CREATE_BUCKET"):
        check_startup_storage(create_storage(refused), create_bucket=refused.s3_create_bucket)
    created = _s3_settings(s3_server, tmp_path, "startup-created", create=True)
    storage = create_storage(created)
    check_startup_storage(storage, create_bucket=created.s3_create_bucket)
    check_startup_storage(storage, create_bucket=True)  # an existing bucket is kept as it is
    names = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert "startup-created" in names
    assert "startup-missing" not in names
    assert storage.list_keys() == []


@pytest.mark.parametrize("module", ["main", "main_mast"])
def test_service_exits_non_zero_with_a_clear_line(tmp_path: Path, module: str) -> None:
    root = _blocked(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "LOG_FORMAT": "json",
        "STORAGE_BASE_PATH": str(root),
        "MAST_DOWNLOAD_DIR": str(tmp_path / "mast"),
        "SEMANTIC_DATA_DIR": str(tmp_path / "semantic"),
        "ENGINE_EXECUTOR": "thread",
    }
    cmd = [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(free_port())]
    done = subprocess.run(
        [*cmd, "--log-config", str(LOG_CONFIG)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if "storage_not_writable" in line]
    assert lines, done.stderr[-2000:]
    assert str(root) in lines[0]
    assert f'"uid": {os.getuid()}' in lines[0]


def test_proxy_image_preflight_exits_1(tmp_path: Path) -> None:
    """The proxy image checks storage before uvicorn (whose 2-worker supervisor would exit 0)."""
    env = {**os.environ, "STORAGE_BASE_PATH": str(tmp_path / "ok"), "LOG_FORMAT": "json"}
    cmd = [sys.executable, "-m", "app.storage.startup"]
    ok = subprocess.run([*cmd, str(tmp_path / "mast")], cwd=REPO_ROOT, env=env, capture_output=True, timeout=60)
    assert ok.returncode == 0
    bad = subprocess.run(
        [*cmd, str(_blocked(tmp_path))], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "storage_not_writable" in bad.stderr
    assert 'sh", "-c", "python -m app.storage.startup' in (REPO_ROOT / "Dockerfile.mast").read_text()
