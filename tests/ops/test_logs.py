"""Under ``LOG_FORMAT=json`` every line of a live service is one JSON object with the same fields.

uvicorn's own lines (startup, shutdown, a failed startup's traceback), a worker process's records
and a job's traceback all go through the app's formatter: ISO-8601 time with milliseconds and zone,
the pid, and a traceback as the ``exc_info`` field. Probe access lines are DEBUG.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LOG_CONFIG, REPO_ROOT, LiveServer
from tests.support.net import free_port

ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse every line; fail on the first that is not a JSON object with the common fields."""
    records = []
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the service logged nothing"
    for line in lines:
        record = json.loads(line)  # raises on a plain-text line
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message", "pid", "request_id"} <= set(record), line
        assert re.match(ISO_MS, record["time"]), line
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None, line
        assert isinstance(record["pid"], int), line
        assert record["pid"] > 0, line
        records.append(record)
    return records


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {
        "LOG_FORMAT": "json",
        "STORAGE_BASE_PATH": str(root),
        "MAST_DOWNLOAD_DIR": str(root / "mast"),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "ENGINE_WORKERS": "1",
        **extra,
    }


def test_job_traceback_worker_records_and_probe_levels(tmp_path: Path) -> None:
    server = LiveServer("tests.support.busy_app", env=_env(tmp_path, LOG_LEVEL="DEBUG")).start()
    try:
        assert server.process is not None
        uvicorn_pid = server.process.pid
        for path in ("/health", "/ready", "/metrics", "/"):
            assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 200
        reply = httpx.post(f"{server.url}/fail", timeout=60)
        assert reply.status_code == 500
        assert "bug" not in reply.text  # the client gets the fixed message, the log gets the traceback
    finally:
        server.stop()
    records = json_lines(server.logs())
    loggers = {r["logger"] for r in records}
    assert "uvicorn.error" in loggers
    messages = {r["message"] for r in records}
    assert {"Application startup complete.", f"Finished server process [{uvicorn_pid}]"} <= messages
    error = next(r for r in records if r["message"] == "unhandled_error")
    assert error["level"] == "ERROR"
    assert "Traceback" in error["exc_info"]
    assert "RuntimeError: a bug in a job" in error["exc_info"]
    assert "\n" not in json.dumps(error)
    worker = next(r for r in records if r["message"] == "job_about_to_fail")
    assert worker["pid"] == worker["worker_pid"] != uvicorn_pid  # logged in the worker process, same format
    access = {r["path"]: r["level"] for r in records if r["logger"] == "app.access"}
    assert access == {"/health": "DEBUG", "/ready": "DEBUG", "/metrics": "DEBUG", "/": "INFO", "/fail": "INFO"}


@pytest.mark.parametrize(("module", "workers"), [("main", 1), ("main_mast", 2)])
def test_real_services_log_only_json(tmp_path: Path, module: str, workers: int) -> None:
    server = LiveServer(module, env=_env(tmp_path), workers=workers).start()
    try:
        for path in ("/", "/health", "/ready", "/metrics", "/no/such/route"):
            httpx.get(f"{server.url}{path}", timeout=60)
    finally:
        server.stop()
    records = json_lines(server.logs())
    messages = [r["message"] for r in records]
    assert "Application startup complete." in messages
    assert any(m.startswith("Uvicorn running on") for m in messages)
    assert len({r["pid"] for r in records}) == (1 if workers == 1 else 3)  # supervisor and two workers
    assert [r["path"] for r in records if r["logger"] == "app.access"] == ["/", "/no/such/route"]


def test_failed_startup_traceback_is_json(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    port = free_port()
    env = {**_env(tmp_path), "MAST_DOWNLOAD_DIR": str(blocker / "mast")}
    cmd = [sys.executable, "-m", "uvicorn", "main_mast:app", "--port", str(port), "--log-config", str(LOG_CONFIG)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env={**_inherit(), **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    records = json_lines(done.stdout + done.stderr)
    failed = next(r for r in records if "exc_info" in r)
    assert failed["logger"] == "uvicorn.error"
    assert failed["exc_info"].startswith("Traceback (most recent call last):")
    # the storage check names the exception class, the place and the uid
    assert failed["message"].startswith("app.storage.startup.StorageNotWritableError: Cannot write to")
    assert "NotADirectoryError" in failed["message"]
    assert any(r["message"] == "storage_not_writable" and r["path"] == str(blocker / "mast") for r in records)
    assert records[-1]["message"] == "Application startup failed. Exiting."


def _inherit() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
