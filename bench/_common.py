"""Helpers shared by the benchmarks (not a benchmark itself): repository path, peak memory, child runs.

Every side of a benchmark is measured in a fresh child process, so its peak memory is its own:
the parent runs ``python bench/<name>.py --child MODE ARGS...`` (:func:`spawn`) or ``python -c
CODE`` (:func:`run_python`) and reads the last line the child prints, one JSON object.

Memory comes from ``/proc/self/status``: ``VmHWM`` is the high-water RSS of the process image and
``VmRSS`` the current RSS. ``ru_maxrss`` is only the fallback where ``/proc`` is missing, because
Linux carries it over ``execve`` from the parent process.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def status_mb(field: str = "VmHWM") -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) RSS of this process, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MB."""
    return status_mb("VmHWM")


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object on the last line a child printed."""
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def report(result: dict[str, Any]) -> None:
    """In a child: add this process's peak RSS to ``result`` and print it as the JSON line :func:`spawn` reads."""
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def spawn(script: str | Path, mode: str, *args: str) -> dict[str, Any]:
    """Run ``script --child mode args...`` in a fresh interpreter and return its JSON result."""
    out = subprocess.run(
        [sys.executable, str(script), "--child", mode, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return last_json(out.stdout)


def run_python(code: str) -> dict[str, Any]:
    """Run ``python -c code`` in the repository and return its JSON result."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return last_json(out.stdout)


def read_grid_wcs(path: str) -> Any:
    """The WCS a benchmark saved next to a grid as ``<path>.wcs`` (FITS header text)."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(fits.Header.fromstring(Path(path + ".wcs").read_text()))
