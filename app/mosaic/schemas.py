"""Request and response models of the mosaic endpoints: ``POST /mosaic/generate`` and ``POST /mosaic/footprint``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.core.json_types import JsonInt, json_number
from app.core.openapi import header
from app.schemas import DisplaySettings, HduSelection, NullMeansDefault, closed_vocabulary

CombineMethod = Literal["mean", "sum", "first", "last", "min", "max", "median"]
#: Width or height of a mosaic image (the bounds sit before the validator, so the schema shows them).
ImageSide = Annotated[int, Field(strict=False, gt=0, le=8000), BeforeValidator(json_number)]
#: Colormaps of a PNG/JPEG mosaic (another name is refused with 400).
MOSAIC_CMAPS = ("grayscale", "gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet")


class MosaicFile(DisplaySettings, HduSelection):
    """One input file, its extension and its display settings (only the first file's are used for PNG/JPEG).

    ``hdu_index`` or ``extname`` (with ``extver``) chooses the file's image extension; unset, its
    SCI image HDU (else its first image HDU).
    """

    file_path: str = Field(description="Storage key of the FITS file.")


class MosaicRequest(NullMeansDefault):
    """Body of ``POST /mosaic/generate``."""

    files: list[MosaicFile] = Field(min_length=2, description="The files to combine, at least two.")
    output_format: Literal["png", "jpeg", "fits"] = Field(
        default="png", description="`fits` streams a float32 FITS file; `png`/`jpeg` render an image."
    )
    quality: JsonInt = Field(default=95, ge=1, le=100, description="JPEG quality.")
    width: ImageSide | None = Field(
        default=None, description="Width of the image (pixels); null for the grid's. 400 with `fits`."
    )
    height: ImageSide | None = Field(
        default=None, description="Height of the image (pixels); null for the grid's. 400 with `fits`."
    )
    combine_method: CombineMethod = Field(
        default="mean",
        description="How overlapping files combine. `mean` is inverse-variance weighted when every file carries "
        "weights of its image's shape: 1/ERR**2, else 1/sum(VAR_*), else WHT (X-Mosaic-Weighting says so).",
    )
    cmap: str = Field(
        default="grayscale",
        description="Colormap of a PNG/JPEG mosaic (400 for another).",
        json_schema_extra=closed_vocabulary(MOSAIC_CMAPS),
    )
    match_background: bool = Field(
        default=False,
        description="Extension: subtract per-file offsets so overlapping files agree (least squares on overlaps).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "files": [
                        {"file_path": "mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits", "stretch": "asinh"},
                        {"file_path": "mast/jw02733-o002/jw02733_nircam_f444w_i2d.fits", "stretch": "asinh"},
                    ],
                    "output_format": "png",
                    "width": 2000,
                    "height": 1500,
                    "combine_method": "mean",
                    "cmap": "inferno",
                    "match_background": True,
                }
            ]
        }
    )


class FootprintRequest(BaseModel):
    """Body of ``POST /mosaic/footprint``."""

    file_paths: list[str] = Field(min_length=1, description="Storage keys of the FITS files.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "file_paths": [
                        "mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits",
                        "mast/jw02733-o002/jw02733_nircam_f444w_i2d.fits",
                    ]
                }
            ]
        },
    )


class Footprint(BaseModel):
    """Sky corners and centre of one file (ICRS degrees, RA in ``[0, 360)``)."""

    file_path: str = Field(description="The storage key, as requested.")
    corners_ra: list[float] = Field(description="RA of pixels (0,0), (w-1,0), (w-1,h-1), (0,h-1).")
    corners_dec: list[float] = Field(description="Dec of the same four corners.")
    center_ra: float = Field(description="RA of pixel (w/2, h/2).")
    center_dec: float = Field(description="Dec of pixel (w/2, h/2).")


class BoundingBox(BaseModel):
    """ICRS RA/Dec bounds over all footprints (degrees, RA in ``[0, 360)``; ``min_ra > max_ra`` across RA 0)."""

    min_ra: float = Field(description="Westmost RA (greater than max_ra when the box crosses RA 0).")
    max_ra: float = Field(description="Eastmost RA.")
    min_dec: float = Field(description="Smallest Dec.")
    max_dec: float = Field(description="Largest Dec.")


class FootprintResponse(BaseModel):
    """Body of the footprint answer."""

    footprints: list[Footprint] = Field(description="One footprint per file, in request order.")
    bounding_box: BoundingBox = Field(description="Bounds over all footprints.")
    n_files: int = Field(description="Number of footprints.")


#: The ``X-Mosaic-*`` headers of a mosaic (OpenAPI header objects).
MOSAIC_HEADERS: dict[str, dict[str, object]] = {
    "X-Mosaic-Grid-Shape": header("`<nx>x<ny>` of the output grid."),
    "X-Mosaic-Downscaled": header(
        "`true` when the grid was reduced to fit `MAX_MOSAIC_OUTPUT_PIXELS` or the size asked."
    ),
    "X-Mosaic-Downscale-Factor": header("Reduction factor of the grid (`1.000` when none)."),
    "X-Mosaic-Background-Offsets": header("Offset subtracted from each file (`match_background`), or `none`."),
    "X-Mosaic-Weighting": header("`inverse-variance` when the files' ERR weighted the mean, else `none`."),
    "X-Mosaic-Blocks": header("Number of output blocks the mosaic was built from."),
    "X-Mosaic-Stretch-Fallback": header("`zscale` when the first file's stretch name was unknown (PNG/JPEG only)."),
}
