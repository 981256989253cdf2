"""Benchmark: preview of large float32 FITS images at 1000 px, ours vs a plain astropy baseline.

Each measurement runs in a fresh subprocess and reports wall time and peak RSS (``VmHWM`` of
``/proc/self/status``, the high-water RSS of the process image; ``ru_maxrss`` is the fallback but
on Linux it can inherit the parent's peak across fork/exec), so imports and page-cache effects are the same
for both sides. The files are written once (random noise plus a few sources) into a temporary
directory, and each side runs once on a warm page cache after an untimed warm-up read.

* **ours**: :func:`app.viewer.jobs.render_preview` (headers first, block-averaged band reads,
  zscale on a sample, gray LUT, PNG with compress_level 1).
* **baseline**: ``astropy.io.fits.getdata`` -> ``float64`` -> ``ZScaleInterval`` + ``LinearStretch``
  over the full array -> uint8 -> ``Pillow`` resize to 1000 px -> flip -> PNG.

Run: ``.venv/bin/python bench/preview.py [--sizes 4096 8192] [--keep DIR]``.
Goals (issue 5): ours >= 3x faster and <= 1/3 of the baseline's peak memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import REPO, run_python

#: Code that defines ``peak_mb()`` in a child interpreter (run with the repository as working directory).
PEAK = "from bench._common import peak_rss_mb as peak_mb\n"

OURS = r"""
import json, sys, time
{peak}from pathlib import Path
sys.path.insert(0, {repo!r})
from app.schemas import core_stretch
from app.viewer.schemas import PreviewQuery
from app.viewer.jobs import render_preview
path = Path({path!r})
query = PreviewQuery(width=1000, height=1000)
start = time.perf_counter()
content, _, _ = render_preview(path, query, core_stretch(query, "zscale"), 10**10)
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "peak_rss_mb": peak_mb(),
                  "bytes": len(content)}}))
"""

BASELINE = r"""
import io, json, time
{peak}import numpy as np
from astropy.io import fits
from astropy.visualization import LinearStretch, ZScaleInterval
from PIL import Image
path = {path!r}
start = time.perf_counter()
data = fits.getdata(path).astype(np.float64)
data = np.nan_to_num(data)
x = LinearStretch()(ZScaleInterval()(data, clip=True), clip=True)
gray = (x * 255).astype(np.uint8)
image = Image.fromarray(gray[::-1])
scale = 1000 / max(image.size)
image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
buffer = io.BytesIO()
image.save(buffer, format="PNG")
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "peak_rss_mb": peak_mb(),
                  "bytes": len(buffer.getvalue())}}))
"""

IDLE = r"""
import json, sys
{peak}sys.path.insert(0, {repo!r})
import numpy, astropy.io.fits, astropy.visualization, PIL.Image, scipy.ndimage
import app.viewer.jobs
print(json.dumps({{"seconds": 0.0, "peak_rss_mb": peak_mb()}}))
"""


def write_image(path: Path, size: int) -> None:
    """A size x size float32 image: noise, a gradient and some bright sources, written in row bands."""
    rng = np.random.default_rng(0)
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = size
    header["NAXIS2"] = size
    with path.open("wb") as handle:
        handle.write(header.tostring(padding=True).encode("ascii"))
        band = 512
        for start in range(0, size, band):
            rows = min(band, size - start)
            block = rng.normal(100.0, 5.0, (rows, size)).astype(">f4")
            block[:, ::997] += 5000.0
            handle.write(block.tobytes())
        pad = (-(size * size * 4)) % 2880
        handle.write(b"\0" * pad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--keep", type=Path, default=None, help="directory for the test files (kept)")
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bench-preview-"))
    directory.mkdir(parents=True, exist_ok=True)
    idle = run_python(IDLE.format(repo=str(REPO), peak=PEAK))
    print(f"interpreter + imports alone: {idle['peak_rss_mb']:.0f} MB peak RSS")
    print(f"{'size':>6} {'file MB':>8} {'side':>9} {'seconds':>8} {'peak MB':>8}")
    try:
        for size in args.sizes:
            path = directory / f"bench_{size}.fits"
            if not path.exists():
                write_image(path, size)
            path.read_bytes()  # warm the page cache for both sides
            file_mb = path.stat().st_size / 2**20
            ours = run_python(OURS.format(repo=str(REPO), path=str(path), peak=PEAK))
            base = run_python(BASELINE.format(path=str(path), peak=PEAK))
            for name, result in (("ours", ours), ("baseline", base)):
                print(f"{size:>6} {file_mb:>8.0f} {name:>9} {result['seconds']:>8.2f} {result['peak_rss_mb']:>8.0f}")
            print(
                f"{'':>6} {'':>8} {'ratio':>9} {base['seconds'] / ours['seconds']:>7.1f}x "
                f"{ours['peak_rss_mb'] / base['peak_rss_mb']:>8.2f}  (speed-up, memory ours/baseline; "
                f"ours peak / file size = {ours['peak_rss_mb'] / file_mb:.2f})"
            )
    finally:
        if args.keep is None:
            for file in directory.glob("bench_*.fits"):
                file.unlink()
            directory.rmdir()


if __name__ == "__main__":
    main()
