"""Request and response models of the analysis endpoints.

Every optional request field accepts an explicit ``null`` (the .NET backend writes them), which
means "use the default".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RectangleRegion(BaseModel):
    """Pixel rectangle (0-based column ``x``, row ``y``); clamped to the image."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class EllipseRegion(BaseModel):
    """Axis-aligned ellipse in pixel coordinates."""

    cx: FiniteFloat = Field(ge=0)
    cy: FiniteFloat = Field(ge=0)
    rx: FiniteFloat = Field(gt=0)
    ry: FiniteFloat = Field(gt=0)


class RegionStatisticsRequest(BaseModel):
    """Body of ``POST /analysis/region-statistics``."""

    file_path: str
    region_type: Literal["rectangle", "ellipse", "polygon"]
    rectangle: RectangleRegion | None = None
    ellipse: EllipseRegion | None = None
    polygon: list[tuple[FiniteFloat, FiniteFloat]] | None = Field(
        default=None, description="Pixel vertices `[[x, y], ...]` (at least 3) when `region_type` is `polygon`."
    )
    hdu_index: int | None = Field(
        default=-1, description="-1 (or null) = the default image HDU: SCI when the file has one, else the first."
    )


class RegionStatisticsResponse(BaseModel):
    """Statistics of the finite pixels of the region."""

    mean: float
    median: float
    std: float
    min: float
    max: float
    sum: float
    pixel_count: int


class DetectSourcesRequest(BaseModel):
    """Body of ``POST /analysis/detect-sources``."""

    file_path: str
    threshold_sigma: float | None = Field(default=5.0, ge=1.0, le=50.0)
    fwhm: float | None = Field(default=3.0, ge=0.5, le=20.0)
    method: str | None = Field(default="auto", description="`auto`, `daofind`, `iraf` or `segmentation` (else 400).")
    npixels: int | None = Field(default=10, ge=1, le=1000)
    deblend: bool | None = True
    hdu_index: int | None = Field(
        default=-1, description="-1 (or null) = the default image HDU: SCI when the file has one, else the first."
    )
    weight_hdu: Annotated[int, Field(ge=0)] | Literal["auto", "none"] | None = Field(
        default="auto",
        description="Per-pixel noise that scales the detection threshold, so a low-exposure edge does not "
        "produce spurious sources: `auto` (or null) uses a `WHT` (noise 1/sqrt(WHT)) or `ERR` extension of the "
        "image's shape when the file has one; `none` uses the background RMS map only; an HDU index names the "
        "extension (its EXTNAME must be `WHT` or `ERR`, else 400). Pixels of zero weight are not searched.",
    )


class Source(BaseModel):
    """One detected source (pixel coordinates, background-subtracted fluxes)."""

    id: int
    xcentroid: float
    ycentroid: float
    flux: float | None
    sharpness: float | None
    roundness: float | None
    fwhm: float | None
    peak: float | None


class DetectSourcesResponse(BaseModel):
    """Sources sorted by flux (descending), numbered 1..n."""

    sources: list[Source]
    n_sources: int
    method: str
    threshold_sigma: float
    threshold_value: float
    estimated_fwhm: float | None


class ColumnInfo(BaseModel):
    """One table column."""

    name: str
    dtype: str
    unit: str | None
    format: str | None
    is_array: bool
    array_shape: list[int] | None


class TableHduInfo(BaseModel):
    """One table HDU."""

    index: int
    name: str | None
    hdu_type: str
    n_rows: int
    n_columns: int
    columns: list[ColumnInfo]


class TableInfoResponse(BaseModel):
    """Body of ``GET /analysis/table-info``."""

    file_name: str
    table_hdus: list[TableHduInfo]


class TableDataResponse(BaseModel):
    """Body of ``GET /analysis/table-data``."""

    hdu_index: int
    hdu_name: str | None
    total_rows: int
    total_columns: int
    page: int
    page_size: int
    columns: list[ColumnInfo]
    rows: list[dict[str, Any]]
    sort_column: str | None
    sort_direction: str | None


class SpectralColumn(BaseModel):
    """One column of a spectrum."""

    name: str
    unit: str | None
    n_points: int


class SpectralDataResponse(BaseModel):
    """Body of ``GET /analysis/spectral-data``."""

    hdu_index: int
    hdu_name: str | None
    n_points: int
    columns: list[SpectralColumn]
    data: dict[str, list[float | None]]
