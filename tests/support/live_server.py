"""Run one of our apps as a real ``uvicorn`` process for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.core.http_protocol import PROTOCOL_IMPORT
from tests.support.net import free_port, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The uvicorn logging configuration of ``make run`` and the images.
LOG_CONFIG = REPO_ROOT / "app" / "core" / "uvicorn_logging.json"


@dataclass
class LiveServer:
    """A uvicorn subprocess serving ``module:app`` on 127.0.0.1."""

    module: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    #: More uvicorn options, e.g. ``["--timeout-graceful-shutdown", "3"]``.
    args: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.port = self.port or free_port()
        # a metrics directory named by the test process (an app built in it) is not this server's
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env = {**inherited, "LOG_FORMAT": "text", **self.env}
        log = tempfile.NamedTemporaryFile(prefix=f"{self.module}-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{self.module}:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--http",
            PROTOCOL_IMPORT,
            "--log-config",
            str(LOG_CONFIG),
            *self.args,
        ]
        with log:  # the child keeps its own descriptor; the parent only reads the file back by path
            self.process = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_http(f"{self.url}/health", timeout=timeout, check=self._check_alive)
        self._wait_for_every_worker(timeout)
        return self

    def _wait_for_every_worker(self, timeout: float) -> None:
        """Wait until every uvicorn worker has finished its startup (``/health`` answers after the first)."""
        if self.workers <= 1:
            return
        deadline = time.monotonic() + timeout
        while self.logs().count("Application startup complete") < self.workers:
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.module}: not every worker started:\n{self.logs()}")
            time.sleep(0.1)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited early:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (uvicorn and its workers)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
