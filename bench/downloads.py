"""Download throughput of the MAST proxy against named baselines, on 127.0.0.1.

1. Chunked HTTP downloader (resumable, throttled state writes) vs a plain httpx stream to disk,
   both fetching one 200 MB file from the MAST emulator running in its own process.
2. S3 downloader vs one ``get_object`` stream, both reading the same 200 MB object from a moto
   S3 server in its own process: first straight over 127.0.0.1, then through a relay that caps
   each connection at 85 MB/s, the per-connection figure AWS gives for S3 (its performance
   guidelines: one connection per 85-90 MB/s of wanted throughput). On the bare loopback nothing
   limits one stream but the CPU, and moto copies the whole object for every ranged GET, so there
   the downloader should keep one stream (ratio ~1); behind the capped link it should add
   connections.
3. RSS of a live proxy process, idle and while it downloads the 200 MB file.

Goals: chunked >= 90 % of the plain stream; S3 parallel >= 1.5x the single stream; RSS < 200 MB.
Run: ``.venv/bin/python bench/downloads.py`` (``BENCH_MB`` overrides the size).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aioboto3
import boto3
import httpx
import psutil
from aiobotocore.config import AioConfig
from botocore import UNSIGNED
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.mast.jobs.progress import JobTracker  # noqa: E402
from app.mast.jobs.state import FileState, JobState  # noqa: E402
from app.mast.jobs.store import StateStore  # noqa: E402
from app.mast.jobs.transfer.http import DownloadOptions, download_files  # noqa: E402
from app.mast.jobs.transfer.s3 import S3Options, download_objects  # noqa: E402
from app.mast.search import download_url  # noqa: E402
from tests.support.live_server import LiveServer  # noqa: E402
from tests.support.net import free_port, wait_for_http  # noqa: E402

SIZE_MB = int(os.environ.get("BENCH_MB", "200"))
SIZE = SIZE_MB * 1024 * 1024
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
OBS = "jw01234-o001_t001_nircam_bench"
NAME = "jw01234_bench_i2d.fits"
URI = f"mast:JWST/product/{NAME}"
BUCKET = "stpubdata-bench"
KEY = f"jwst/public/1234/{OBS}/{NAME}"

EMULATOR_SCRIPT = """
import sys, uvicorn
sys.path.insert(0, {repo!r})
from tests.support.mast_emulator import MastEmulator, _obs_row
emu = MastEmulator()
emu.faults.piece_bytes = 1024 * 1024
data = open({blob!r}, "rb").read()
row = _obs_row(obs_id={obs!r}, obsid="99990001", proposal_id="1234")
emu.observations.append(row)
emu.files[{uri!r}] = data
emu.products["99990001"] = [dict(obsID="99990001", obs_collection="JWST", obs_id={obs!r}, dataURI={uri!r},
    productType="SCIENCE", productFilename={name!r}, size=len(data), calib_level=3)]
uvicorn.run(emu, host="127.0.0.1", port={port}, log_level="warning", lifespan="off")
"""


#: Per-connection rate of the link in front of moto (AWS: 85-90 MB/s per connection to S3).
LINK_RATE = 85e6


def _wait_head(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.head(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _mbps(seconds: float) -> float:
    return SIZE / seconds / 1e6


def _tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


async def plain_stream(url: str, dest: Path) -> float:
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client, client.stream("GET", url) as response:
        with open(dest, "wb") as handle:  # noqa: ASYNC230 (the baseline: a plain script writes inline)
            async for data in response.aiter_raw():
                handle.write(data)
    return time.perf_counter() - start


async def chunked(url: str, work: Path) -> float:
    store = StateStore(work)
    file = FileState(filename=NAME, url=url, local_path=str(work / OBS / NAME), total_bytes=SIZE)
    state = JobState(job_id="bench", obs_id=OBS, download_dir=str(work / OBS), files=[file])
    state.recount()
    tracker = JobTracker(state, store)
    start = time.perf_counter()
    tracker.start()
    async with httpx.AsyncClient(timeout=60) as client:
        errors = await download_files(client, [file], tracker, DownloadOptions())
    await tracker.stop()
    assert not errors, errors
    assert file.is_complete
    return time.perf_counter() - start


async def s3_single(endpoint: str, dest: Path) -> float:
    config = AioConfig(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    start = time.perf_counter()
    async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config) as s3:
        response = await s3.get_object(Bucket=BUCKET, Key=KEY)
        with open(dest, "wb") as handle:  # noqa: ASYNC230 (the baseline: a plain script writes inline)
            async for data in response["Body"].iter_chunks(1024 * 1024):
                handle.write(data)
    return time.perf_counter() - start


async def s3_parallel(endpoint: str, work: Path) -> float:
    store = StateStore(work)
    file = FileState(filename=NAME, local_path=str(work / "s3" / NAME), total_bytes=SIZE, s3_key=KEY)
    state = JobState(job_id="bench-s3", obs_id=OBS, download_dir=str(work / "s3"), files=[file], kind="s3")
    state.recount()
    tracker = JobTracker(state, store)
    opts = S3Options(bucket=BUCKET, endpoint_url=endpoint)
    start = time.perf_counter()
    tracker.start()
    errors = await download_objects(aioboto3.Session(), opts, [file], tracker)
    await tracker.stop()
    assert not errors, errors
    assert file.is_complete
    return time.perf_counter() - start


def _s3_pair(label: str, endpoint: str, work: Path) -> None:
    """Interleaved runs of one get_object stream and of our downloader; best of each."""
    single_runs, ours_runs = [], []
    for _ in range(RUNS):
        single_runs.append(best_of(1, s3_single, endpoint, work / "single.bin"))
        shutil.rmtree(work / "p", ignore_errors=True)
        ours_runs.append(best_of(1, s3_parallel, endpoint, work / "p"))
    assert (work / "p" / "s3" / NAME).read_bytes() == (work / "blob.bin").read_bytes()
    single, ours = min(single_runs), min(ours_runs)
    print(f"S3 {label}: one get_object {_mbps(single):7.1f} MB/s")
    print(f"S3 {label}: our downloader {_mbps(ours):7.1f} MB/s  ratio {single / ours:5.2f}x (goal >= 1.5x)")


def best_of(runs: int, fn, *args) -> float:  # type: ignore[no-untyped-def]
    return min(asyncio.run(fn(*args)) for _ in range(runs))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dl-") as tmp:
        work = Path(tmp)
        blob = work / "blob.bin"
        blob.write_bytes(os.urandom(SIZE))
        port = free_port()
        script = EMULATOR_SCRIPT.format(repo=str(REPO), blob=str(blob), obs=OBS, uri=URI, name=NAME, port=port)
        emulator = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
        s3_port = free_port()
        moto = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(s3_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        endpoint = f"http://127.0.0.1:{s3_port}"
        try:
            wait_for_http(f"{base}/health", timeout=60)
            wait_for_http(f"{endpoint}/", timeout=60)
            url = download_url(base, URI)
            print(f"file: {SIZE_MB} MB, 127.0.0.1, best of {RUNS} interleaved runs")

            # Interleaved runs, best of each, so that background load hits both sides alike.
            plain_runs, our_runs = [], []
            for i in range(RUNS):
                plain_runs.append(best_of(1, plain_stream, url, work / "plain.bin"))
                our_runs.append(best_of(1, chunked, url, work / f"c{i}"))
            plain, ours = min(plain_runs), min(our_runs)
            assert (work / "c0" / OBS / NAME).read_bytes() == blob.read_bytes()
            print(f"plain httpx stream : {_mbps(plain):8.1f} MB/s")
            print(f"chunked downloader : {_mbps(ours):8.1f} MB/s  ratio {plain / ours:5.2f} (goal >= 0.90)")

            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}),
            )
            s3.create_bucket(Bucket=BUCKET)
            s3.upload_file(str(blob), BUCKET, KEY, ExtraArgs={"ACL": "public-read"})
            _s3_pair("moto, 127.0.0.1", endpoint, work)
            link_port = free_port()
            link = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.slow_link",
                    "--port",
                    str(link_port),
                    "--upstream",
                    f"127.0.0.1:{s3_port}",
                    "--rate",
                    str(LINK_RATE),
                ],
                cwd=REPO,
            )
            try:
                link_endpoint = f"http://127.0.0.1:{link_port}"
                _wait_head(f"{link_endpoint}/{BUCKET}/{KEY}")
                _s3_pair(f"moto, {LINK_RATE / 1e6:.0f} MB/s per connection", link_endpoint, work)
            finally:
                link.terminate()
                link.wait(timeout=10)

            env = {
                "MAST_BASE_URL": base,
                "MAST_DOWNLOAD_DIR": str(work / "proxy" / "mast"),
                "STORAGE_BASE_PATH": str(work / "proxy"),
                "LOG_LEVEL": "WARNING",
            }
            with LiveServer("main_mast", workers=1, env=env) as proxy, httpx.Client(base_url=proxy.url) as http:
                assert proxy.process is not None
                time.sleep(1.0)
                idle = _tree_rss(proxy.process.pid)
                body = {"obs_id": OBS, "product_type": "SCIENCE", "resume_job_id": None, "calib_level": None}
                job = http.post("/mast/download/start-chunked", json=body).json()["job_id"]
                peak = idle
                while True:
                    peak = max(peak, _tree_rss(proxy.process.pid))
                    progress = http.get(f"/mast/download/progress-chunked/{job}").json()
                    if progress["is_complete"]:
                        break
                    time.sleep(0.1)
                assert progress["stage"] == "complete", progress
            print(f"proxy RSS idle      : {idle / 2**20:8.1f} MB")
            print(f"proxy RSS download  : {peak / 2**20:8.1f} MB (peak, goal < 200 MB)")
        finally:
            emulator.terminate()
            moto.terminate()
            emulator.wait(timeout=10)
            moto.wait(timeout=10)


if __name__ == "__main__":
    main()
