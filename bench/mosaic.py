"""Benchmark: WCS mosaic, ours vs ``reproject_and_coadd(reproject_interp, combine_function='mean')``.

Two baselines: the textbook call, and what a skilled user writes (memory-mapped inputs,
``roundtrip_coords=False`` passed through to ``reproject_interp``).

Four overlapping 2048 x 2048 tiles cut from one synthetic sky -> the optimal grid, mean combine.
Each side runs in its own subprocess; "extra memory" is the peak RSS of the job minus the RSS just
before it (after imports), compared with the size of the float32 output array. The pixel check
runs our combine on the baseline's grid. Run: ``.venv/bin/python bench/mosaic.py [--tile 2048]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import peak_rss_mb, read_grid_wcs, report, spawn, status_mb


def make_tiles(folder: Path, tile: int) -> list[Path]:
    from tests.support.fits_factory import gaussian_stars, make_wcs, write_image

    step = int(tile * 0.8)
    size = step + tile
    big, _ = gaussian_stars((size, size), n_stars=size // 3, seed=1, background=50.0, noise=1.0)
    wcs = make_wcs((size, size), rotation_deg=7.0)
    paths = []
    for i, (y0, x0) in enumerate(((0, 0), (0, step), (step, 0), (step, step))):
        tile_wcs = wcs.deepcopy()
        tile_wcs.wcs.crpix = np.asarray(tile_wcs.wcs.crpix) - np.array([x0, y0], dtype=float)
        paths.append(write_image(folder / f"t{i}.fits", big[y0 : y0 + tile, x0 : x0 + tile].copy(), wcs=tile_wcs))
    return paths


def run_ours(paths: list[str], out_file: str) -> dict[str, object]:
    from scipy import ndimage  # noqa: F401  (import cost outside the measurement)

    from app.core.settings import Settings
    from app.mosaic.jobs import MosaicJob, combine, load_sources, plan_grid
    from app.processing.enhancement import StretchSettings
    from app.processing.reprojection import optimal_celestial_grid  # noqa: F401
    from tests.support.jobs import run_job

    root = Path(paths[0]).parent
    keys = tuple(Path(p).name for p in paths)
    before = status_mb("VmRSS")
    start = time.perf_counter()
    job = MosaicJob(keys, "fits", 95, None, None, "mean", "gray", StretchSettings(), 10**9)
    sources = run_job(root, load_sources, job.keys)
    grid, _ = plan_grid(sources, job)
    threads = Settings().engine_job_threads  # the engine's default: the CPUs of this machine, at most 4
    data = combine(sources, grid, "mean", threads=threads)
    seconds = time.perf_counter() - start
    extra = peak_rss_mb() - before
    np.save(out_file, data)
    return {
        "seconds": seconds,
        "extra_mb": extra,
        "output_mb": data.nbytes / 2**20,
        "grid": f"{grid.nx}x{grid.ny}",
        "threads": threads,
    }


def run_baseline(paths: list[str], out_file: str, tuned: str = "") -> dict[str, object]:
    from astropy.io import fits
    from reproject import reproject_interp
    from reproject.mosaicking import find_optimal_celestial_wcs, reproject_and_coadd

    before = status_mb("VmRSS")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdus = [fits.open(p, memmap=bool(tuned))["SCI"] for p in paths]
        wcs, shape = find_optimal_celestial_wcs(hdus, negative_lon_cdelt=True)
        options = {"roundtrip_coords": False} if tuned else {}
        array, footprint = reproject_and_coadd(
            hdus, wcs, shape_out=shape, reproject_function=reproject_interp, combine_function="mean", **options
        )
    seconds = time.perf_counter() - start
    extra = peak_rss_mb() - before
    np.save(out_file, np.where(footprint > 0, array, np.nan).astype(np.float32))
    Path(out_file + ".wcs").write_text(wcs.to_header().tostring())
    return {
        "seconds": seconds,
        "extra_mb": extra,
        "output_mb": array.astype(np.float32).nbytes / 2**20,
        "grid": f"{shape[1]}x{shape[0]}",
    }


def run_compare(paths: list[str], base_file: str) -> dict[str, object]:

    from app.mosaic.jobs import combine, load_sources
    from app.processing.reprojection import Grid
    from tests.support.jobs import run_job

    base = np.load(base_file)
    sources = run_job(Path(paths[0]).parent, load_sources, tuple(Path(p).name for p in paths))
    ours = combine(sources, Grid(read_grid_wcs(base_file), base.shape), "mean")
    both = np.isfinite(ours) & np.isfinite(base)
    rms = float(np.sqrt(np.mean(base[both].astype(np.float64) ** 2)))
    diff = np.abs(ours[both] - base[both])
    return {
        "max_diff_rel_rms": float(diff.max() / rms),
        "p999_diff_rel_rms": float(np.percentile(diff, 99.9) / rms),
        "coverage_agreement": float((np.isfinite(ours) == np.isfinite(base)).mean()),
    }


def child(mode: str, args: list[str]) -> None:
    table = {"ours": run_ours, "baseline": run_baseline, "compare": run_compare}
    result = table[mode](args[0].split(","), *args[1:])
    report(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    with tempfile.TemporaryDirectory(prefix="bench-mosaic-") as tmp:
        folder = Path(tmp)
        paths = ",".join(str(p) for p in make_tiles(folder, args.tile))
        ours = spawn(__file__, "ours", paths, str(folder / "ours.npy"))
        base = spawn(__file__, "baseline", paths, str(folder / "base.npy"))
        tuned = spawn(__file__, "baseline", paths, str(folder / "tuned.npy"), "tuned")
        check = spawn(__file__, "compare", paths, str(folder / "base.npy"))
    print(f"inputs: 4 x {args.tile}^2 float32 tiles, mean combine (ours on {ours['threads']} threads)")
    for name, r in (("ours", ours), ("tuned", tuned), ("textbook", base)):
        print(
            f"{name:9s} {r['seconds']:7.2f} s  extra RSS {r['extra_mb']:6.0f} MB "
            f"({r['extra_mb'] / r['output_mb']:.2f} x output array of {r['output_mb']:.0f} MB, grid {r['grid']})"
        )
    print(
        f"speed-up: {tuned['seconds'] / ours['seconds']:.1f}x the tuned baseline, "
        f"{base['seconds'] / ours['seconds']:.1f}x the textbook one"
    )
    print(
        f"same grid: max |diff| {100 * check['max_diff_rel_rms']:.4f} % of RMS, 99.9th pct "
        f"{100 * check['p999_diff_rel_rms']:.4f} %, coverage agreement {100 * check['coverage_agreement']:.3f} %"
    )


if __name__ == "__main__":
    main()
