"""Benchmark: preview and histogram of large float32 FITS images, ours vs a baseline each.

Each measurement runs in a fresh subprocess (:func:`bench._common.spawn`) and reports wall time
(best of ``--repeat`` runs after an untimed warm-up, so imports and the page cache are the same
for every side), CPU time and peak RSS (``VmHWM``, which covers the warm-up too). Inputs are
JWST-like files written band by band (:func:`tests.support.big_fits.write_noise_image`).

Jobs are called the way the engine calls them: the job entry point with a storage key, under
:func:`app.worker.context.run_in_context` with settings on a local root (:func:`tests.support.jobs.run_job`).

* **preview, ours**: :func:`app.viewer.jobs.render_preview` at 1000 px (headers first,
  block-averaged band reads, zscale on a sample, PNG).
* **preview, baseline**: ``astropy.io.fits.getdata`` -> ``float64`` -> ``ZScaleInterval`` +
  ``LinearStretch`` over the full array -> uint8 -> Pillow resize to 1000 px -> PNG.
* **histogram, ours**: :func:`app.viewer.jobs.compute_histogram` (256 bins, zscale): one grid
  sample of about a million pixels read at full resolution, counted in one pass.
* **histogram, old**: the previous implementation of the same job, kept here as the baseline: the
  plane stride-read to 4096 px (all of a 4096² plane), raw and stretched histograms, percentiles
  and statistics over every pixel in float64.

Run: ``.venv/bin/python bench/preview.py [--sizes 4096,8192] [--repeat 3] [--only histogram]``.
Goals: preview >= 3x faster and <= 1/3 of the baseline's memory; histogram <= 100 ms and
<= 150 MB at 4096², flat memory at 16k.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import report, spawn

SIDES = {"preview": ("ours", "baseline"), "histogram": ("ours", "old")}
BINS = 256


def _preview_ours(root: Path, key: str) -> Callable[[], Any]:
    from app.core.settings import Settings
    from app.schemas import core_stretch
    from app.viewer.jobs import render_preview
    from app.viewer.schemas import PreviewQuery
    from tests.support.jobs import run_job

    query = PreviewQuery(width=1000, height=1000)
    budget = Settings().max_fits_array_elements
    return lambda: run_job(root, render_preview, key, query, core_stretch(query, "zscale"), budget)


def _preview_baseline(root: Path, key: str) -> Callable[[], Any]:
    import numpy as np
    from astropy.io import fits
    from astropy.visualization import LinearStretch, ZScaleInterval
    from PIL import Image

    def run() -> bytes:
        data = np.nan_to_num(fits.getdata(root / key, "SCI").astype(np.float64))
        x = LinearStretch()(ZScaleInterval()(data, clip=True), clip=True)
        image = Image.fromarray((x * 255).astype(np.uint8)[::-1])
        scale = 1000 / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    return run


def _histogram_ours(root: Path, key: str) -> Callable[[], Any]:
    from app.core.settings import Settings
    from app.schemas import core_stretch
    from app.viewer.jobs import compute_histogram
    from app.viewer.schemas import HistogramQuery
    from tests.support.jobs import run_job

    query = HistogramQuery(bins=BINS)
    budget = Settings().max_fits_array_elements
    return lambda: run_job(root, compute_histogram, key, query, core_stretch(query, "zscale"), BINS, budget)


def _histogram_old(root: Path, key: str) -> Callable[[], Any]:
    """The job as it was: every pixel of the plane stride-read to 4096 px, float64 statistics."""
    import numpy as np

    from app.processing import enhancement, fits_io, statistics
    from app.schemas import core_stretch
    from app.viewer import jobs
    from app.viewer.schemas import HistogramQuery

    query = HistogramQuery(bins=BINS)
    stretch = core_stretch(query, "zscale")

    def run() -> dict[str, Any]:
        path = root / key
        info = fits_io.image_info(path)
        plane = fits_io.read_plane(path, info=info, max_side=4096, method="stride")
        sample = jobs._limits_sample(path, plane)
        data = jobs._require_finite(plane.data)
        lo, hi = float(data.min()), float(data.max())
        raw = enhancement.normalize(data, lo, hi if hi > lo else lo + 1.0)
        raw_hist = statistics.histogram(raw, bins=BINS)
        del raw
        x01 = jobs._stretch(data, stretch, sample)
        np.clip(x01, 0.0, 1.0, out=x01)
        basic = statistics.basic_stats(x01)
        return {
            "histogram": statistics.histogram(x01, bins=BINS),
            "raw_histogram": raw_hist,
            "percentiles": statistics.percentiles(x01, jobs.HISTOGRAM_PERCENTILES),
            "stats": basic,
        }

    return run


RUNNERS = {
    ("preview", "ours"): _preview_ours,
    ("preview", "baseline"): _preview_baseline,
    ("histogram", "ours"): _histogram_ours,
    ("histogram", "old"): _histogram_old,
}


def child(what: str, side: str, file: str, repeat: str) -> None:
    """Warm up once, then time ``repeat`` runs of one side; report the best."""
    run = RUNNERS[(what, side)](Path(file).parent, Path(file).name)
    run()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(int(repeat)):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    report({"seconds": best_wall, "cpu": best_cpu})


def idle() -> None:
    """Peak RSS of the interpreter with everything the jobs import, and no job run."""
    import astropy.io.fits
    import astropy.visualization  # noqa: F401
    import PIL.Image  # noqa: F401
    import scipy.ndimage  # noqa: F401

    import app.viewer.jobs  # noqa: F401
    import tests.support.jobs  # noqa: F401

    report({"seconds": 0.0, "cpu": 0.0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda t: [int(s) for s in t.replace(",", " ").split()], default=[4096, 8192])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(SIDES), default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the inputs (default: a temp dir)")
    args = parser.parse_args()
    from tests.support.big_fits import write_noise_image

    folder = Path(tempfile.mkdtemp(prefix="bench-preview-", dir=args.dir))
    try:
        base = spawn(__file__, "idle")
        print(f"interpreter + imports alone: {base['peak_rss_mb']:.0f} MB peak RSS")
        print(f"{'size':>6} {'file MB':>8} {'job':>10} {'side':>9} {'seconds':>8} {'cpu':>7} {'peak MB':>8}")
        for size in args.sizes:
            path = write_noise_image(folder / f"bench_{size}.fits", size)
            file_mb = path.stat().st_size / 2**20
            for what, sides in SIDES.items():
                if args.only and what != args.only:
                    continue
                results = [spawn(__file__, what, side, str(path), str(args.repeat)) for side in sides]
                for side, r in zip(sides, results, strict=True):
                    print(
                        f"{size:>6} {file_mb:>8.0f} {what:>10} {side:>9} {r['seconds']:>8.3f} {r['cpu']:>7.3f} "
                        f"{r['peak_rss_mb']:>8.0f}",
                        flush=True,
                    )
                ours, other = results
                print(
                    f"{'':>6} {'':>8} {what:>10} {'ratio':>9} {other['seconds'] / ours['seconds']:>7.1f}x "
                    f"{'':>7} {ours['peak_rss_mb'] / other['peak_rss_mb']:>8.2f}  (speed-up; memory ours/{sides[1]})"
                )
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "idle":
            idle()
        else:
            child(*sys.argv[2:6])
    else:
        main()
