"""Download jobs through a live proxy with two workers: chunked, pause/resume, faults, lifecycle."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.mast.conftest import OBS, OBS_FILES, poll, proxy_env
from tests.support.live_server import LiveServer
from tests.support.mast_emulator import MastEmulator
from tests.support.s3_server import S3Server

CHUNKED = {"obs_id": OBS, "product_type": "SCIENCE", "resume_job_id": None, "calib_level": None}


def _start(client: httpx.Client, body: dict | None = None) -> str:
    response = client.post("/mast/download/start-chunked", json=body or CHUNKED)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["message"] == "Chunked download started"
    assert reply["is_resume"] is False
    assert len(reply["job_id"]) == 12
    assert int(reply["job_id"], 16) >= 0
    return reply["job_id"]


def _assert_identical(obs_dir: Path, emulator: MastEmulator, names: list[str]) -> None:
    for name in names:
        assert (obs_dir / name).read_bytes() == emulator.file_bytes(name), name
        assert not (obs_dir / f"{name}.part").exists()


def _clear(obs_dir: Path) -> None:
    for path in obs_dir.glob("*"):
        if path.is_file():
            path.unlink()


def test_chunked_download_multi_file(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    obs_dir = data_root / "mast" / OBS
    _clear(obs_dir)
    emulator.faults.piece_delay = 0.01
    job_id = _start(client)
    stages: list[str] = []
    done = poll(client, job_id, lambda p: stages.append(p["stage"]) or p["is_complete"])
    assert done["stage"] == "complete"
    assert done["error"] is None
    assert done["progress"] == 100
    assert "downloading" in stages or "fetching_products" in stages
    assert done["download_dir"] == str(obs_dir)
    assert sorted(done["files"]) == sorted(str(obs_dir / n) for n in OBS_FILES)
    assert done["total_files"] == done["downloaded_files"] == 3
    assert done["total_bytes"] == done["downloaded_bytes"] == sum(len(emulator.file_bytes(n)) for n in OBS_FILES)
    assert done["is_resumable"] is False
    _assert_identical(obs_dir, emulator, OBS_FILES)
    assert not (obs_dir / "jw02739-o001_t001_nircam_clear-f090w_x1d.fits").exists()  # spectral dropped
    assert not (data_root / "mast" / ".download_state" / f"{job_id}.json").exists()
    # A completed job has no resumable state.
    assert client.post(f"/mast/download/resume/{job_id}", json={}).status_code == 404


def test_pause_then_resume_on_any_worker(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    obs_dir = data_root / "mast" / OBS
    _clear(obs_dir)
    emulator.requests.clear()
    emulator.faults.piece_delay = 0.05
    job_id = _start(client)
    poll(client, job_id, lambda p: p["downloaded_bytes"] > 300_000, interval=0.1)
    paused = client.post(f"/mast/download/pause/{job_id}", json={})
    assert paused.status_code == 200
    assert paused.json() == {
        "job_id": job_id,
        "status": "paused",
        "message": "Download paused",
    }
    state_file = data_root / "mast" / ".download_state" / f"{job_id}.json"
    assert state_file.exists()
    # Every worker now reports the same paused state.
    views = [client.get(f"/mast/download/progress-chunked/{job_id}").json() for _ in range(4)]
    assert {v["stage"] for v in views} == {"paused"}
    assert all(v["is_resumable"] for v in views)
    assert all(not v["is_complete"] for v in views)
    at_pause = {f["filename"]: f["downloaded_bytes"] for f in views[0]["file_progress"]}
    for name, size in at_pause.items():
        part = obs_dir / f"{name}.part"
        final = obs_dir / name
        assert (part.stat().st_size if part.exists() else final.stat().st_size if final.exists() else 0) == size
    listed = client.get("/mast/download/resumable").json()
    entry = next(j for j in listed["jobs"] if j["job_id"] == job_id)
    assert entry["status"] == "paused"
    assert entry["downloaded_bytes"] == sum(at_pause.values())
    assert listed["count"] == len(listed["jobs"])
    before = len(emulator.requests)
    resumed = client.post(f"/mast/download/resume/{job_id}", json={})
    assert resumed.status_code == 200
    assert resumed.json() == {
        "job_id": job_id,
        "status": "resuming",
        "message": "Download resumed",
    }
    again = client.post(f"/mast/download/resume/{job_id}", json={})
    assert again.status_code == 409
    assert again.json()["detail"] == f"Job {job_id} is already being resumed"
    done = poll(client, job_id, lambda p: p["is_complete"])
    assert done["stage"] == "complete"
    assert done["progress"] == 100
    _assert_identical(obs_dir, emulator, OBS_FILES)
    # Nothing already on disk was fetched again: every resumed request starts at the paused size.
    for record in emulator.requests[before:]:
        name = record.uri.rsplit("/", 1)[-1]
        if at_pause.get(name, 0) < len(emulator.file_bytes(name)):
            assert record.range_start == at_pause[name], (name, record.range_start, at_pause[name])
        else:
            pytest.fail(f"{name} was complete but fetched again")
    assert client.delete(f"/mast/download/resumable/{job_id}").status_code == 404


def test_kill_9_then_restart_and_resume(
    emulator: MastEmulator, s3_server: S3Server, public_bucket: str, tmp_path: Path
) -> None:
    env = proxy_env(emulator, s3_server, public_bucket, tmp_path)
    obs_dir = tmp_path / "mast" / OBS
    emulator.faults.piece_delay = 0.05
    server = LiveServer("main_mast", workers=1, env=env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            job_id = _start(http)
            # Past one 256 KB write block per file, so some bytes are on disk when the process dies.
            poll(http, job_id, lambda p: p["downloaded_bytes"] > 1_000_000, interval=0.1)
        server.kill()
    finally:
        server.stop()
    parts = {p.name: p.stat().st_size for p in obs_dir.glob("*.part")}
    assert parts
    assert any(size > 0 for size in parts.values())
    emulator.requests.clear()
    emulator.faults.piece_delay = 0.0
    with LiveServer("main_mast", workers=1, env=env) as again, httpx.Client(base_url=again.url, timeout=30) as http:
        orphan = http.get(f"/mast/download/progress-chunked/{job_id}").json()
        assert orphan["stage"] == "paused"
        assert orphan["is_resumable"] is True
        assert orphan["is_complete"] is False
        assert any(j["job_id"] == job_id for j in http.get("/mast/download/resumable").json()["jobs"])
        assert http.post(f"/mast/download/resume/{job_id}", json={}).status_code == 200
        done = poll(http, job_id, lambda p: p["is_complete"])
        assert done["stage"] == "complete", done
    _assert_identical(obs_dir, emulator, OBS_FILES)
    for name, size in parts.items():
        requests = [r for r in emulator.requests if r.uri.endswith(name.removesuffix(".part"))]
        assert requests
        assert requests[0].range_start == size


def test_retries_after_5xx_drop_and_stall(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    obs_dir = data_root / "mast" / OBS
    _clear(obs_dir)
    emulator.requests.clear()
    i2d = OBS_FILES[0]
    emulator.faults.download_status_burst = 2
    emulator.faults.drop_after[f"mast:JWST/product/{OBS_FILES[1]}"] = 300_000
    emulator.faults.stall[f"mast:JWST/product/{OBS_FILES[2]}"] = (200_000, 3.0)
    job_id = _start(client)
    done = poll(client, job_id, lambda p: p["is_complete"], timeout=40)
    assert done["stage"] == "complete", done
    _assert_identical(obs_dir, emulator, OBS_FILES)
    assert [r.status for r in emulator.requests[:2]] == [503, 503]
    dropped = [r for r in emulator.downloads_of(OBS_FILES[1]) if r.status == 206]
    assert dropped
    assert dropped[0].range_start == 300_000
    stalled = [r for r in emulator.downloads_of(OBS_FILES[2]) if r.status == 206]
    assert stalled
    assert stalled[0].range_start >= 200_000
    assert emulator.downloads_of(i2d)


def test_permanent_failure_is_reported_and_resumable(
    client: httpx.Client, emulator: MastEmulator, data_root: Path
) -> None:
    _clear(data_root / "mast" / OBS)
    emulator.faults.download_status_burst = 1000
    job_id = _start(client)
    done = poll(client, job_id, lambda p: p["is_complete"], timeout=30)
    assert done["stage"] == "failed"
    assert done["is_complete"] is True
    assert "HTTP 503" in done["error"]
    assert "gave up after 3 retries" in done["error"]
    assert done["is_resumable"] is True
    emulator.faults.download_status_burst = 0
    assert client.post(f"/mast/download/resume/{job_id}", json={}).status_code == 200
    assert poll(client, job_id, lambda p: p["is_complete"])["stage"] == "complete"


def test_no_products_and_hostile_names(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    job_id = _start(client, {**CHUNKED, "obs_id": "jw07777-o001_t001_nircam_nofits"})
    done = poll(client, job_id, lambda p: p["is_complete"])
    assert done["stage"] == "failed"
    assert done["error"].startswith("NO_PRODUCTS:")
    hostile = "jw09999-o001_t001_nircam_hostile"
    job_id = _start(client, {**CHUNKED, "obs_id": hostile})
    done = poll(client, job_id, lambda p: p["is_complete"])
    assert done["stage"] == "complete", done
    assert done["files"] == [str(data_root / "mast" / hostile / "jw09999_good_i2d.fits")]
    written = sorted(
        p.relative_to(data_root)
        for p in data_root.parent.rglob("*.fits")
        if hostile in str(p) or "escape" in p.name or "absolute" in p.name
    )
    assert written == [Path("mast") / hostile / "jw09999_good_i2d.fits"]
    assert not (data_root.parent / "escape.fits").exists()
    assert not Path("/tmp/absolute.fits").exists()
    for bad in ("..", ".", "../etc", "a/b", "x y"):
        assert client.post("/mast/download/start-chunked", json={**CHUNKED, "obs_id": bad}).status_code == 422
        assert (
            client.post(
                "/mast/download/start-s3", json={"obs_id": bad, "product_type": "SCIENCE", "calib_level": None}
            ).status_code
            == 422
        )


def test_lifecycle_error_codes(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    for job_id in ("0123456789ab", "bad.id", "x%2Fy"):
        progress = client.get(f"/mast/download/progress-chunked/{job_id}")
        assert progress.status_code == 404
        assert client.post(f"/mast/download/pause/{job_id}", json={}).status_code == 404
        assert client.post(f"/mast/download/resume/{job_id}", json={}).status_code == 404
        assert client.post(f"/mast/download/cancel/{job_id}").status_code == 404
        assert client.delete(f"/mast/download/resumable/{job_id}?delete_files=false").status_code == 404
    assert client.get("/mast/download/progress-chunked/0123456789ab").json() == {"detail": "Job 0123456789ab not found"}
    assert (
        client.post("/mast/download/pause/0123456789ab", json={}).json()["detail"]
        == "No active download for job 0123456789ab"
    )
    assert (
        client.post("/mast/download/resume/0123456789ab", json={}).json()["detail"]
        == "No resumable state found for job 0123456789ab"
    )
    # cancel a running job -> failed, not resumable; resuming it -> 400
    _clear(data_root / "mast" / OBS)
    emulator.faults.piece_delay = 0.05
    job_id = _start(client)
    poll(client, job_id, lambda p: p["downloaded_bytes"] > 0, interval=0.1)
    cancelled = client.post(f"/mast/download/cancel/{job_id}")
    assert cancelled.json() == {"job_id": job_id, "status": "cancelled", "message": "Download cancelled"}
    view = client.get(f"/mast/download/progress-chunked/{job_id}").json()
    assert view["stage"] == "failed"
    assert view["error"] == "Download cancelled by user"
    assert view["is_complete"] is True
    assert view["is_resumable"] is False
    resume = client.post(f"/mast/download/resume/{job_id}", json={})
    assert resume.status_code == 400
    assert resume.json()["detail"] == f"Job {job_id} is not resumable (status: cancelled)"
    dismissed = client.delete(f"/mast/download/resumable/{job_id}?delete_files=true")
    assert dismissed.status_code == 200
    assert dismissed.json()["dismissed"] is True
    assert not list((data_root / "mast" / OBS).glob("*.part"))
    assert client.get(f"/mast/download/progress-chunked/{job_id}").status_code == 404


def test_start_chunked_with_resume_job_id(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    _clear(data_root / "mast" / OBS)
    emulator.faults.piece_delay = 0.05
    job_id = _start(client)
    poll(client, job_id, lambda p: p["downloaded_bytes"] > 0, interval=0.1)
    assert client.post(f"/mast/download/pause/{job_id}", json={}).status_code == 200
    emulator.faults.piece_delay = 0.0
    reply = client.post("/mast/download/start-chunked", json={**CHUNKED, "resume_job_id": job_id}).json()
    assert reply == {
        "job_id": job_id,
        "obs_id": OBS,
        "message": "Download resumed",
        "is_resume": True,
    }
    assert poll(client, job_id, lambda p: p["is_complete"])["stage"] == "complete"


def test_s3_download_and_fallback_error(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    obs = "jw02733-o001_t001_miri_f1130w"
    reply = client.post("/mast/download/start-s3", json={"obs_id": obs, "product_type": "SCIENCE", "calib_level": None})
    assert reply.status_code == 200
    body = reply.json()
    assert body["message"] == "S3 download started"
    assert body["download_source"] == "s3"
    done = poll(client, body["job_id"], lambda p: p["is_complete"])
    assert done["stage"] == "complete", done
    _assert_identical(data_root / "mast" / obs, emulator, ["jw02733-o001_t001_miri_f1130w_i2d.fits"])
    assert not emulator.downloads_of("jw02733-o001_t001_miri_f1130w_i2d.fits")  # bytes came from the bucket
    missing = client.post(
        "/mast/download/start-s3",
        json={"obs_id": "jw08888-o001_t001_nircam_nocloud", "product_type": "SCIENCE", "calib_level": None},
    ).json()
    failed = poll(client, missing["job_id"], lambda p: p["is_complete"])
    assert failed["stage"] == "failed"
    assert failed["error"].startswith("S3_UNAVAILABLE:")


def test_sync_and_legacy_downloads(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    body = {"obs_id": OBS, "product_type": "SCIENCE", "product_id": "_i2d"}
    result = client.post("/mast/download", json=body)
    assert result.status_code == 200
    data = result.json()
    nested = data_root / "mast" / OBS / "mastDownload" / "JWST" / OBS
    assert data["status"] == "completed"
    assert data["file_count"] == 1
    assert data["error"] is None
    assert data["files"] == [str(nested / OBS_FILES[0])]
    assert data["download_dir"] == str(data_root / "mast" / OBS)
    assert Path(data["files"][0]).read_bytes() == emulator.file_bytes(OBS_FILES[0])
    emulator.faults.download_status_burst = 1000
    failed = client.post("/mast/download", json={**body, "product_id": "00002"})
    assert failed.status_code == 200
    assert failed.json()["status"] == "failed"
    assert "503" in failed.json()["error"]
    emulator.faults.download_status_burst = 0
    empty = client.post(
        "/mast/download",
        json={"obs_id": "jw07777-o001_t001_nircam_nofits", "product_type": "SCIENCE", "product_id": None},
    )
    assert empty.json()["status"] == "completed"
    assert empty.json()["files"] == []
    assert (
        client.post(
            "/mast/download", json={"obs_id": "../x", "product_type": "SCIENCE", "product_id": None}
        ).status_code
        == 422
    )
    started = client.post("/mast/download/start", json={"obs_id": OBS, "product_type": "SCIENCE", "product_id": None})
    assert started.json()["message"] == "Download started"
    done = poll(client, started.json()["job_id"], lambda p: p["is_complete"], path="progress")
    assert done["stage"] == "complete"
    assert len(done["files"]) == 4
    assert all(f.startswith(str(nested)) for f in done["files"])
    assert client.get("/mast/download/progress/ffffffffffff").status_code == 404


def test_wrong_content_length_fails_clearly(client: httpx.Client, emulator: MastEmulator, data_root: Path) -> None:
    obs = "jw02733-o001_t001_miri_f1130w"
    name = "jw02733-o001_t001_miri_f1130w_i2d.fits"
    for path in (data_root / "mast" / obs).glob("*"):
        path.unlink()
    emulator.faults.lie_length[f"mast:JWST/product/{name}"] = len(emulator.file_bytes(name)) + 2880
    job_id = _start(client, {**CHUNKED, "obs_id": obs})
    done = poll(client, job_id, lambda p: p["is_complete"])
    assert done["stage"] == "failed"
    assert "size mismatch" in done["error"]
    assert name in done["error"]
    assert not (data_root / "mast" / obs / name).exists()
