"""Request and response models of the viewer endpoints (thumbnail, preview, histogram, pixel data, cube info).

The query parameters of preview, histogram and pixel data are models too (:class:`ViewerDisplay`
and its extensions): read from the query string by :func:`app.api.query.query_model`, where a
value out of range answers 400 before any file is looked up, as the contract requires. Their
stretch group is the shared :class:`~app.schemas.DisplaySettings`, and every viewer endpoint
takes the shared extension choice :class:`~app.schemas.HduSelection` (``hdu_index``, or
``extname`` with ``extver``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.processing.colormaps import COLORMAP_NAMES
from app.processing.enhancement import STRETCH_NAMES, StretchName
from app.processing.filters import SIGMA_RANGE, SIZE_RANGE, SMOOTH_METHODS
from app.schemas import DisplaySettings, HduSelection, closed_vocabulary

IMAGE_FORMATS = ("png", "jpeg")
PREVIEW_CMAPS = ("grayscale", *COLORMAP_NAMES)
AVM_METADATA_KEYS = ("target_name", "instrument", "filter", "description", "facility", "spectral_band")


class ThumbnailRequest(HduSelection):
    """Body of ``POST /thumbnail``; ``hdu_index``/``extname``/``extver`` are optional (null = the default HDU)."""

    file_path: str = Field(description="Storage key of the FITS file, relative to the storage root.")

    model_config = ConfigDict(
        strict=True, json_schema_extra={"examples": [{"file_path": "mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits"}]}
    )


class ThumbnailResponse(BaseModel):
    """A ~256 px PNG, base64 without a ``data:`` prefix."""

    thumbnail_base64: str = Field(description="The PNG, base64-encoded, without a `data:` prefix.")


class HistogramData(BaseModel):
    """One histogram: the count of each bin, bin centres and edges, and the number of bins."""

    counts: list[int] = Field(description="Number of values in each bin.")
    bin_centers: list[float] = Field(description="Centre of each bin (n_bins values).")
    bin_edges: list[float] = Field(description="Edges of the bins (n_bins + 1 values).")
    n_bins: int = Field(description="Number of bins.")


class CubePosition(BaseModel):
    """Number of slices and the slice used; ``(1, 0)`` for a plain image."""

    n_slices: int = Field(description="Number of slices of the cube; 1 for an image.")
    current_slice: int = Field(description="0-based index of the slice used.")


class HistogramStats(BaseModel):
    """Minimum, maximum, mean and standard deviation of the stretched values (0 when undefined)."""

    min: float = Field(description="Smallest stretched value.")
    max: float = Field(description="Largest stretched value.")
    mean: float = Field(description="Mean of the stretched values.")
    std: float = Field(description="Standard deviation of the stretched values.")


class HistogramResponse(BaseModel):
    """Histograms of the raw (min-max normalised) and of the stretched data, percentiles and stats."""

    data_id: str = Field(description="The `data_id` of the request path, echoed.")
    histogram: HistogramData = Field(description="Histogram of the stretched data (after levels and gamma, 0-1).")
    raw_histogram: HistogramData = Field(description="Histogram of the raw data, min-max normalised to 0-1.")
    percentiles: dict[str, float] = Field(
        description="Keys p0, p1, p5, p25, p50, p75, p95, p99 of the stretched data (p0 is the 0.5th, p99 the 99.5th)."
    )
    stats: HistogramStats = Field(description="Minimum, maximum, mean and standard deviation of the stretched data.")
    cube_info: CubePosition = Field(description="The cube position the histogram was taken at.")


class PixelWcs(BaseModel):
    """The plane's flat WCS block (CDELT falls back to CD, CD to PC x CDELT)."""

    crpix1: float = Field(description="Reference pixel along x (CRPIX1, 1-based, in the downsampled plane).")
    crpix2: float = Field(description="Reference pixel along y (CRPIX2, 1-based, in the downsampled plane).")
    crval1: float = Field(description="World coordinate of the reference pixel along axis 1 (CRVAL1, degrees).")
    crval2: float = Field(description="World coordinate of the reference pixel along axis 2 (CRVAL2, degrees).")
    cdelt1: float = Field(description="Pixel scale along axis 1 (CDELT1, degrees per pixel).")
    cdelt2: float = Field(description="Pixel scale along axis 2 (CDELT2, degrees per pixel).")
    cd1_1: float = Field(description="CD matrix element 1_1.")
    cd1_2: float = Field(description="CD matrix element 1_2.")
    cd2_1: float = Field(description="CD matrix element 2_1.")
    cd2_2: float = Field(description="CD matrix element 2_2.")
    ctype1: str = Field(description="Projection type of axis 1, e.g. `RA---TAN`.")
    ctype2: str = Field(description="Projection type of axis 2, e.g. `DEC--TAN`.")


class PixelDataResponse(BaseModel):
    """A downsampled plane as base64 float32 little-endian row-major pixels, with its WCS."""

    data_id: str = Field(description="The `data_id` of the request path, echoed.")
    original_shape: list[int] = Field(description="Shape of the plane in the file, `[height, width]`.")
    preview_shape: list[int] = Field(description="Shape of the returned plane, `[height, width]`.")
    scale_factor: float = Field(description="Original size divided by returned size (1 when not reduced).")
    wcs: PixelWcs | None = Field(description="WCS of the returned plane, or null when the file has none.")
    units: str = Field(description="BUNIT of the data, or an empty string.")
    pixels: str = Field(description="Base64 of float32 little-endian row-major values (NaN and Inf sent as 0).")


class Axis3(BaseModel):
    """The cube's browsed axis, from its CRVALn, CDELTn (or CDn_n), CRPIXn, CUNITn and CTYPEn keywords.

    n is 3 for an ordinary cube; axes of length 1 are skipped, so a radio cube ``RA, DEC, STOKES(1),
    FREQ(7)`` is described by axis 4. The field names stay ``crval3``, ... whichever n it is.
    """

    crval3: float = Field(description="World value at the reference slice (CRVALn).")
    cdelt3: float = Field(description="World step per slice (CDELTn, or CDn_n).")
    crpix3: float = Field(description="Reference slice, 1-based (CRPIXn).")
    cunit3: str = Field(description="Unit of the axis (CUNITn), or an empty string.")
    ctype3: str = Field(description="Type of the axis (CTYPEn), e.g. `WAVE`.")


class CubeInfoResponse(BaseModel):
    """Description of the first HDU with 3 or more dimensions."""

    data_id: str = Field(description="The `data_id` of the request path, echoed.")
    is_cube: bool = Field(description="Whether an HDU has more than one plane besides the two image axes.")
    n_slices: int = Field(description="Number of slices along the browsed axis (1 for an image).")
    axis3: Axis3 | None = Field(description="The browsed axis, or null for an image.")
    slice_unit: str = Field(description="Normalised unit of the browsed axis, e.g. `um`, or an empty string.")
    slice_label: str = Field(description="Label of the browsed axis, e.g. `Wavelength`.")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Invalid {name} '{value}'. Must be one of: {', '.join(choices)}")
    return value


class ViewerDisplay(DisplaySettings, HduSelection):
    """Stretch, levels, slice, smoothing and extension of preview and histogram (query parameters; 400 out of range)."""

    stretch: StretchName | str = Field(
        default="zscale",
        description="Stretch name (exact; 400 for another).",
        json_schema_extra=closed_vocabulary(STRETCH_NAMES),
    )
    gamma: float = Field(default=1.0, ge=0.1, le=5.0, description="Gamma applied after the levels.")
    slice_index: int = Field(default=-1, ge=-1, description="Cube slice; -1 = middle, larger values are clamped.")
    smooth_method: str = Field(
        default="",
        description="Smoothing before the stretch: empty for none, or a method (400 for another).",
        json_schema_extra=closed_vocabulary(("", *SMOOTH_METHODS)),
    )
    smooth_sigma: float = Field(
        default=1.0, ge=SIGMA_RANGE[0], le=SIGMA_RANGE[1], description="Sigma (pixels) of the gaussian smoothings."
    )
    smooth_size: int = Field(
        default=3, ge=SIZE_RANGE[0], le=SIZE_RANGE[1], description="Odd window size of the median and box filters."
    )

    @field_validator("smooth_method")
    @classmethod
    def _known_smoothing(cls, value: str) -> str:
        return _one_of("smooth_method", value, SMOOTH_METHODS) if value else value

    @field_validator("smooth_size")
    @classmethod
    def _odd_size(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"smooth_size must be an odd integer, got {value}")
        return value

    @model_validator(mode="after")
    def _levels_ordered(self) -> ViewerDisplay:
        if not self.black_point < self.white_point:
            raise ValueError(f"black_point must be less than white_point, got {self.black_point} >= {self.white_point}")
        return self


class PreviewQuery(ViewerDisplay):
    """Query parameters of ``GET /preview``."""

    cmap: str = Field(
        default="grayscale",
        description="Colormap (`grayscale` is `gray`); 400 for another.",
        json_schema_extra=closed_vocabulary(PREVIEW_CMAPS),
    )
    width: int = Field(default=1000, ge=10, le=8000, description="Width of the box the image fits in (pixels).")
    height: int = Field(default=1000, ge=10, le=8000, description="Height of the box the image fits in (pixels).")
    image_format: str = Field(
        default="png",
        alias="format",
        description="Image encoding; 400 for another.",
        json_schema_extra=closed_vocabulary(IMAGE_FORMATS),
    )
    quality: int = Field(default=90, ge=1, le=100, description="JPEG quality.")
    embed_avm: bool = Field(default=False, description="Embed AVM 1.2 XMP metadata built from the file's WCS.")
    avm_metadata: str = Field(
        default="",
        description=f"JSON object of AVM fields ({', '.join(AVM_METADATA_KEYS)}); invalid JSON is ignored.",
    )

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("cmap")
    @classmethod
    def _known_cmap(cls, value: str) -> str:
        return _one_of("cmap", value, PREVIEW_CMAPS)

    @field_validator("image_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _one_of("format", value, IMAGE_FORMATS)


class HistogramQuery(ViewerDisplay):
    """Query parameters of ``GET /histogram``."""

    bins: int = Field(default=256, ge=10, le=10000, description="Number of histogram bins.")


class PixelDataQuery(HduSelection):
    """Query parameters of ``GET /pixeldata``."""

    model_config = ConfigDict(strict=True)

    max_size: int = Field(default=1200, ge=100, le=8000, description="Longest side of the returned plane.")
    slice_index: int = Field(default=-1, ge=-1, description="Cube slice; -1 = middle.")


class CubeInfoQuery(HduSelection):
    """Query parameters of ``GET /cubeinfo`` besides ``file_path``: the extension to describe.

    Without a choice the cube is the ``SCI`` HDU when it has 3 or more dimensions, else the first
    HDU that has; a chosen 2-D extension is reported as not a cube.
    """
