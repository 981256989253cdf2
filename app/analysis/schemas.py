"""Request and response models of the analysis endpoints: region statistics, sources, tables, spectra.

Every optional request field accepts an explicit ``null`` (the .NET backend writes them), which
means "use the default".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.core.json_types import JsonInt, json_number
from app.processing.detection import METHODS
from app.schemas import closed_vocabulary

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RectangleRegion(BaseModel):
    """Pixel rectangle (0-based column ``x``, row ``y``); clamped to the image."""

    model_config = ConfigDict(strict=True)

    x: JsonInt = Field(ge=0, description="Column of the lower-left corner (0-based).")
    y: JsonInt = Field(ge=0, description="Row of the lower-left corner (0-based).")
    width: JsonInt = Field(gt=0, description="Width in pixels.")
    height: JsonInt = Field(gt=0, description="Height in pixels.")


class EllipseRegion(BaseModel):
    """Axis-aligned ellipse in pixel coordinates."""

    model_config = ConfigDict(strict=True)

    cx: FiniteFloat = Field(ge=0, description="Column of the centre (0-based pixels).")
    cy: FiniteFloat = Field(ge=0, description="Row of the centre (0-based pixels).")
    rx: FiniteFloat = Field(gt=0, description="Semi-axis along x (pixels).")
    ry: FiniteFloat = Field(gt=0, description="Semi-axis along y (pixels).")


class RegionStatisticsRequest(BaseModel):
    """Body of ``POST /analysis/region-statistics``."""

    file_path: str = Field(description="Storage key of the FITS file.")
    region_type: Literal["rectangle", "ellipse", "polygon"] = Field(
        description="Which of `rectangle`, `ellipse` or `polygon` describes the region (400 when it is null)."
    )
    rectangle: RectangleRegion | None = Field(default=None, description="The rectangle, for `region_type=rectangle`.")
    ellipse: EllipseRegion | None = Field(default=None, description="The ellipse, for `region_type=ellipse`.")
    polygon: list[Annotated[tuple[FiniteFloat, FiniteFloat], Field(strict=False)]] | None = Field(
        default=None, description="Pixel vertices `[[x, y], ...]` (at least 3) when `region_type` is `polygon`."
    )
    hdu_index: JsonInt | None = Field(
        default=-1, description="-1 (or null) = the default image HDU: SCI when the file has one, else the first."
    )

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "file_path": "mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits",
                    "region_type": "ellipse",
                    "rectangle": None,
                    "ellipse": {"cx": 512.0, "cy": 480.5, "rx": 40.0, "ry": 25.0},
                    "polygon": None,
                    "hdu_index": -1,
                }
            ]
        },
    )


class RegionStatisticsResponse(BaseModel):
    """Statistics of the finite pixels of the region."""

    mean: float = Field(description="Mean of the finite pixels in the region.")
    median: float = Field(description="Median of the finite pixels.")
    std: float = Field(description="Standard deviation of the finite pixels.")
    min: float = Field(description="Smallest finite pixel.")
    max: float = Field(description="Largest finite pixel.")
    sum: float = Field(description="Sum of the finite pixels.")
    pixel_count: int = Field(description="Number of finite pixels in the region.")


class DetectSourcesRequest(BaseModel):
    """Body of ``POST /analysis/detect-sources``."""

    file_path: str = Field(description="Storage key of the FITS file.")
    threshold_sigma: float | None = Field(
        default=5.0, ge=1.0, le=50.0, description="Detection threshold in background RMS (null = 5)."
    )
    fwhm: float | None = Field(
        default=3.0, ge=0.5, le=20.0, description="Expected FWHM of the sources in pixels (null = 3)."
    )
    method: str | None = Field(
        default="auto",
        description="Detection method; null = `auto` (`segmentation`). 400 for another.",
        json_schema_extra=closed_vocabulary(METHODS),
    )
    npixels: Annotated[int, Field(strict=False, ge=1, le=1000), BeforeValidator(json_number)] | None = Field(
        default=10, description="Smallest source area in pixels, for `segmentation` (null = 10)."
    )
    deblend: bool | None = Field(default=True, description="Deblend touching sources, for `segmentation`.")
    hdu_index: JsonInt | None = Field(
        default=-1, description="-1 (or null) = the default image HDU: SCI when the file has one, else the first."
    )
    weight_hdu: Annotated[int, Field(ge=0)] | Literal["auto", "none"] | None = Field(
        default="auto",
        description="Per-pixel noise that scales the detection threshold, so a low-exposure edge does not "
        "produce spurious sources: `auto` (or null) uses a `WHT` (noise 1/sqrt(WHT)) or `ERR` extension of the "
        "image's shape when the file has one; `none` uses the background RMS map only; an HDU index names the "
        "extension (its EXTNAME must be `WHT` or `ERR`, else 400). Pixels of zero weight are not searched.",
    )

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "file_path": "mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits",
                    "threshold_sigma": 5.0,
                    "fwhm": 3.0,
                    "method": "segmentation",
                    "npixels": 10,
                    "deblend": True,
                    "hdu_index": -1,
                }
            ]
        },
    )


class Source(BaseModel):
    """One detected source (pixel coordinates, background-subtracted fluxes)."""

    id: int = Field(description="1-based rank by flux.")
    xcentroid: float = Field(description="Column of the centroid (0-based pixels).")
    ycentroid: float = Field(description="Row of the centroid (0-based pixels).")
    flux: float | None = Field(description="Background-subtracted flux, or null.")
    sharpness: float | None = Field(description="Sharpness (star finders), or null.")
    roundness: float | None = Field(description="Roundness (star finders), or null.")
    fwhm: float | None = Field(description="Moment-based FWHM in pixels, or null.")
    peak: float | None = Field(description="Peak background-subtracted value, or null.")


class DetectSourcesResponse(BaseModel):
    """Sources sorted by flux (descending), numbered 1..n."""

    sources: list[Source] = Field(description="The sources, brightest first (at most 20 000).")
    n_sources: int = Field(description="Number of sources returned.")
    method: str = Field(description="The method used (`auto` resolved).")
    threshold_sigma: float = Field(description="The threshold in background RMS.")
    threshold_value: float = Field(description="The threshold in data units above the background.")
    estimated_fwhm: float | None = Field(description="Median FWHM of the sources in pixels, or null.")


class ColumnInfo(BaseModel):
    """One table column."""

    name: str = Field(description="Column name (TTYPE).")
    dtype: str = Field(description="FITS format code (TFORM), e.g. `1E`, `20A`.")
    unit: str | None = Field(description="Unit (TUNIT), or null.")
    format: str | None = Field(description="Display format (TDISP), or null.")
    is_array: bool = Field(description="Whether each cell holds an array.")
    array_shape: list[int] | None = Field(description="Shape of an array cell, or null.")


class TableHduInfo(BaseModel):
    """One table HDU."""

    index: int = Field(description="Index of the HDU in the file.")
    name: str | None = Field(description="EXTNAME, or null.")
    hdu_type: str = Field(description="`BinTableHDU` or `TableHDU`.")
    n_rows: int = Field(description="Number of rows.")
    n_columns: int = Field(description="Number of columns.")
    columns: list[ColumnInfo] = Field(description="The columns, in order.")


class TableInfoResponse(BaseModel):
    """Body of ``GET /analysis/table-info``."""

    file_name: str = Field(description="Name of the file (last part of the key).")
    table_hdus: list[TableHduInfo] = Field(description="Every table HDU of the file.")


class TableDataResponse(BaseModel):
    """Body of ``GET /analysis/table-data``."""

    hdu_index: int = Field(description="The table HDU read.")
    hdu_name: str | None = Field(description="Its EXTNAME, or null.")
    total_rows: int = Field(description="Rows after the search.")
    total_columns: int = Field(description="Number of columns.")
    page: int = Field(description="The page returned (clamped to the last page).")
    page_size: int = Field(description="Rows per page.")
    columns: list[ColumnInfo] = Field(description="The columns, in order.")
    rows: list[dict[str, Any]] = Field(
        description="One object per row, keyed by column name; NaN, Inf and masked cells are null."
    )
    sort_column: str | None = Field(description="The sort column, or null.")
    sort_direction: str | None = Field(description="The requested direction as sent (`desc` reverses), or null.")


class SpectralColumn(BaseModel):
    """One column of a spectrum."""

    name: str = Field(description="Column name.")
    unit: str | None = Field(description="Unit (TUNIT), or null.")
    n_points: int = Field(description="Number of values.")


class SpectralDataResponse(BaseModel):
    """Body of ``GET /analysis/spectral-data``."""

    hdu_index: int = Field(description="The table HDU read.")
    hdu_name: str | None = Field(description="Its EXTNAME, or null.")
    n_points: int = Field(description="Number of points of the spectrum.")
    columns: list[SpectralColumn] = Field(description="The wavelength column first, then the spectral columns.")
    data: dict[str, list[float | None]] = Field(description="Values of each column by name; null where not finite.")
