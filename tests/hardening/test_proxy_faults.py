"""Upstream and disk faults under live download jobs of the MAST proxy (issue 10, item 4).

A single-worker proxy talks to its own MAST emulator and to its own bucket in the moto S3 server.
Each fault ends in a retried success or in a failed job with a clear error, while a watcher thread
parses every job state file on disk throughout (they must always be valid JSON), and a file that a
job finished keeps its bytes when a later job for the same observation fails.

Already covered in ``tests/mast`` and not repeated here: 5xx bursts, one dropped connection and a
stalled body that all end in a retried success (``test_retries_after_5xx_drop_and_stall``), a
permanent 5xx that fails and resumes (``test_permanent_failure_is_reported_and_resumable``), a
``Content-Length`` larger than the product (``test_wrong_content_length_fails_clearly``), a missing
cloud path for an S3 job (``test_s3_download_and_fallback_error``) and malformed JSON, 5xx and a
stall on the search endpoints (``test_search.py::test_upstream_errors``).

Here: the product list of a download job answering 5xx, malformed JSON or late; a connection that
drops on every attempt (the job gives up, keeps its ``.part`` and resumes to the right bytes);
a server that ignores ``Range`` on the retry; a ``Content-Length`` smaller than the product; a
download directory that stops accepting writes
mid-job; a directory path taken by a regular file (HTTP and S3 jobs); an S3 object whose size does
not match the product list and one missing from the bucket; hostile MAST file names (newlines,
ANSI escapes) that must reach neither a header nor a log line unescaped.

Disk faults as root: ``chmod`` does not stop root, so the "directory stops accepting writes" case
sets the immutable attribute (``chattr +i``, ext4 here), which refuses new entries and renames even
for root while already open files keep writing; it is skipped where ``chattr`` is unavailable.
The "path component is a file" case needs no privilege at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mast.conftest import poll, proxy_env
from tests.support.live_server import LiveServer
from tests.support.mast_emulator import Faults, MastEmulator, _obs_row
from tests.support.s3_server import S3Server

BUCKET = "stpubdata-faults"
OBS = "jw02739-o001_t001_nircam_clear-f090w"
OBS_FILES = [
    "jw02739-o001_t001_nircam_clear-f090w_i2d.fits",
    "jw02739001001_02101_00001_nrca1_cal.fits",
    "jw02739001001_02101_00002_nrca1_cal.fits",
]
MIRI = "jw02733-o001_t001_miri_f1130w"
MIRI_FILE = "jw02733-o001_t001_miri_f1130w_i2d.fits"
HOSTILE_OBS = "jw07000-o001_t001_nircam_logs"
HOSTILE_NAMES = ["evil\nERROR forged line\x1b[31m.fits", "ok\r\x1b]0;title\x07_i2d.fits", "a\x9bb_i2d.fits"]
LEAKS = ("Traceback", "Errno", "Exception")


def _uri(name: str) -> str:
    return f"mast:JWST/product/{name}"


@pytest.fixture(scope="module")
def fault_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastEmulator]:
    emu = MastEmulator(tmp_path_factory.mktemp("fault-emulator"))
    emu.add_observation(
        _obs_row(obs_id=HOSTILE_OBS, obsid="87607000", proposal_id="7000"),
        [*((name, "SCIENCE", 16, 3) for name in HOSTILE_NAMES), ("jw07000_good_i2d.fits", "SCIENCE", 32, 3)],
    )
    for name in HOSTILE_NAMES:  # control characters make no valid S3 key; the proxy refuses them anyway
        emu.cloud_paths[_uri(name)] = None
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server, fault_emulator: MastEmulator) -> str:
    s3_server.create_bucket(BUCKET)
    fault_emulator.upload_to_s3(s3_server.client(), BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-data")


@pytest.fixture(scope="module")
def proxy(fault_emulator: MastEmulator, s3_server: S3Server, bucket: str, root: Path) -> Iterator[LiveServer]:
    env = {**proxy_env(fault_emulator, s3_server, bucket, root), "MAST_DOWNLOAD_BACKOFF_SECONDS": "0.02"}
    with LiveServer("main_mast", workers=1, env=env) as server:
        yield server


@pytest.fixture
def client(proxy: LiveServer, fault_emulator: MastEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=30) as http:
        yield http
    fault_emulator.faults = Faults()


class StateWatcher:
    """Parse every job state file under ``<download dir>/.download_state`` until stopped."""

    def __init__(self, download_dir: Path) -> None:
        self.state_dir = download_dir / ".download_state"
        self.parsed = 0
        self.invalid: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in [*self.state_dir.glob("*.json"), *self.state_dir.glob("finished/*.json")]:
                try:
                    text = path.read_text()
                except FileNotFoundError:  # moved to finished/ or deleted meanwhile
                    continue
                try:
                    state = json.loads(text)
                    assert isinstance(state, dict)
                    assert isinstance(state["files"], list)
                    self.parsed += 1
                except (ValueError, KeyError, AssertionError):
                    self.invalid.append(f"{path.name}: {text[:200]!r}")
            time.sleep(0.01)

    def __enter__(self) -> StateWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert self.invalid == []
        assert self.parsed > 0


def _start(client: httpx.Client, obs_id: str, kind: str = "chunked") -> str:
    body: dict[str, Any] = {"obs_id": obs_id, "product_type": "SCIENCE", "calib_level": None}
    if kind == "chunked":
        body["resume_job_id"] = None
    reply = client.post(f"/mast/download/start-{kind}", json=body)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["job_id"])


def _finish(client: httpx.Client, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    return poll(client, job_id, lambda p: p["is_complete"], timeout=timeout, interval=0.1)


def _assert_clear_failure(done: dict[str, Any], root: Path, *expected: str) -> None:
    assert done["stage"] == "failed", done
    assert done["is_complete"] is True, done
    for text in (done["error"], done["message"]):
        assert isinstance(text, str)
        assert text
        assert str(root) not in text, text
        assert not any(leak in text for leak in LEAKS), text
    for part in expected:
        assert part in done["error"], done["error"]


def _reset(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


@pytest.mark.parametrize("fault", ["status_503", "malformed_json"])
def test_product_list_fault_fails_the_job(
    fault: str, client: httpx.Client, fault_emulator: MastEmulator, root: Path
) -> None:
    _reset(root / "mast" / MIRI)
    if fault == "status_503":
        fault_emulator.faults.search_status = 503
    else:
        fault_emulator.faults.search_malformed = True
    with StateWatcher(root / "mast"):
        job_id = _start(client, MIRI)
        done = _finish(client, job_id)
    _assert_clear_failure(done, root, "Could not get the product list:")
    assert not (root / "mast" / MIRI).exists() or not list((root / "mast" / MIRI).iterdir())


def test_stalled_product_list_still_succeeds(client: httpx.Client, fault_emulator: MastEmulator, root: Path) -> None:
    _reset(root / "mast" / MIRI)
    fault_emulator.faults.search_delay = 1.0  # the product list answers late: the job waits for it
    with StateWatcher(root / "mast"):
        done = _finish(client, _start(client, MIRI))
    assert done["stage"] == "complete", done
    assert (root / "mast" / MIRI / MIRI_FILE).read_bytes() == fault_emulator.file_bytes(MIRI_FILE)


def test_drop_on_every_attempt_keeps_the_finished_file(
    client: httpx.Client, fault_emulator: MastEmulator, root: Path
) -> None:
    obs_dir = root / "mast" / MIRI
    _reset(obs_dir)
    source = fault_emulator.file_bytes(MIRI_FILE)
    with StateWatcher(root / "mast") as watcher:
        assert _finish(client, _start(client, MIRI))["stage"] == "complete"
        final = obs_dir / MIRI_FILE
        assert final.read_bytes() == source
        before = final.stat()
        # A later job for the same observation: every attempt dies after 40 000 bytes.
        step = 40_000
        fault_emulator.faults.drop_every[_uri(MIRI_FILE)] = step
        job_id = _start(client, MIRI)
        done = _finish(client, job_id)
        _assert_clear_failure(done, root, MIRI_FILE, "connection error", "gave up after 3 retries")
        assert done["is_resumable"] is True
        # The finished file was neither replaced nor touched; the partial bytes live in the .part.
        assert final.read_bytes() == source
        assert final.stat().st_mtime_ns == before.st_mtime_ns
        part = obs_dir / f"{MIRI_FILE}.part"
        assert part.stat().st_size == 4 * step
        assert part.read_bytes() == source[: 4 * step]
        starts = [r.range_start for r in fault_emulator.downloads_of(MIRI_FILE)[-4:]]
        assert starts == [0, step, 2 * step, 3 * step]
        # The upstream heals and the old copy is gone: resuming fetches only the rest, exactly.
        fault_emulator.faults.drop_every.clear()
        final.unlink()
        assert client.post(f"/mast/download/resume/{job_id}", json={}).status_code == 200
        assert _finish(client, job_id)["stage"] == "complete"
    assert fault_emulator.downloads_of(MIRI_FILE)[-1].range_start == 4 * step
    assert final.read_bytes() == source
    assert not part.exists()
    assert watcher.parsed > 0


def test_resume_against_a_server_that_ignores_range(
    client: httpx.Client, fault_emulator: MastEmulator, root: Path
) -> None:
    obs_dir = root / "mast" / MIRI
    _reset(obs_dir)
    source = fault_emulator.file_bytes(MIRI_FILE)
    fault_emulator.faults.drop_after[_uri(MIRI_FILE)] = 100_000
    fault_emulator.faults.ignore_range = True
    with StateWatcher(root / "mast"):
        done = _finish(client, _start(client, MIRI))
    assert done["stage"] == "complete", done
    # The retry asked for the rest, got the whole file (200) and started the .part over.
    assert [r.status for r in fault_emulator.downloads_of(MIRI_FILE)[-2:]] == [200, 200]
    assert (obs_dir / MIRI_FILE).read_bytes() == source


def test_short_content_length_fails_without_a_file(
    client: httpx.Client, fault_emulator: MastEmulator, root: Path
) -> None:
    _reset(root / "mast" / MIRI)
    fault_emulator.faults.lie_length[_uri(MIRI_FILE)] = len(fault_emulator.file_bytes(MIRI_FILE)) - 2880
    with StateWatcher(root / "mast"):
        done = _finish(client, _start(client, MIRI))
    _assert_clear_failure(done, root, MIRI_FILE, "size mismatch")
    assert not (root / "mast" / MIRI / MIRI_FILE).exists()


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_download_dir_stops_accepting_writes(client: httpx.Client, fault_emulator: MastEmulator, root: Path) -> None:
    obs_dir = root / "mast" / OBS
    _reset(obs_dir)
    fault_emulator.faults.piece_delay = 0.02
    with StateWatcher(root / "mast"):
        job_id = _start(client, OBS)
        poll(client, job_id, lambda p: p["downloaded_bytes"] > 300_000, interval=0.05)
        probe = subprocess.run(["chattr", "+i", str(obs_dir)], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"chattr +i refused here: {probe.stderr.decode()[:100]}")
        try:
            fault_emulator.faults.piece_delay = 0.0
            done = _finish(client, job_id)
            _assert_clear_failure(done, root, "cannot write the file (Operation not permitted)")
            assert done["is_resumable"] is True
            assert not any((obs_dir / name).exists() for name in OBS_FILES)
        finally:
            subprocess.run(["chattr", "-i", str(obs_dir)], check=True)
        assert client.post(f"/mast/download/resume/{job_id}", json={}).status_code == 200
        assert _finish(client, job_id)["stage"] == "complete"
    for name in OBS_FILES:
        assert (obs_dir / name).read_bytes() == fault_emulator.file_bytes(name)


@pytest.mark.parametrize("kind", ["chunked", "s3"])
def test_directory_taken_by_a_file(kind: str, client: httpx.Client, root: Path) -> None:
    obs_dir = root / "mast" / MIRI
    _reset(obs_dir)
    obs_dir.write_bytes(b"not a directory")
    try:
        with StateWatcher(root / "mast"):
            done = _finish(client, _start(client, MIRI, kind))
        _assert_clear_failure(done, root, MIRI_FILE, "cannot write the file")
        assert obs_dir.read_bytes() == b"not a directory"
    finally:
        obs_dir.unlink()


def test_s3_object_size_mismatch_and_missing_object(
    client: httpx.Client, fault_emulator: MastEmulator, s3_server: S3Server, bucket: str, root: Path
) -> None:
    s3 = s3_server.client()
    obs_dir = root / "mast" / OBS
    _reset(obs_dir)
    short = OBS_FILES[2]
    key = str(fault_emulator.cloud_paths[_uri(short)]).lstrip("/")
    s3.put_object(Bucket=bucket, Key=key, Body=fault_emulator.file_bytes(short)[:-2880], ACL="public-read")
    try:
        with StateWatcher(root / "mast"):
            done = _finish(client, _start(client, OBS, "s3"))
        _assert_clear_failure(done, root, short, "size mismatch")
        assert not (obs_dir / short).exists()
        for name in OBS_FILES[:2]:  # the healthy objects still arrive intact
            assert (obs_dir / name).read_bytes() == fault_emulator.file_bytes(name)
        s3.delete_object(Bucket=bucket, Key=key)
        _reset(obs_dir)
        with StateWatcher(root / "mast"):
            done = _finish(client, _start(client, OBS, "s3"))
        _assert_clear_failure(done, root, "S3_UNAVAILABLE:", short)
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=fault_emulator.file_bytes(short), ACL="public-read")


def test_hostile_mast_filenames_reach_no_header_or_raw_log_line(
    client: httpx.Client, proxy: LiveServer, root: Path
) -> None:
    listing = client.post("/mast/products", json={"obs_id": HOSTILE_OBS})
    assert listing.status_code == 200
    assert "content-disposition" not in listing.headers
    job_id = _start(client, HOSTILE_OBS)
    done = _finish(client, job_id)
    assert done["stage"] == "complete", done
    assert done["files"] == [str(root / "mast" / HOSTILE_OBS / "jw07000_good_i2d.fits")]
    assert sorted(p.name for p in (root / "mast" / HOSTILE_OBS).iterdir()) == ["jw07000_good_i2d.fits"]
    reply = client.get(f"/mast/download/progress-chunked/{job_id}")
    assert "content-disposition" not in reply.headers
    logs = proxy.logs()
    for raw in ("\x1b", "\r", "\x07", "\x9b"):
        assert raw not in logs, repr(raw)
    assert not any(line.startswith("ERROR forged") for line in logs.splitlines())
    refused = [line for line in logs.splitlines() if "product_refused" in line and HOSTILE_OBS in line]
    assert len(refused) == len(HOSTILE_NAMES)
    assert any("evil\\nERROR forged line\\x1b[31m.fits" in line for line in refused), refused


@pytest.mark.parametrize("fault", ["status_500", "malformed_json"])
def test_search_faults_answer_without_internals(
    fault: str, client: httpx.Client, fault_emulator: MastEmulator, root: Path
) -> None:
    if fault == "status_500":
        fault_emulator.faults.search_status = 500
    else:
        fault_emulator.faults.search_malformed = True
    requests = [
        ("/mast/search/target", {"target_name": "M16", "radius": 0.2, "calib_level": None}),
        ("/mast/search/observation", {"obs_id": OBS, "calib_level": None}),
        ("/mast/products", {"obs_id": OBS}),
    ]
    for path, body in requests:
        reply = client.post(path, json=body)
        assert reply.status_code == 502, (path, reply.status_code, reply.text[:200])
        detail = reply.json()["detail"]
        assert isinstance(detail, str)
        assert detail.startswith("MAST")
        assert str(root) not in reply.text, reply.text
        assert not any(leak in reply.text for leak in LEAKS), reply.text
