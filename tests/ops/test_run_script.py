"""``make run``'s script: ports from ENGINE_PORT/PROXY_PORT, a clear message for a taken port, Ctrl-C exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_server import REPO_ROOT
from tests.support.net import free_port, wait_for_http

SCRIPT = REPO_ROOT / "scripts" / "run.sh"


def _env(tmp_path: Path, engine_port: int, proxy_port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "ENGINE_PORT": str(engine_port),
        "PROXY_PORT": str(proxy_port),
        "RUN_PYTHON": sys.executable,
        "STORAGE_BASE_PATH": str(tmp_path / "data"),
        "MAST_DOWNLOAD_DIR": str(tmp_path / "data" / "mast"),
        "SEMANTIC_DATA_DIR": str(tmp_path / "data" / "semantic"),
        "ENGINE_WORKERS": "1",
    }


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_ctrl_c_stops_both_and_exits_0(tmp_path: Path) -> None:
    engine_port, proxy_port = free_port(), free_port()
    process = subprocess.Popen(
        ["bash", str(SCRIPT)],
        cwd=REPO_ROOT,
        env=_env(tmp_path, engine_port, proxy_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        for port in (engine_port, proxy_port):
            wait_for_http(f"http://127.0.0.1:{port}/health", timeout=120, check=lambda: _alive(process))
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: INT to the whole foreground group
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output[-3000:]
    assert "stopped engine and proxy" in output
    assert f"http://127.0.0.1:{engine_port}/docs" in output
    assert _bindable(engine_port)
    assert _bindable(proxy_port)


def _alive(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        raise RuntimeError(f"run.sh exited early ({process.returncode})")


@pytest.mark.parametrize("taken", ["ENGINE_PORT", "PROXY_PORT"])
def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path, taken: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        ports = {"ENGINE_PORT": free_port(), "PROXY_PORT": free_port(), taken: busy_port}
        done = subprocess.run(
            ["bash", str(SCRIPT)],
            cwd=REPO_ROOT,
            env=_env(tmp_path, ports["ENGINE_PORT"], ports["PROXY_PORT"]),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"port {busy_port} ({taken})" in done.stderr
    assert "already in use" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started
