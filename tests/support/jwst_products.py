"""JWST pipeline products written by ``stdatamodels``, the library the JWST pipeline itself saves them with.

Each writer fills a datamodel and saves it, so the files have the layout the archive serves: an
empty primary HDU with ``TELESCOP = 'JWST'``, the arrays as named extensions (``SCI``, ``ERR``,
``DQ`` as uint32, ``VAR_*``, ``WHT``, ``CON``, ``WMAP``, ``EXTRACT1D`` tables) and the ``ASDF``
extension holding the metadata tree with the gwcs. The FITS WCS keywords are those the pipeline
writes from ``meta.wcsinfo``.

- :func:`write_cal` — a ``_cal`` image (``ImageModel``: SCI, DQ, ERR, VAR_POISSON, VAR_RNOISE, VAR_FLAT);
- :func:`write_i2d` — a ``_i2d`` resampled image (``ImageModel``: SCI, ERR, CON, WHT, VAR_*; no DQ);
- :func:`write_s3d` — a ``_s3d`` IFU cube (``IFUCubeModel``: SCI, DQ, ERR, WMAP) with a linear wavelength axis;
- :func:`write_x1d` — a ``_x1d`` spectrum (``MultiSpecModel``: one EXTRACT1D table with units).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import coordinates
from astropy import units as u
from astropy.modeling import models
from gwcs import coordinate_frames as cf
from gwcs import wcs as gwcs_wcs
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

#: The JWST pixel DQ bits, from the library that defines them.
DQ = dqflags.pixel


@dataclass(frozen=True)
class Sky:
    """A north-up TAN pointing: reference pixel (1-based FITS), its RA/Dec and the pixel scale."""

    ra: float = 53.16
    dec: float = -27.78
    crpix1: float = 1.0
    crpix2: float = 1.0
    scale_deg: float = 0.031 / 3600.0

    def shifted(self, dx: float, dy: float = 0.0) -> Sky:
        """The same sky with the reference pixel moved by ``dx, dy`` pixels (a tile whose corner is at ``dx, dy``)."""
        return Sky(self.ra, self.dec, self.crpix1 - dx, self.crpix2 - dy, self.scale_deg)


def _gwcs(sky: Sky) -> gwcs_wcs.WCS:
    """The imaging gwcs of ``sky`` (what the pipeline stores in the ASDF extension)."""
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(reference_frame=coordinates.ICRS(), name="world", unit=(u.deg, u.deg))
    transform = (
        (models.Shift(-(sky.crpix1 - 1.0)) & models.Shift(-(sky.crpix2 - 1.0)))
        | (models.Scale(-sky.scale_deg) & models.Scale(sky.scale_deg))
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(sky.ra, sky.dec, 180.0)
    )
    return gwcs_wcs.WCS([(detector, transform), (world, None)])


def _celestial(model: datamodels.JwstDataModel, sky: Sky) -> None:
    info = model.meta.wcsinfo
    info.ctype1, info.ctype2 = "RA---TAN", "DEC--TAN"
    info.cunit1, info.cunit2 = "deg", "deg"
    info.crval1, info.crval2 = sky.ra, sky.dec
    info.crpix1, info.crpix2 = sky.crpix1, sky.crpix2
    info.cdelt1, info.cdelt2 = -sky.scale_deg, sky.scale_deg
    info.pc1_1, info.pc1_2, info.pc2_1, info.pc2_2 = 1.0, 0.0, 0.0, 1.0


def _meta(model: datamodels.JwstDataModel, *, filter_name: str = "F200W") -> None:
    model.meta.telescope = "JWST"
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCB1"
    model.meta.instrument.filter = filter_name
    model.meta.target.catalog_name = "GOODS-S"


def write_cal(
    path: Path,
    sci: np.ndarray,
    *,
    sky: Sky = Sky(),
    dq: np.ndarray | None = None,
    err: np.ndarray | None = None,
) -> Path:
    """Write a ``_cal`` image: SCI, DQ (uint32), ERR and the three variance arrays, with FITS and gwcs WCS."""
    shape = sci.shape
    model = datamodels.ImageModel(shape)
    model.data = sci.astype(np.float32)
    model.dq = np.zeros(shape, np.uint32) if dq is None else dq.astype(np.uint32)
    model.err = np.full(shape, 0.1, np.float32) if err is None else err.astype(np.float32)
    variance = model.err.astype(np.float32) ** 2
    model.var_poisson = variance * np.float32(0.5)
    model.var_rnoise = variance * np.float32(0.4)
    model.var_flat = variance * np.float32(0.1)
    model.meta.bunit_data, model.meta.bunit_err = "MJy/sr", "MJy/sr"
    _meta(model)
    _celestial(model, sky)
    model.meta.wcs = _gwcs(sky)
    return _save(model, path)


def write_i2d(
    path: Path,
    sci: np.ndarray,
    *,
    sky: Sky = Sky(),
    err: np.ndarray | None = None,
    wht: np.ndarray | None = None,
    filter_name: str = "F200W",
) -> Path:
    """Write a ``_i2d`` resampled image: SCI, ERR, CON (context, 3-D), WHT and the variance arrays; no DQ."""
    shape = sci.shape
    model = datamodels.ImageModel(shape)
    model.data = sci.astype(np.float32)
    model.err = np.full(shape, 0.1, np.float32) if err is None else err.astype(np.float32)
    model.wht = np.ones(shape, np.float32) if wht is None else wht.astype(np.float32)
    model.con = np.ones((1, *shape), np.int32)
    variance = model.err.astype(np.float32) ** 2
    model.var_poisson = variance * np.float32(0.6)
    model.var_rnoise = variance * np.float32(0.3)
    model.var_flat = variance * np.float32(0.1)
    model.meta.bunit_data, model.meta.bunit_err = "MJy/sr", "MJy/sr"
    _meta(model, filter_name=filter_name)
    _celestial(model, sky)
    model.meta.wcs = _gwcs(sky)
    return _save(model, path)


def write_s3d(
    path: Path,
    sci: np.ndarray,
    *,
    wave_start_um: float = 1.0,
    wave_step_um: float = 0.001,
    dq: np.ndarray | None = None,
    sky: Sky = Sky(scale_deg=0.13 / 3600.0),
    wavelengths_um: np.ndarray | None = None,
) -> Path:
    """Write a ``_s3d`` IFU cube ``(n_wave, ny, nx)``: SCI, DQ, ERR, WMAP and a WAVE axis 3.

    The axis is linear (``wave_start_um``, ``wave_step_um``), or with ``wavelengths_um`` tabulated
    as the cube-building step writes a non-linear grid: ``CTYPE3 = 'WAVE-TAB'`` and the values in
    the ``WCS-TABLE`` extension.
    """
    shape = sci.shape
    model = datamodels.IFUCubeModel(shape)
    model.data = sci.astype(np.float32)
    model.dq = np.zeros(shape, np.uint32) if dq is None else dq.astype(np.uint32)
    model.err = np.full(shape, 0.1, np.float32)
    model.weightmap = np.ones(shape, np.float32)
    model.meta.bunit_data, model.meta.bunit_err = "MJy/sr", "MJy/sr"
    _meta(model)
    model.meta.instrument.name = "MIRI"
    model.meta.instrument.detector = "MIRIFUSHORT"
    _celestial(model, sky)
    info = model.meta.wcsinfo
    info.wcsaxes = 3
    info.pc3_3 = 1.0
    if wavelengths_um is None:
        info.ctype3, info.cunit3 = "WAVE", "um"
        info.crval3, info.cdelt3, info.crpix3 = wave_start_um, wave_step_um, 1.0
        return _save(model, path)
    n = wavelengths_um.size
    info.ctype3, info.cunit3 = "WAVE-TAB", "um"
    info.crval3, info.crpix3 = 1.0, 1.0
    info.ps3_0, info.ps3_1 = "WCS-TABLE", "wavelength"
    model.wavedim = f"(1,{n})"
    model.wavetable = np.array([(wavelengths_um[None, :],)], dtype=[("wavelength", "<f4", (1, n))])
    return _save(model, path)


def write_x1d(
    path: Path,
    wavelength_um: np.ndarray,
    flux_jy: np.ndarray,
    flux_error_jy: np.ndarray,
    *,
    dq: np.ndarray | None = None,
) -> Path:
    """Write a ``_x1d`` spectrum: one EXTRACT1D table (WAVELENGTH um, FLUX and FLUX_ERROR Jy, DQ, ...)."""
    spec = datamodels.SpecModel()
    table = np.zeros(wavelength_um.size, dtype=spec.get_dtype("spec_table"))
    table["WAVELENGTH"] = wavelength_um
    table["FLUX"] = flux_jy
    table["FLUX_ERROR"] = flux_error_jy
    table["DQ"] = 0 if dq is None else dq
    spec.spec_table = table
    columns = spec.spec_table.columns
    columns["WAVELENGTH"].unit = "um"
    for name in ("FLUX", "FLUX_ERROR"):
        columns[name].unit = "Jy"
    spec.name = "1"
    model = datamodels.MultiSpecModel()
    _meta(model)
    model.meta.instrument.name = "NIRSPEC"
    model.meta.instrument.detector = "NRS1"
    model.spec.append(spec)
    return _save(model, path)


def _save(model: datamodels.JwstDataModel, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    model.close()
    return path
