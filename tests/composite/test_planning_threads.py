"""A composite uses several threads only when the memory budget holds their bands, never at the cost of resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.composite.planning import estimate_bytes, plan_grid
from app.processing.reprojection import optimal_celestial_grid
from app.processing.sources import load_source
from tests.support.fits_factory import make_wcs, write_image


def _sources(tmp_path: Path) -> list[list]:  # type: ignore[type-arg]
    channels = []
    for i in range(3):
        path = write_image(tmp_path / f"c{i}.fits", np.ones((600, 600), np.float32), wcs=make_wcs((600, 600)))
        channels.append([load_source(path, f"c{i}")])
    return channels


def test_threads_share_the_budget_before_the_grid_shrinks(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    grid0 = optimal_celestial_grid([(s.wcs, s.shape) for channel in sources for s in channel])
    common = {"width": 600, "height": 600, "max_reproject_pixels": 10**8, "max_input_pixels": 10**8}
    one, _ = estimate_bytes(grid0, sources, width=600, height=600, max_input_pixels=10**8, threads=1)
    two, _ = estimate_bytes(grid0, sources, width=600, height=600, max_input_pixels=10**8, threads=2)
    assert two > one

    roomy = plan_grid(grid0, sources, memory_budget_bytes=two, threads=2, **common)  # type: ignore[arg-type]
    assert (roomy.threads, roomy.factor, roomy.estimate_bytes) == (2, 1.0, two)

    tight = plan_grid(grid0, sources, memory_budget_bytes=one, threads=2, **common)  # type: ignore[arg-type]
    assert (tight.threads, tight.factor, tight.estimate_bytes) == (1, 1.0, one)  # same grid, one channel at a time

    smaller = plan_grid(grid0, sources, memory_budget_bytes=one - 1, threads=2, **common)  # type: ignore[arg-type]
    assert smaller.factor > 1.0
