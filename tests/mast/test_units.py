"""Unit tests of the proxy's pieces: serialisation, names, state files, ranged S3 parts, S3 storage."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.mast.jobs.manager import safe_filename
from app.mast.jobs.progress import build_progress
from app.mast.jobs.state import FileState, FileStatus, JobState, JobStatus
from app.mast.jobs.store import StateStore
from app.mast.search import name_variants, serialize_rows
from main_mast import create_app
from tests.support.mast_emulator import MastEmulator
from tests.support.net import free_port
from tests.support.s3_server import S3Server


def test_name_variants() -> None:
    assert name_variants("  NGC_3132 ") == ["NGC_3132", "NGC 3132", "NGC-3132", "NGC3132"]
    assert name_variants("m16") == ["m16", "m 16"]


def test_serialize_rows_makes_plain_json() -> None:
    table = Table(masked=True)
    table.add_column(MaskedColumn([1.5, np.nan, np.inf], name="t_exptime"))
    table.add_column(
        MaskedColumn(np.array([3, -999, 2], dtype=np.int64), mask=[False, True, False], name="calib_level")
    )
    table.add_column(MaskedColumn(["mast:JWST/a b.jpg", "", "https://x"], mask=[False, True, False], name="jpegURL"))
    table.add_column(MaskedColumn([True, False, True], name="mtFlag"))
    rows = serialize_rows(table, base_url="http://m")
    assert rows[0] == {
        "t_exptime": 1.5,
        "calib_level": 3,
        "jpegURL": "http://m/api/v0.1/Download/file?uri=mast%3AJWST/a%20b.jpg",
        "mtFlag": True,
    }
    assert rows[1] == {"t_exptime": None, "calib_level": None, "jpegURL": None, "mtFlag": False}
    assert rows[2]["t_exptime"] is None
    assert rows[2]["jpegURL"] == "https://x"
    assert json.dumps(rows, allow_nan=False)
    assert type(rows[0]["calib_level"]) is int


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("jw01_i2d.fits", "jw01_i2d.fits"),
        ("../../x.fits", None),
        ("/etc/passwd", None),
        ("a\\b.fits", None),
        ("..", None),
        (".hidden.fits", None),
        ("a b.fits", None),
        ("x\x00.fits", None),
        (None, None),
    ],
)
def test_safe_filename(name: object, safe: str | None) -> None:
    assert safe_filename(name) == safe


def _state(root: Path, job_id: str = "abc123") -> JobState:
    files = [
        FileState(filename=n, local_path=str(root / "obs" / n), total_bytes=100, status=FileStatus.DOWNLOADING)
        for n in ("a.fits", "b.fits", "c.fits")
    ]
    return JobState(
        job_id=job_id, obs_id="obs", download_dir=str(root / "obs"), files=files, status=JobStatus.DOWNLOADING
    )


def test_state_store_roundtrip_refresh_and_locks(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    state = _state(tmp_path)
    store.save(state)
    assert not list(store.state_dir.glob("*.tmp"))
    assert store.load("abc123") == state.model_copy(update={"saved_at": store.load("abc123").saved_at})  # type: ignore[union-attr]
    assert store.load("../abc123") is None
    assert store.load_any("a.b") is None
    (tmp_path / "obs").mkdir()
    (tmp_path / "obs" / "a.fits.part").write_bytes(b"x" * 40)
    (tmp_path / "obs" / "b.fits").write_bytes(b"y" * 100)
    refreshed = store.refresh_from_disk(store.load("abc123"))  # type: ignore[arg-type]
    assert [(f.status, f.downloaded_bytes) for f in refreshed.files] == [
        ("paused", 40),
        ("complete", 100),
        ("pending", 0),
    ]
    assert refreshed.downloaded_bytes == 140
    fd = store.try_lock("abc123")
    assert fd is not None
    assert store.is_owned("abc123")
    assert store.try_lock("abc123") is None
    store.release(fd)
    assert not store.is_owned("abc123")
    # A process that died with the job marked downloading: reported paused and resumable.
    view = build_progress(state, live=False, owned=False)
    assert view.stage == "paused"
    assert view.is_resumable
    assert not view.is_complete
    store.finish(state)
    assert store.load("abc123") is None
    assert store.load_any("abc123") == (store.load_any("abc123")[0], True)  # type: ignore[index]


def test_cleanup_removes_only_old_orphans(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    old = time.time() - 8 * 24 * 3600
    (tmp_path / "o").mkdir()
    orphan, fresh, referenced = (tmp_path / "o" / n for n in ("old.fits.part", "new.fits.part", "a.fits.part"))
    for path in (orphan, fresh, referenced):
        path.write_bytes(b"1")
    os.utime(orphan, (old, old))
    os.utime(referenced, (old, old))
    state = _state(tmp_path, "live1")
    state.files[0].local_path = str(tmp_path / "o" / "a.fits")
    store.save(state)
    done = _state(tmp_path, "done1")
    store.finish(done)
    os.utime(store.finished_path("done1"), (old, old))
    assert store.cleanup() == {"parts": 1, "states": 1}
    assert not orphan.exists()
    assert fresh.exists()
    assert referenced.exists()
    assert store.load("live1") is not None


def test_storage_provider_s3_copies_finished_files(
    tmp_path: Path, s3_server: S3Server, public_bucket: str, emulator: MastEmulator
) -> None:
    s3_server.create_bucket("jwst-app")
    settings = Settings(
        MAST_BASE_URL=emulator.url,
        MAST_DOWNLOAD_DIR=tmp_path / "mast",
        STORAGE_PROVIDER="s3",
        S3_BUCKET_NAME="jwst-app",
        S3_ENDPOINT=s3_server.endpoint,
        S3_ACCESS_KEY="testing",
        S3_SECRET_KEY="testing",
        STORAGE_TEMP_CACHE_DIR=tmp_path / "cache",
        LOG_FORMAT="text",
    )
    obs, name = "jw02733-o001_t001_miri_f1130w", "jw02733-o001_t001_miri_f1130w_i2d.fits"
    with TestClient(create_app(settings)) as client:
        job_id = client.post(
            "/mast/download/start-chunked",
            json={"obs_id": obs, "product_type": "SCIENCE", "resume_job_id": None, "calib_level": None},
        ).json()["job_id"]
        deadline = time.monotonic() + 20
        while (progress := client.get(f"/mast/download/progress-chunked/{job_id}").json())["is_complete"] is False:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert progress["stage"] == "complete", progress
    stored = s3_server.client().get_object(Bucket="jwst-app", Key=f"mast/{obs}/{name}")["Body"].read()
    assert stored == emulator.file_bytes(name)


def test_resumable_keeps_the_most_advanced_job_per_obs(tmp_path: Path) -> None:
    settings = Settings(MAST_DOWNLOAD_DIR=tmp_path / "mast", STORAGE_BASE_PATH=tmp_path, LOG_FORMAT="text")
    store = StateStore(tmp_path / "mast")
    for job_id, done in (("aaa111", 10), ("bbb222", 60), ("ccc333", 0)):
        state = _state(tmp_path / "mast", job_id)
        state.pause()
        state.files[0].downloaded_bytes = done
        state.recount()
        store.save(state)
    cancelled = _state(tmp_path / "mast", "ddd444")
    cancelled.obs_id = "other"
    cancelled.cancel()
    store.save(cancelled)
    with TestClient(create_app(settings)) as client:
        body = client.get("/mast/download/resumable").json()
    assert body["count"] == 1
    (job,) = body["jobs"]
    assert job["job_id"] == "bbb222"
    assert job["downloaded_bytes"] == 60
    assert job["total_bytes"] == 300
    assert job["completed_files"] == 0
    assert job["total_files"] == 3
    assert job["progress_percent"] == 20.0
    assert store.load("aaa111") is None  # kept on purpose: duplicates dropped
    assert store.load("ccc333") is None
    assert store.load("ddd444") is not None


def test_mast_down_gives_502(tmp_path: Path) -> None:
    settings = Settings(
        MAST_BASE_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        MAST_DOWNLOAD_DIR=tmp_path / "mast",
        STORAGE_BASE_PATH=tmp_path,
        LOG_FORMAT="text",
    )
    with TestClient(create_app(settings)) as client:
        search = client.post("/mast/search/program", json={"program_id": "2733", "calib_level": None})
        target = client.post("/mast/search/target", json={"target_name": "M16", "radius": 0.2, "calib_level": None})
        products = client.post("/mast/products", json={"obs_id": "jw02733"})
        sync = client.post("/mast/download", json={"obs_id": "jw02733", "product_type": "SCIENCE", "product_id": None})
    assert (search.status_code, search.json()) == (502, {"detail": "MAST is unreachable"})
    assert (target.status_code, target.json()) == (502, {"detail": "MAST is unreachable"})
    assert products.status_code == 502
    assert sync.status_code == 200
    assert sync.json()["status"] == "failed"
    assert "unreachable" in sync.json()["error"]


def test_finished_states_are_bounded_in_count(tmp_path: Path) -> None:
    store = StateStore(tmp_path, max_finished=3)
    for index in range(6):
        store.finish(_state(tmp_path, f"job{index}"))
        stamp = time.time() - 100 + index  # finishing order, whatever the clock's resolution
        os.utime(store.finished_path(f"job{index}"), (stamp, stamp))
    store.finish(_state(tmp_path, "job6"))
    assert sorted(p.stem for p in store.finished_dir.glob("*.json")) == ["job4", "job5", "job6"]
    assert store.load_any("job0") is None


def test_lock_file_goes_with_the_run_and_a_stale_descriptor_never_owns(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    fd = store.try_lock("abc")
    assert fd is not None
    # another process opened the lock file just before the owner deleted it
    late = os.open(store.lock_path("abc"), os.O_RDWR)
    store.release_and_remove("abc", fd)
    assert not store.lock_path("abc").exists()
    assert not store.is_owned("abc")
    assert not store.lock_path("abc").exists()  # probing creates nothing
    fresh = store.try_lock("abc")  # the next owner locks a new file at the path
    assert fresh is not None

    fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the stale descriptor locks a deleted file...
    assert store.is_owned("abc")  # ...which does not hide the real owner
    assert store.try_lock("abc") is None
    os.close(late)
    store.release_and_remove("abc", fresh)
    assert list(store.state_dir.glob("*.lock")) == []
