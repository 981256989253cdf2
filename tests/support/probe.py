"""Measure ``/health`` latency from a separate interpreter.

A probe thread inside the test process would share its GIL with the client threads that create
the load, and would measure the test as much as the server. This probe runs in its own process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

_PROBE = """
import json, sys, time, httpx
url, duration = sys.argv[1], float(sys.argv[2])
latencies = []
end = time.monotonic() + duration
with httpx.Client(base_url=url, timeout=5) as client:
    while time.monotonic() < end:
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
print(json.dumps(latencies))
"""


class HealthProbe:
    """Poll ``<url>/health`` every 20 ms for ``duration`` seconds in a child process."""

    def __init__(self, url: str, duration: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _PROBE, url, str(duration)], stdout=subprocess.PIPE, text=True
        )

    def latencies(self, timeout: float = 120.0) -> list[float]:
        """Wait for the probe to finish and return every latency in milliseconds."""
        out, _ = self._process.communicate(timeout=timeout)
        if self._process.returncode != 0:
            raise AssertionError("the /health probe failed: a request errored or timed out")
        return list(json.loads(out))


def p99(values: list[float]) -> float:
    """The 99th percentile of ``values``."""
    return statistics.quantiles(values, n=100)[98]
