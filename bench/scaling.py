"""Benchmark: cost grows with the pixels read, memory does not (issue: scaling of every reader).

For each side in ``--sizes`` (default 2048, 4096, 8192, 16384) two JWST-like inputs are written
under a temporary directory, band by band (:mod:`tests.support.big_fits`: float32 ``SCI``
extension with a TAN WCS, sky, noise and stars; a 16 384² file is 1 GiB on disk and its writer
holds one band): ``a.fits`` and ``b.fits``, the same sky shifted by half a width. Each work item
then runs in a fresh interpreter, called the way the engine calls it (the job entry point under
:func:`app.worker.context.run_in_context` with the engine's default settings on a local root),
after an untimed warm-up on a 256² file so imports are not measured:

* ``preview``: ``GET /preview`` at 1000 px; ``thumbnail``; ``histogram`` (256 bins);
  ``pixeldata`` (1200 px);
* ``composite``: three channels (``a.fits`` three times, three hues) to 2048²;
* ``detect``: source detection (``auto``), 413 above its budget;
* ``mosaic``: ``a.fits`` + ``b.fits`` at a quarter of the full-resolution grid, PNG.

Reported per item: wall seconds, CPU seconds, nanoseconds per input pixel (wall time over the
pixels of the input files: the pixels a full read scans), peak RSS (``VmHWM`` of the child) and
the status. Files are deleted after each size. ``--sparse-sizes 32768`` adds sizes written as
sparse files (zeros but for four bands; 4 GiB apparent, little disk) for the viewer items only.

Run: ``.venv/bin/python bench/scaling.py --sizes 2048,4096,8192,16384 [--sparse-sizes 32768]
[--items preview,histogram]``. Goals: ns per pixel does not grow from 4k to 16k; the peak RSS of
preview, thumbnail, histogram and composite at 16k is within 1.5x of 4k; a 16k preview < 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import report, spawn

ITEMS = ("preview", "thumbnail", "histogram", "pixeldata", "composite", "detect", "mosaic")
VIEWER_ITEMS = ("preview", "thumbnail", "histogram", "pixeldata")
#: Input files each item reads (for the per-pixel figure).
FILES_READ = {"composite": 3, "mosaic": 2}
WARM_SIDE = 256


def sizes(text: str) -> list[int]:
    """Parse ``2048,4096`` (or ``2048 4096``) into a list of sides."""
    return [int(part) for part in text.replace(",", " ").split() if part]


def write_inputs(folder: Path, side: int, *, sparse: bool = False) -> None:
    """Write ``a.fits`` and ``b.fits`` (``b`` shifted by half a width on the sky) of ``side`` pixels."""
    from tests.support.big_fits import write_noise_image, write_sparse_image
    from tests.support.fits_factory import make_wcs

    shifted = make_wcs((side, side))
    shifted.wcs.crpix = [shifted.wcs.crpix[0] - side / 2, shifted.wcs.crpix[1]]
    if sparse:
        write_sparse_image(folder / "a.fits", side)
        return
    write_noise_image(folder / "a.fits", side, seed=1)
    write_noise_image(folder / "b.fits", side, seed=2, wcs=shifted)


# --- children: one work item each ------------------------------------------------------------------


def _viewer(item: str) -> Callable[[Path, str], Any]:
    from app.core.settings import Settings
    from app.schemas import core_stretch
    from app.viewer import jobs
    from app.viewer.schemas import HistogramQuery, PixelDataQuery, PreviewQuery

    budget = Settings().max_fits_array_elements

    def run(root: Path, key: str) -> Any:
        from tests.support.jobs import run_job

        if item == "preview":
            query = PreviewQuery(width=1000, height=1000)
            return run_job(root, jobs.render_preview, key, query, core_stretch(query, "zscale"), budget)
        if item == "thumbnail":
            return run_job(root, jobs.render_thumbnail, key)
        if item == "histogram":
            hist = HistogramQuery()
            return run_job(root, jobs.compute_histogram, key, hist, core_stretch(hist, "zscale"), 256, budget)
        pixel = PixelDataQuery()
        return run_job(root, jobs.pixel_data, key, pixel.max_size, pixel.slice_index, budget)

    return run


def _composite(root: Path, key: str) -> Any:
    from app.composite.jobs import render_composite
    from app.composite.schemas import NChannelCompositeRequest
    from app.composite.service import build_job
    from tests.support.engine_settings import make_settings
    from tests.support.jobs import run_job

    channels = [{"file_paths": [key], "color": {"hue": hue}} for hue in (0.0, 120.0, 240.0)]
    request = NChannelCompositeRequest.model_validate({"channels": channels, "width": 2048, "height": 2048})
    job = build_job(request, make_settings(root, COMPOSITE_CACHE_MAX_ENTRIES=0))
    return run_job(root, render_composite, job)


def _detect(root: Path, key: str) -> Any:
    from app.analysis.jobs import detect_sources
    from tests.support.jobs import run_job

    return run_job(root, detect_sources, key)


def _mosaic(root: Path, key: str) -> Any:
    from astropy.io import fits

    from app.mosaic.jobs import build_mosaic
    from app.mosaic.schemas import MosaicRequest
    from app.mosaic.service import build_job
    from tests.support.engine_settings import make_settings
    from tests.support.jobs import run_job

    other = key.replace("a", "b")
    side = int(fits.getheader(root / key, "SCI")["NAXIS1"])
    files = [{"file_path": key}, {"file_path": other}]
    request = MosaicRequest.model_validate({"files": files, "width": (side * 3 // 2) // 4})
    result = run_job(root, build_mosaic, build_job(request, make_settings(root)))
    if getattr(result, "content", None) is None:
        raise RuntimeError(f"mosaic built by blocks ({type(result).__name__}): not measured here")
    return result


def _entry(item: str) -> Callable[[Path, str], Any]:
    if item in VIEWER_ITEMS:
        return _viewer(item)
    return {"composite": _composite, "detect": _detect, "mosaic": _mosaic}[item]


def child(item: str, folder: str, warm_folder: str) -> None:
    """Warm up on the small file, then time one run of ``item`` on ``a.fits`` of ``folder``."""
    from app.core.errors import status_for
    from app.core.exceptions import DomainError

    run = _entry(item)
    run(Path(warm_folder), "a.fits")
    status = "200"
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        run(Path(folder), "a.fits")
    except DomainError as error:
        status = str(status_for(error))
    report({"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "status": status})


# --- parent ----------------------------------------------------------------------------------------


def measure(folder: Path, warm: Path, side: int, items: list[str]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        result = spawn(__file__, item, str(folder), str(warm))
        pixels = side * side * FILES_READ.get(item, 1)
        rows.append({"side": side, "item": item, "ns_per_px": result["seconds"] * 1e9 / pixels, **result})
        print(
            f"{side:>6} {item:>10} {result['seconds']:>8.2f} {result['cpu']:>7.2f} {rows[-1]['ns_per_px']:>8.2f} "
            f"{result['peak_rss_mb']:>8.0f} {result['status']:>6}",
            flush=True,
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> None:
    by = {(r["side"], r["item"]): r for r in rows}
    print("\n16k vs 4k: ns/px ratio (goal <= 1, within noise), peak RSS ratio (goal <= 1.5)")
    for item in ITEMS:
        small, big = by.get((4096, item)), by.get((16384, item))
        if small and big and small["status"] == big["status"] == "200":
            print(
                f"{item:>10}: ns/px {big['ns_per_px'] / small['ns_per_px']:.2f}, "
                f"peak RSS {big['peak_rss_mb'] / small['peak_rss_mb']:.2f}"
            )
    preview = by.get((16384, "preview"))
    if preview:
        print(f"16k preview: {preview['seconds']:.2f} s (goal < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[2048, 4096, 8192, 16384])
    parser.add_argument("--sparse-sizes", type=sizes, default=[])
    parser.add_argument("--items", type=lambda t: t.split(","), default=list(ITEMS))
    parser.add_argument("--dir", type=Path, default=None, help="where to write the inputs (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-scaling-", dir=args.dir))
    rows: list[dict[str, Any]] = []
    try:
        warm = base / "warm"
        warm.mkdir()
        write_inputs(warm, WARM_SIDE)
        print(f"{'side':>6} {'item':>10} {'seconds':>8} {'cpu':>7} {'ns/px':>8} {'peak MB':>8} {'status':>6}")
        plan = [(s, False, args.items) for s in args.sizes]
        plan += [(s, True, [i for i in args.items if i in VIEWER_ITEMS]) for s in args.sparse_sizes]
        for side, sparse, items in plan:
            folder = base / str(side)
            folder.mkdir()
            started = time.perf_counter()
            write_inputs(folder, side, sparse=sparse)
            kind = "sparse" if sparse else "noise"
            print(f"# {side}² inputs ({kind}) written in {time.perf_counter() - started:.1f} s", flush=True)
            rows += measure(folder, warm, side, items)
            shutil.rmtree(folder)
        summary(rows)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
