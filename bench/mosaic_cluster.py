"""Benchmark: a 16-tile mosaic (4 x 4 tiles of 2048^2, about 60 M output pixels) under a 900 MB per-process limit.

Three ways to build the same FITS mosaic (mean combine) from the same files:

* **local pool by blocks**: the engine (``POST /mosaic/generate``) with its own pool of 2 worker
  processes and ``ENGINE_JOB_MEMORY_MB=900``, so the grid is cut into blocks;
* **cluster**: the same engine with ``DASK_SCHEDULER_ADDRESS`` pointing at a 2-worker Dask cluster
  (separate processes, 1 thread and 900 MB each), reached by address as an operator's would be;
* **baseline**: ``reproject_and_coadd(reproject_interp, roundtrip_coords=False)`` on memory-mapped
  inputs onto the same grid, in one process (what a skilled astropy user writes).

For each: wall time, peak RSS (VmHWM) of every process that built pixels (the engine's API process
is left out: the in-process test client holds the whole response body, which a real client streams),
and the largest output
grid it can produce under 900 MB per process (ours: the block and band sizes do not grow with the
grid; the baseline: extrapolated from its measured bytes per output pixel). The pixel check compares
our mosaic with the baseline's on the same grid. Run: ``.venv/bin/python bench/mosaic_cluster.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO, last_json, peak_rss_mb, status_mb

LIMIT_MB = 900
TILES_PER_SIDE = 4


def make_tiles(folder: Path, tile: int, per_side: int) -> list[str]:
    from tests.support.fits_factory import gaussian_stars, make_wcs, write_image

    step = tile - tile // 16
    size = step * (per_side - 1) + tile
    wcs = make_wcs((size, size), rotation_deg=5.0, pixel_scale_arcsec=0.031)
    keys = []
    for row in range(per_side):
        for col in range(per_side):
            y0, x0 = row * step, col * step
            data, _ = gaussian_stars((tile, tile), n_stars=400, seed=row * 10 + col, background=50.0, noise=1.0)
            tile_wcs = wcs.deepcopy()
            tile_wcs.wcs.crpix = np.asarray(tile_wcs.wcs.crpix) - np.array([x0, y0], dtype=float)
            write_image(folder / "tiles" / f"t{row}{col}.fits", data, wcs=tile_wcs)
            keys.append(f"tiles/t{row}{col}.fits")
    return keys


def _body(keys: list[str]) -> dict[str, Any]:
    from tests.support.request_bodies import mosaic_body

    return mosaic_body(keys, combine_method="mean")


def _vmhwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _own_peak_mb() -> float:
    """Return the calling process's VmHWM in MB (run on each cluster worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _worker_pids() -> list[int]:
    """Return the local pool's worker processes: the forkserver's children (leaves of this process's tree)."""
    import psutil

    me = psutil.Process()
    return [
        p.pid
        for p in me.children(recursive=True)
        if not p.children() and "resource_tracker" not in " ".join(p.cmdline())
    ]


def run_engine(root: str, keys: str, out: str, scheduler: str) -> dict[str, Any]:
    """Run the engine in this process on the local pool (``scheduler == "-"``) or on the cluster."""
    from fastapi.testclient import TestClient

    from main import create_app
    from tests.support.engine_settings import make_settings

    extra: dict[str, object] = {"ENGINE_EXECUTOR": "process", "ENGINE_WORKERS": 2, "ENGINE_JOB_MEMORY_MB": LIMIT_MB}
    if scheduler != "-":
        extra["DASK_SCHEDULER_ADDRESS"] = scheduler
    settings = make_settings(Path(root), Path(out).parent, MAX_MOSAIC_OUTPUT_PIXELS=10**9, **extra)
    with TestClient(create_app(settings)) as client:
        client.get("/health")
        start = time.perf_counter()
        reply = client.post("/mosaic/generate", json=_body(keys.split(",")))
        seconds = time.perf_counter() - start
        workers = {pid: _vmhwm_mb(pid) for pid in _worker_pids()} if scheduler == "-" else {}
    if reply.status_code != 200:
        raise RuntimeError(f"engine answered {reply.status_code}: {reply.text[:300]}")
    Path(out).write_bytes(reply.content)
    return {
        "seconds": seconds,
        "blocks": int(reply.headers["x-mosaic-blocks"]),
        "grid": reply.headers["x-mosaic-grid-shape"],
        "worker_peaks_mb": sorted(round(v) for v in workers.values()),
        "api_peak_mb": peak_rss_mb(),
    }


def run_baseline(root: str, keys: str, ours: str, out: str) -> dict[str, Any]:
    from astropy.io import fits
    from astropy.wcs import WCS
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd

    with fits.open(ours) as hdul:
        header = hdul[0].header
        shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        wcs = WCS(header)
    hdus = [fits.open(Path(root) / key, memmap=True)["SCI"] for key in keys.split(",")]
    before = status_mb("VmRSS")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array, footprint = reproject_and_coadd(
            hdus,
            wcs,
            shape_out=shape,
            reproject_function=reproject_interp,
            combine_function="mean",
            roundtrip_coords=False,
        )
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    np.save(out, np.where(footprint > 0, array, np.nan).astype(np.float32))
    return {"seconds": seconds, "peak_mb": peak, "idle_mb": before, "pixels": shape[0] * shape[1]}


def run_compare(ours: str, base: str) -> dict[str, Any]:
    from astropy.io import fits

    with fits.open(ours) as hdul:
        mine = hdul[0].data.astype(np.float64)
    theirs = np.load(base).astype(np.float64)
    both = np.isfinite(mine) & np.isfinite(theirs)
    rms = float(np.sqrt(np.mean(theirs[both] ** 2)))
    diff = np.abs(mine[both] - theirs[both])
    return {
        "rms_diff_rel": float(np.sqrt(np.mean(diff**2)) / rms),
        "coverage": float(both.sum() / max(1, np.isfinite(theirs).sum())),
    }


def _child(mode: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return last_json(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--per-side", type=int, default=TILES_PER_SIDE, help="tiles per side (4: about 60 M px)")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        table = {"engine": run_engine, "baseline": run_baseline, "compare": run_compare}
        result = table[args.child[0]](*args.child[1:])
        result.setdefault("peak_rss_mb", peak_rss_mb())
        print(json.dumps(result))
        return
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        keys = ",".join(make_tiles(root, args.tile, args.per_side))
        local = _child("engine", str(root), keys, str(root / "local.fits"), "-")
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit=f"{LIMIT_MB}MB", dashboard_address=None
        ) as cluster:
            clustered = _child("engine", str(root), keys, str(root / "cluster.fits"), cluster.scheduler_address)
            with Client(cluster) as client:
                peaks = client.run(_own_peak_mb)
        clustered["worker_peaks_mb"] = sorted(round(v) for v in peaks.values())
        base = _child("baseline", str(root), keys, str(root / "local.fits"), str(root / "base.npy"))
        check = _child("compare", str(root / "local.fits"), str(root / "base.npy"))
    nx, ny = (int(v) for v in local["grid"].split("x"))
    pixels = nx * ny
    per_pixel = (base["peak_mb"] - base["idle_mb"]) / pixels
    base_largest = (LIMIT_MB - base["idle_mb"]) / per_pixel
    worst = max(local["worker_peaks_mb"] + clustered["worker_peaks_mb"])
    print(f"inputs: {args.per_side**2} x {args.tile}^2 float32 tiles; grid {local['grid']} ({pixels / 1e6:.1f} M px)")
    for name, r in (("local pool by blocks", local), ("2-worker cluster", clustered)):
        print(f"{name:21s} {r['seconds']:6.1f} s, {r['blocks']} blocks, worker peak RSS {r['worker_peaks_mb']} MB")
    print(
        f"{'baseline (tuned)':21s} {base['seconds']:6.1f} s, one process, peak RSS {base['peak_mb']:.0f} MB "
        f"({per_pixel * 1e6:.1f} bytes per output pixel)"
    )
    print(
        f"largest grid under {LIMIT_MB} MB per process: baseline about {base_largest / 1e6:.0f} M px; ours is not "
        f"bounded by process memory (here {pixels / 1e6:.0f} M px with every worker under {worst} MB)"
    )
    print(
        f"speed-up vs baseline: local {base['seconds'] / local['seconds']:.1f}x, "
        f"cluster {base['seconds'] / clustered['seconds']:.1f}x"
    )
    rms, coverage = 100 * check["rms_diff_rel"], 100 * check["coverage"]
    print(f"pixels vs baseline: RMS difference {rms:.4f} % of RMS, coverage {coverage:.2f} %")


if __name__ == "__main__":
    main()
