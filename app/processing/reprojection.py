"""Fast, exact-enough reprojection of celestial images onto a common grid.

Two jobs, shared by composites and mosaics:

* :func:`optimal_celestial_grid` computes a north-up TAN grid covering a set of images from their
  headers only (WCS and shape), at the finest input pixel scale unless told otherwise. It follows
  the semantics of ``reproject.mosaicking.find_optimal_celestial_wcs`` (frame of the first input,
  reference at the mean of the inputs' reference points, pixel-edge bounds) but samples every edge
  of every input, so wide or distorted fields are covered too.
* :func:`reproject_fast` resamples one image onto a grid. The exact pixel-to-pixel mapping
  (output pixel -> sky -> input pixel, with astropy) is computed only on a coarse lattice of
  control points; inside each lattice cell the mapping is interpolated bilinearly. The
  interpolation error is measured at check points (cell centres and edge midpoints) and every
  cell whose error exceeds ``tolerance`` pixels is computed exactly, pixel by pixel, so wide
  fields and distortion stay exact. The resampling itself is bilinear (the same values as
  ``scipy.ndimage.map_coordinates(order=1)``, computed with four vectorised gathers, about twice as
  fast), NaN outside the input (same edge rule as ``reproject_interp``:
  the outer half of the border pixels takes the border value) and NaN-aware: invalid input pixels
  are excluded by normalised interpolation instead of spreading as zeros. The output is processed
  in row bands so the temporary coordinate arrays stay bounded. When most cells fail the check
  (the mapping cannot be bounded), it falls back to ``reproject.reproject_interp``.

:func:`downscale_wcs` gives the WCS of a plane block-averaged by an integer factor (as
:func:`app.processing.fits_io.read_plane` produces), including SIP distortion terms.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales, wcs_to_celestial_frame

from app.processing.parallel import map_in_threads

logger = logging.getLogger("app.processing.reprojection")

#: Default lattice step of control points, in output pixels.
DEFAULT_CONTROL_STEP = 64
#: Default maximum interpolation error of the pixel mapping, in input pixels.
DEFAULT_TOLERANCE = 0.01
#: Output pixels resampled per band (bounds the temporary coordinate arrays: about 40 bytes per pixel).
BAND_PIXELS = 1 << 18
#: Fraction of failing cells above which the mapping counts as unbounded (fallback to reproject_interp).
MAX_FAILING_FRACTION = 0.5
#: An output pixel is valid when at least this fraction of its interpolation weight is on valid input.
MIN_VALID_WEIGHT = 0.5


@dataclass(frozen=True)
class Grid:
    """A 2-D celestial pixel grid: a WCS and a shape ``(ny, nx)``."""

    wcs: WCS
    shape: tuple[int, int]

    @property
    def ny(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def nx(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def n_pixels(self) -> int:
        """Number of pixels of the grid."""
        return self.shape[0] * self.shape[1]

    @property
    def pixel_scale_deg(self) -> float:
        """The smaller of the two pixel scales, in degrees."""
        return float(np.min(np.abs(proj_plane_pixel_scales(self.wcs))))

    def key(self) -> str:
        """Return a stable identifier of the grid (WCS header text and shape), for cache keys."""
        text = self.wcs.to_header(relax=True).tostring() + f"|{self.shape}"
        return hashlib.sha1(text.encode()).hexdigest()

    def header(self) -> fits.Header:
        """FITS header of the grid (WCS keywords only)."""
        return self.wcs.to_header(relax=True)

    def rescaled(self, factor: float) -> Grid:
        """Cover the same sky area with pixels ``factor`` times larger (``factor > 1`` shrinks the grid).

        The pixel edges of the corner stay where they are; the shape is rounded up so the whole
        area stays covered.
        """
        if not factor > 0:
            raise ValueError(f"factor must be positive, got {factor}")
        if factor == 1:
            return self
        wcs = self.wcs.deepcopy()
        wcs.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / factor + 0.5
        if wcs.wcs.has_cd():
            wcs.wcs.cd = np.asarray(wcs.wcs.cd) * factor
        else:
            wcs.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * factor
        wcs.wcs.set()
        shape = (max(1, math.ceil(self.ny / factor - 1e-9)), max(1, math.ceil(self.nx / factor - 1e-9)))
        return Grid(wcs, shape)

    def blocks(self, side: int) -> list[tuple[int, int, int, int]]:
        """Return the grid cut into blocks of at most ``side`` x ``side`` pixels, row-major ``(y0, y1, x0, x1)``."""
        if side < 1:
            raise ValueError(f"side must be >= 1, got {side}")
        return [
            (y0, min(self.ny, y0 + side), x0, min(self.nx, x0 + side))
            for y0 in range(0, self.ny, side)
            for x0 in range(0, self.nx, side)
        ]

    def cutout(self, y0: int, y1: int, x0: int, x1: int) -> Grid:
        """Cut out the sub-grid of rows ``y0:y1`` and columns ``x0:x1``."""
        if not (0 <= y0 < y1 <= self.ny and 0 <= x0 < x1 <= self.nx):
            raise ValueError(f"cutout [{y0}:{y1}, {x0}:{x1}] outside grid of shape {self.shape}")
        wcs = self.wcs.deepcopy()
        wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([x0, y0], dtype=float)
        wcs.wcs.set()
        return Grid(wcs, (y1 - y0, x1 - x0))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence astropy's and numpy's warnings about WCS fixes and invalid values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def downscale_wcs(wcs: WCS, factor: int) -> WCS:
    """WCS of an image block-averaged by ``factor`` along both axes.

    New 0-based pixel ``i`` covers old pixels ``f*i .. f*i + f - 1``, so its centre is old pixel
    ``f*i + (f - 1) / 2``. SIP coefficients are rescaled to the new pixel units.
    """
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    if factor == 1:
        return wcs
    f = float(factor)
    new = wcs.deepcopy()
    new.wcs.crpix = (np.asarray(new.wcs.crpix) - 0.5) / f + 0.5
    if new.wcs.has_cd():
        new.wcs.cd = np.asarray(new.wcs.cd) * f
    else:
        new.wcs.cdelt = np.asarray(new.wcs.cdelt) * f
    if new.sip is not None:
        from astropy.wcs import Sip

        def scale(coeffs: np.ndarray | None, inverse: bool) -> np.ndarray | None:
            if coeffs is None:
                return None
            out = np.array(coeffs, dtype=float, copy=True)
            for p in range(out.shape[0]):
                for q in range(out.shape[1]):
                    out[p, q] *= f ** (p + q - 1)
            return out

        sip = new.sip
        new.sip = Sip(
            scale(sip.a, False),
            scale(sip.b, False),
            scale(sip.ap, True),
            scale(sip.bp, True),
            (np.asarray(new.wcs.crpix)),
        )
    new.wcs.set()
    return new


def _lonlat_axes(wcs: WCS) -> tuple[int, int]:
    return int(wcs.wcs.lng), int(wcs.wcs.lat)


def _pixel_scale_deg(wcs: WCS) -> float:
    return float(np.min(np.abs(proj_plane_pixel_scales(wcs))))


def _edge_pixels(shape: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-edge positions sampled along the four borders (0-based, edges at -0.5 and n-0.5)."""
    ny, nx = shape
    t = np.linspace(0.0, 1.0, n)
    xs_edge = -0.5 + t * nx
    ys_edge = -0.5 + t * ny
    x = np.concatenate([xs_edge, np.full(n, nx - 0.5), xs_edge[::-1], np.full(n, -0.5)])
    y = np.concatenate([np.full(n, -0.5), ys_edge, np.full(n, ny - 0.5), ys_edge[::-1]])
    return x, y


def optimal_celestial_grid(
    inputs: Sequence[tuple[WCS, tuple[int, int]]],
    *,
    resolution_deg: float | None = None,
    edge_samples: int = 9,
) -> Grid:
    """North-up TAN grid that covers every input image, computed from headers only.

    Parameters
    ----------
    inputs
        ``(celestial WCS, (ny, nx))`` of each image.
    resolution_deg
        Pixel scale of the grid; default the finest input pixel scale.
    edge_samples
        Points sampled along each image edge (>= 2; corners included).
    """
    if not inputs:
        raise ValueError("at least one input is required")
    if edge_samples < 2:
        raise ValueError(f"edge_samples must be >= 2, got {edge_samples}")
    first_wcs = inputs[0][0]
    frame = wcs_to_celestial_frame(first_wcs)
    boundary: list[SkyCoord] = []
    references: list[SkyCoord] = []
    scales: list[float] = []
    with _quiet():
        for wcs, shape in inputs:
            if wcs.pixel_n_dim != 2:
                raise ValueError("input WCS must be 2-dimensional and celestial")
            x, y = _edge_pixels(shape, edge_samples)
            boundary.append(wcs.pixel_to_world(x, y).transform_to(frame))
            cx, cy = (np.asarray(wcs.wcs.crpix) - 1.0).tolist()
            references.append(wcs.pixel_to_world(cx, cy).transform_to(frame))
            scales.append(_pixel_scale_deg(wcs))
        ref_xyz = np.mean([r.cartesian.xyz.value for r in references], axis=0)
        ref = SkyCoord(*ref_xyz, representation_type="cartesian", frame=frame)
        ref.representation_type = "unitspherical"
        resolution = float(resolution_deg) if resolution_deg else float(min(scales))
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        out = WCS(naxis=2)
        lon_name = {"icrs": "RA", "fk5": "RA", "fk4": "RA", "galactic": "GLON"}.get(frame.name, "RA")
        lat_name = {"galactic": "GLAT"}.get(frame.name, "DEC")
        out.wcs.ctype = [f"{lon_name:-<4}-TAN", f"{lat_name:-<4}-TAN"]
        out.wcs.cunit = ["deg", "deg"]
        sph = ref.frame.represent_as("unitspherical")
        out.wcs.crval = [float(sph.lon.deg), float(sph.lat.deg)]
        out.wcs.cdelt = [-resolution, resolution]
        out.wcs.crpix = [1.0, 1.0]
        if frame.name in ("icrs", "fk5", "fk4"):
            out.wcs.radesys = frame.name.upper()
            if frame.name in ("fk5", "fk4"):
                out.wcs.equinox = float(frame.equinox.jyear)
        out.wcs.set()
        all_points = SkyCoord(boundary) if len(boundary) > 1 else boundary[0]
        px, py = out.world_to_pixel(all_points)
    if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
        raise ValueError("could not project the input footprints onto a common grid")
    xmin, xmax = float(px.min()), float(px.max())
    ymin, ymax = float(py.min()), float(py.max())
    # px, py are 0-based positions of pixel edges; put the lower-left edge at -0.5.
    out.wcs.crpix = [1.0 - xmin - 0.5, 1.0 - ymin - 0.5]
    out.wcs.set()
    nx = max(1, round(xmax - xmin))
    ny = max(1, round(ymax - ymin))
    return Grid(out, (ny, nx))


class _Mapper:
    """Exact output-pixel -> input-pixel mapping between two celestial WCS."""

    def __init__(self, wcs_in: WCS, wcs_out: WCS) -> None:
        self.wcs_in = wcs_in
        self.wcs_out = wcs_out
        frame_in = wcs_to_celestial_frame(wcs_in)
        frame_out = wcs_to_celestial_frame(wcs_out)
        self.same_frame = frame_in.is_equivalent_frame(frame_out)
        self.frame_in = frame_in
        self.out_axes = _lonlat_axes(wcs_out)
        self.in_axes = _lonlat_axes(wcs_in)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input pixel coordinates (0-based x, y) of output pixels ``(x, y)``; NaN where undefined."""
        shape = np.shape(x)
        xf = np.asarray(x, dtype=np.float64).ravel()
        yf = np.asarray(y, dtype=np.float64).ravel()
        with _quiet():
            if self.same_frame:
                world = self.wcs_out.all_pix2world(xf, yf, 0)
                lon, lat = world[self.out_axes[0]], world[self.out_axes[1]]
                args = [lon, lat] if self.in_axes[0] == 0 else [lat, lon]
                try:
                    xi, yi = self.wcs_in.all_world2pix(args[0], args[1], 0, quiet=True)
                except Exception:  # non-convergence of distortion inversion etc.
                    xi, yi = self.wcs_in.wcs_world2pix(args[0], args[1], 0)
            else:
                sky = self.wcs_out.pixel_to_world(xf, yf).transform_to(self.frame_in)
                xi, yi = self.wcs_in.world_to_pixel(sky)
        return np.asarray(xi, dtype=np.float64).reshape(shape), np.asarray(yi, dtype=np.float64).reshape(shape)


def _nodes(n: int, step: int) -> np.ndarray:
    nodes = np.arange(0, n, step, dtype=np.int64)
    if nodes[-1] != n - 1:
        nodes = np.append(nodes, n - 1)
    return nodes


def _interp_axis(nodes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel 0..n-1: the lattice cell index and the fractional position inside it."""
    pix = np.arange(n, dtype=np.float64)
    if nodes.size == 1:
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    cell = np.clip(np.searchsorted(nodes, pix, side="right") - 1, 0, nodes.size - 2)
    frac = (pix - nodes[cell]) / (nodes[cell + 1] - nodes[cell])
    return cell, frac


@dataclass
class PixelMap:
    """The mapping of an output grid onto input pixels, as a lattice plus exact patches."""

    shape: tuple[int, int]
    ynodes: np.ndarray
    xnodes: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    exact_cells: np.ndarray
    """Boolean ``(n_cell_y, n_cell_x)``: cells computed exactly pixel by pixel."""
    max_error: float
    """Largest interpolation error seen at the check points of accepted cells (input pixels)."""
    mapper: _Mapper

    @property
    def failing_fraction(self) -> float:
        """Fraction of the lattice cells computed exactly pixel by pixel (0 without cells)."""
        return float(self.exact_cells.mean()) if self.exact_cells.size else 0.0

    def prepare(self) -> None:
        """Compute the per-pixel lattice axes now (before several threads read them)."""
        _ = self._x_axis, self._y_axis

    @cached_property
    def _x_axis(self) -> tuple[np.ndarray, np.ndarray]:
        return _interp_axis(self.xnodes, self.shape[1])

    @cached_property
    def _y_axis(self) -> tuple[np.ndarray, np.ndarray]:
        return _interp_axis(self.ynodes, self.shape[0])

    def coordinates(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """Input ``(x, y)`` pixel coordinates of output rows ``y0:y1`` and columns ``x0:x1``.

        The lattice is interpolated along x on its node rows (small), then each output row is
        ``row_j + fy * (row_j+1 - row_j)`` of its lattice cell: two passes over the band, written in place.
        """
        xcell, xfrac = self._x_axis
        ycell, yfrac = self._y_axis
        xcell, xfrac = xcell[x0:x1], xfrac[x0:x1]
        ycell, yfrac = ycell[y0:y1], yfrac[y0:y1]
        first = int(ycell[0]) if ycell.size else 0
        last = min(int(ycell[-1]) + 2, self.ynodes.size) if ycell.size else 1
        out = []
        for table in (self.node_x[first:last], self.node_y[first:last]):  # the node rows of this band only
            if self.xnodes.size == 1:
                rows = np.repeat(table[:, :1], x1 - x0, axis=1)
            else:
                rows = table[:, xcell] * (1.0 - xfrac) + table[:, xcell + 1] * xfrac
            full = np.empty((y1 - y0, x1 - x0), dtype=np.float64)
            if self.ynodes.size == 1:
                full[...] = rows[:1]
            else:
                steps = np.diff(rows, axis=0)
                cuts = np.flatnonzero(np.diff(ycell)) + 1
                for a, b in zip(np.r_[0, cuts], np.r_[cuts, ycell.size], strict=True):
                    cell = ycell[a] - first
                    np.multiply(yfrac[a:b, None], steps[cell], out=full[a:b])
                    full[a:b] += rows[cell]
            out.append(full)
        xs, ys = out
        if self.exact_cells.any():
            self._patch_exact(xs, ys, y0, y1, x0, x1)
        return xs, ys

    def _patch_exact(self, xs: np.ndarray, ys: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
        for cy, cx in zip(*np.nonzero(self.exact_cells), strict=True):
            ya, yb = int(self.ynodes[cy]), int(self.ynodes[cy + 1]) + 1
            xa, xb = int(self.xnodes[cx]), int(self.xnodes[cx + 1]) + 1
            ya, yb, xa, xb = max(ya, y0), min(yb, y1), max(xa, x0), min(xb, x1)
            if ya >= yb or xa >= xb:
                continue
            gy, gx = np.mgrid[ya:yb, xa:xb]
            ex, ey = self.mapper(gx.astype(np.float64), gy.astype(np.float64))
            xs[ya - y0 : yb - y0, xa - x0 : xb - x0] = ex
            ys[ya - y0 : yb - y0, xa - x0 : xb - x0] = ey


def pixel_map(
    wcs_in: WCS,
    wcs_out: WCS,
    shape_out: tuple[int, int],
    *,
    step: int = DEFAULT_CONTROL_STEP,
    tolerance: float = DEFAULT_TOLERANCE,
) -> PixelMap:
    """Build the verified lattice mapping of ``shape_out`` pixels of ``wcs_out`` onto ``wcs_in`` pixels.

    Parameters
    ----------
    step
        Lattice step of the control points, in output pixels.
    tolerance
        Largest accepted interpolation error, in input pixels; cells above it are computed exactly.
    """
    if step < 2:
        raise ValueError(f"step must be >= 2, got {step}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    mapper = _Mapper(wcs_in, wcs_out)
    ny, nx = shape_out
    ynodes, xnodes = _nodes(ny, step), _nodes(nx, step)
    gy, gx = np.meshgrid(ynodes.astype(np.float64), xnodes.astype(np.float64), indexing="ij")
    node_x, node_y = mapper(gx, gy)
    ncy, ncx = max(1, ynodes.size - 1), max(1, xnodes.size - 1)
    bad = np.zeros((ncy, ncx), dtype=bool)
    finite = np.isfinite(node_x) & np.isfinite(node_y)
    max_error = 0.0
    if ynodes.size > 1 and xnodes.size > 1:
        corner_ok = finite[:-1, :-1] & finite[1:, :-1] & finite[:-1, 1:] & finite[1:, 1:]
        bad |= ~corner_ok
        ymid = (ynodes[:-1] + ynodes[1:]) / 2.0
        xmid = (xnodes[:-1] + xnodes[1:]) / 2.0
        # check points: cell centres, midpoints of the top edges and of the left edges of each cell
        checks = [
            (ymid[:, None], xmid[None, :], 0.5, 0.5),
            (ynodes[:-1, None].astype(float), xmid[None, :], 0.0, 0.5),
            (ymid[:, None], xnodes[None, :-1].astype(float), 0.5, 0.0),
        ]
        for cy_pos, cx_pos, fy, fx in checks:
            py, px = np.broadcast_arrays(cy_pos, cx_pos)
            ex, ey = mapper(px.astype(np.float64), py.astype(np.float64))
            for exact, table in ((ex, node_x), (ey, node_y)):
                interp = (
                    table[:-1, :-1] * (1 - fy) * (1 - fx)
                    + table[:-1, 1:] * (1 - fy) * fx
                    + table[1:, :-1] * fy * (1 - fx)
                    + table[1:, 1:] * fy * fx
                )
                err = np.abs(interp - exact)
                err = np.where(np.isfinite(err), err, np.inf)
                bad |= err > tolerance
                ok = err[~bad]
                if ok.size:
                    max_error = max(max_error, float(ok.max()))
    elif not finite.all():
        bad[:] = True
    return PixelMap(shape_out, ynodes, xnodes, node_x, node_y, bad, max_error, mapper)


def _bilinear_weights(
    xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat index of the lower-left neighbour and the fractional offsets of each (clipped, finite) sample."""
    ny, nx = shape
    x0 = xs.astype(np.int64)
    np.minimum(x0, nx - 2, out=x0)
    y0 = ys.astype(np.int64)
    np.minimum(y0, ny - 2, out=y0)
    fx = np.empty(xs.shape, dtype=np.float32)
    np.subtract(xs, x0, out=fx, casting="same_kind")
    fy = np.empty(ys.shape, dtype=np.float32)
    np.subtract(ys, y0, out=fy, casting="same_kind")
    y0 *= nx
    y0 += x0
    return y0, fx, fy


def _bilinear(flat: np.ndarray, nx: int, index: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a flattened image at precomputed neighbours (four gathers, float32).

    The right and upper neighbours are gathered from views of ``flat`` shifted by 1 and ``nx``, so
    no shifted copy of the index array is made. ``mode="clip"`` skips numpy's bounds check (the
    indices are in range by construction).
    """
    top = flat.take(index, mode="clip")
    step = flat[1:].take(index, mode="clip")
    step -= top
    step *= fx
    top += step
    bottom = flat[nx:].take(index, mode="clip")
    flat[nx + 1 :].take(index, out=step, mode="clip")
    step -= bottom
    step *= fx
    bottom += step
    bottom -= top
    bottom *= fy
    top += bottom
    return top


def _resample_band(
    data: np.ndarray,
    valid: np.ndarray | None,
    xs: np.ndarray,
    ys: np.ndarray,
) -> np.ndarray:
    """Bilinear samples of ``data`` at ``(xs, ys)``; NaN outside and where valid weight is too small.

    Same rule as ``reproject_interp``: samples within the outer half of the border pixels take the
    border value, samples beyond are NaN. ``xs`` and ``ys`` are modified (clipped) in place.
    """
    ny_in, nx_in = data.shape
    if xs.size == 0:
        return np.empty(xs.shape, dtype=np.float32)
    x_low, x_high, y_low, y_high = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    outside: np.ndarray | None = None  # NaN bounds (a NaN coordinate) fail every test below
    if not (x_low >= -0.5 and x_high <= nx_in - 0.5 and y_low >= -0.5 and y_high <= ny_in - 0.5):
        outside = ~((xs >= -0.5) & (xs <= nx_in - 0.5) & (ys >= -0.5) & (ys <= ny_in - 0.5))
        xs[outside] = 0.0  # NaN or far-away coordinates: any valid position, reset to NaN below
        ys[outside] = 0.0
    if outside is not None or not (x_low >= 0.0 and x_high <= nx_in - 1.0):
        np.clip(xs, 0.0, nx_in - 1.0, out=xs)
    if outside is not None or not (y_low >= 0.0 and y_high <= ny_in - 1.0):
        np.clip(ys, 0.0, ny_in - 1.0, out=ys)
    values: np.ndarray
    weight: np.ndarray | None
    if nx_in < 2 or ny_in < 2:
        from scipy.ndimage import map_coordinates

        coords = np.stack([ys, xs])
        values = map_coordinates(data, coords, order=1, mode="nearest", output=np.float32, prefilter=False)
        weight = (
            map_coordinates(valid, coords, order=1, mode="nearest", output=np.float32, prefilter=False)
            if valid is not None
            else None
        )
    else:
        index, fx, fy = _bilinear_weights(xs, ys, (ny_in, nx_in))
        values = _bilinear(data.reshape(-1), nx_in, index, fx, fy)
        weight = _bilinear(valid.reshape(-1), nx_in, index, fx, fy) if valid is not None else None
    if weight is not None:
        ok = weight >= np.float32(MIN_VALID_WEIGHT)
        np.divide(values, weight, out=values, where=ok)
        values[~ok] = np.nan
    if outside is not None:
        values[outside] = np.nan
    return values


def footprint_bbox(
    wcs_in: WCS, shape_in: tuple[int, int], grid: Grid, *, pad: int = 2
) -> tuple[int, int, int, int] | None:
    """Bounding box ``(y0, y1, x0, x1)`` of an input image on ``grid`` (from its edges), or None if disjoint."""
    x, y = _edge_pixels(shape_in, 33)
    mapper = _Mapper(grid.wcs, wcs_in)  # input pixels -> grid pixels
    gx, gy = mapper(x, y)
    ok = np.isfinite(gx) & np.isfinite(gy)
    if not ok.any():
        return None
    if not ok.all():
        return (0, grid.ny, 0, grid.nx)
    x0 = max(0, math.floor(gx.min()) - pad)
    x1 = min(grid.nx, math.ceil(gx.max()) + pad + 1)
    y0 = max(0, math.floor(gy.min()) - pad)
    y1 = min(grid.ny, math.ceil(gy.max()) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return (y0, y1, x0, x1)


def input_window(
    wcs_in: WCS, shape_in: tuple[int, int], grid: Grid, *, pad: int = 3
) -> tuple[int, int, int, int] | None:
    """Return the rows and columns ``(y0, y1, x0, x1)`` of an input image that ``grid`` samples, or None.

    The grid's edges are mapped into the input (the image of a convex grid lies inside the image of
    its border), widened by ``pad`` pixels for the bilinear neighbours and clamped to the input, so
    a reader can fetch just that window of a large image.
    """
    x, y = _edge_pixels(grid.shape, 33)
    ix, iy = _Mapper(wcs_in, grid.wcs)(x, y)
    ny, nx = shape_in
    ok = np.isfinite(ix) & np.isfinite(iy)
    if not ok.any():
        return None
    if not ok.all():
        return (0, ny, 0, nx)
    x0 = max(0, math.floor(ix.min()) - pad)
    x1 = min(nx, math.ceil(ix.max()) + pad + 1)
    y0 = max(0, math.floor(iy.min()) - pad)
    y1 = min(ny, math.ceil(iy.max()) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return (y0, y1, x0, x1)


def window_wcs(wcs: WCS, y0: int, x0: int) -> WCS:
    """Return the WCS of the window of an image that starts at row ``y0`` and column ``x0``."""
    if y0 == 0 and x0 == 0:
        return wcs
    return wcs.slice((slice(y0, None), slice(x0, None)))


def reproject_fast(
    data: np.ndarray,
    wcs_in: WCS,
    grid: Grid,
    *,
    step: int = DEFAULT_CONTROL_STEP,
    tolerance: float = DEFAULT_TOLERANCE,
    band_pixels: int = BAND_PIXELS,
    threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Reproject a 2-D image onto ``grid`` with bilinear interpolation; float32, NaN where not covered.

    Parameters
    ----------
    data
        2-D input image (NaN marks invalid pixels; they do not spread as zeros).
    wcs_in
        Celestial WCS of ``data``.
    grid
        Output grid.
    step, tolerance
        Control lattice step (output pixels) and accepted mapping error (input pixels).
    band_pixels
        Output pixels resampled at once (bounds temporary memory).
    threads
        Bands resampled at once (each on its own thread, with its own temporaries).
    out
        float32 array of ``grid.shape`` to write into (every pixel is written: NaN where not
        covered); a new one otherwise.
    """
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    pmap = pixel_map(wcs_in, grid.wcs, grid.shape, step=step, tolerance=tolerance)
    if pmap.failing_fraction > MAX_FAILING_FRACTION and pmap.exact_cells.size > 4:
        logger.info("reproject_fallback", extra={"failing_fraction": pmap.failing_fraction})
        exact = _reproject_interp(data, wcs_in, grid)
        if out is None:
            return exact
        out[...] = exact
        return out
    src = np.asarray(data, dtype=np.float32)
    if not src.flags.c_contiguous or src.dtype.byteorder not in ("=", "|"):
        src = np.ascontiguousarray(src, dtype=np.float32)
    finite = np.isfinite(src)
    valid: np.ndarray | None = None
    if not finite.all():
        valid = finite.astype(np.float32)
        src = np.where(finite, src, np.float32(0.0))
    del finite
    ny, nx = grid.shape
    if out is None:
        out = np.empty(grid.shape, dtype=np.float32)
    # Skip lattice rows/columns whose cells all map outside the input.
    ny_in, nx_in = src.shape
    rows = max(1, band_pixels // max(nx, 1))

    def band(y0: int) -> None:
        y1 = min(ny, y0 + rows)
        x_range = _inside_columns(pmap, y0, y1, nx_in, ny_in)
        if x_range is None:
            out[y0:y1] = np.nan
            return
        x0, x1 = x_range
        out[y0:y1, :x0] = np.nan
        out[y0:y1, x1:] = np.nan
        xs, ys = pmap.coordinates(y0, y1, x0, x1)
        out[y0:y1, x0:x1] = _resample_band(src, valid, xs, ys)

    pmap.prepare()  # lattice axes computed once, before the bands share them
    map_in_threads(band, range(0, ny, rows), threads)
    return out


def _inside_columns(pmap: PixelMap, y0: int, y1: int, nx_in: int, ny_in: int) -> tuple[int, int] | None:
    """Output column range of band ``y0:y1`` whose lattice cells may touch the input (None if none)."""
    ynodes, xnodes = pmap.ynodes, pmap.xnodes
    if ynodes.size < 2 or xnodes.size < 2:
        return (0, pmap.shape[1])
    cy0 = max(0, int(np.searchsorted(ynodes, y0, side="right")) - 1)
    cy1 = min(ynodes.size - 1, int(np.searchsorted(ynodes, y1 - 1, side="left")))
    cy1 = max(cy1, cy0 + 1)
    nxs = pmap.node_x[cy0 : cy1 + 1]
    nys = pmap.node_y[cy0 : cy1 + 1]
    margin = 2.0
    with np.errstate(invalid="ignore"):
        sides = (nxs < -margin, nxs > nx_in - 1 + margin, nys < -margin, nys > ny_in - 1 + margin)
    cells_out = np.zeros((nxs.shape[0] - 1, nxs.shape[1] - 1), dtype=bool)
    for side in sides:
        # a cell is outside when all four of its corners are beyond the same side
        cells_out |= side[:-1, :-1] & side[1:, :-1] & side[:-1, 1:] & side[1:, 1:]
    cells_out &= ~pmap.exact_cells[cy0:cy1]
    columns_in = np.logical_not(np.all(cells_out, axis=0))
    if not columns_in.any():
        return None
    first = int(np.argmax(columns_in))
    last = int(len(columns_in) - 1 - np.argmax(columns_in[::-1]))
    return int(xnodes[first]), int(xnodes[last + 1]) + 1


def _reproject_interp(data: np.ndarray, wcs_in: WCS, grid: Grid) -> np.ndarray:
    from reproject import reproject_interp

    with _quiet():
        result, _ = reproject_interp((data, wcs_in), grid.wcs, shape_out=grid.shape, order="bilinear")
    return np.asarray(result, dtype=np.float32)
