"""Request and response models of the mosaic endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas import DisplaySettings, HduSelection, NullMeansDefault

CombineMethod = Literal["mean", "sum", "first", "last", "min", "max", "median"]


class MosaicFile(DisplaySettings, HduSelection):
    """One input file, its extension and its display settings (only the first file's are used for PNG/JPEG).

    ``hdu_index`` or ``extname`` (with ``extver``) chooses the file's image extension; unset, its
    SCI image HDU (else its first image HDU).
    """

    file_path: str = Field(description="Storage key of the FITS file.")


class MosaicRequest(NullMeansDefault):
    """Body of ``POST /mosaic/generate``."""

    files: list[MosaicFile] = Field(min_length=2)
    output_format: Literal["png", "jpeg", "fits"] = "png"
    quality: int = Field(default=95, ge=1, le=100)
    width: int | None = Field(default=None, gt=0, le=8000)
    height: int | None = Field(default=None, gt=0, le=8000)
    combine_method: CombineMethod = Field(
        default="mean",
        description="How overlapping files combine. `mean` is inverse-variance weighted when every file carries "
        "weights of its image's shape: 1/ERR**2, else 1/sum(VAR_*), else WHT (X-Mosaic-Weighting says so).",
    )
    cmap: str = "grayscale"
    match_background: bool = Field(
        default=False,
        description="Extension: subtract per-file offsets so overlapping files agree (least squares on overlaps).",
    )


class FootprintRequest(BaseModel):
    """Body of ``POST /mosaic/footprint``."""

    file_paths: list[str] = Field(min_length=1)


class Footprint(BaseModel):
    """Sky corners and centre of one file (ICRS degrees, RA in ``[0, 360)``)."""

    file_path: str
    corners_ra: list[float]
    corners_dec: list[float]
    center_ra: float
    center_dec: float


class BoundingBox(BaseModel):
    """ICRS RA/Dec bounds over all footprints (degrees, RA in ``[0, 360)``; ``min_ra > max_ra`` across RA 0)."""

    min_ra: float
    max_ra: float
    min_dec: float
    max_dec: float


class FootprintResponse(BaseModel):
    """Body of the footprint answer."""

    footprints: list[Footprint]
    bounding_box: BoundingBox
    n_files: int
