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
from app.processing.enhancement import StretchName
from app.processing.filters import SIGMA_RANGE, SIZE_RANGE, SMOOTH_METHODS
from app.schemas import DisplaySettings, HduSelection

IMAGE_FORMATS = ("png", "jpeg")
PREVIEW_CMAPS = ("grayscale", *COLORMAP_NAMES)
AVM_METADATA_KEYS = ("target_name", "instrument", "filter", "description", "facility", "spectral_band")


class ThumbnailRequest(HduSelection):
    """Body of ``POST /thumbnail``; ``hdu_index``/``extname``/``extver`` are optional (null = the default HDU)."""

    file_path: str = Field(description="Storage key of the FITS file, relative to the storage root.")


class ThumbnailResponse(BaseModel):
    """A ~256 px PNG, base64 without a ``data:`` prefix."""

    thumbnail_base64: str


class HistogramData(BaseModel):
    """One histogram: the count of each bin, bin centres and edges, and the number of bins."""

    counts: list[int]
    bin_centers: list[float]
    bin_edges: list[float]
    n_bins: int


class CubePosition(BaseModel):
    """Number of slices and the slice used; ``(1, 0)`` for a plain image."""

    n_slices: int
    current_slice: int


class HistogramStats(BaseModel):
    """Minimum, maximum, mean and standard deviation of the stretched values (0 when undefined)."""

    min: float
    max: float
    mean: float
    std: float


class HistogramResponse(BaseModel):
    """Histograms of the raw (min-max normalised) and of the stretched data, percentiles and stats."""

    data_id: str
    histogram: HistogramData
    raw_histogram: HistogramData
    percentiles: dict[str, float]
    stats: HistogramStats
    cube_info: CubePosition


class PixelWcs(BaseModel):
    """The plane's flat WCS block (CDELT falls back to CD, CD to PC x CDELT)."""

    crpix1: float
    crpix2: float
    crval1: float
    crval2: float
    cdelt1: float
    cdelt2: float
    cd1_1: float
    cd1_2: float
    cd2_1: float
    cd2_2: float
    ctype1: str
    ctype2: str


class PixelDataResponse(BaseModel):
    """A downsampled plane as base64 float32 little-endian row-major pixels, with its WCS."""

    data_id: str
    original_shape: list[int]
    preview_shape: list[int]
    scale_factor: float
    wcs: PixelWcs | None
    units: str
    pixels: str


class Axis3(BaseModel):
    """The cube's browsed axis, from its CRVALn, CDELTn (or CDn_n), CRPIXn, CUNITn and CTYPEn keywords.

    n is 3 for an ordinary cube; axes of length 1 are skipped, so a radio cube ``RA, DEC, STOKES(1),
    FREQ(7)`` is described by axis 4. The field names stay ``crval3``, ... whichever n it is.
    """

    crval3: float
    cdelt3: float
    crpix3: float
    cunit3: str
    ctype3: str


class CubeInfoResponse(BaseModel):
    """Description of the first HDU with 3 or more dimensions."""

    data_id: str
    is_cube: bool
    n_slices: int
    axis3: Axis3 | None
    slice_unit: str
    slice_label: str


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Invalid {name} '{value}'. Must be one of: {', '.join(choices)}")
    return value


class ViewerDisplay(DisplaySettings, HduSelection):
    """Stretch, levels, slice, smoothing and extension of preview and histogram (query parameters; 400 out of range)."""

    stretch: StretchName | str = "zscale"
    gamma: float = Field(default=1.0, ge=0.1, le=5.0)
    slice_index: int = Field(default=-1, ge=-1, description="Cube slice; -1 = middle, larger values are clamped.")
    smooth_method: str = Field(default="", description="Empty, or one of the smoothing methods.")
    smooth_sigma: float = Field(default=1.0, ge=SIGMA_RANGE[0], le=SIGMA_RANGE[1])
    smooth_size: int = Field(default=3, ge=SIZE_RANGE[0], le=SIZE_RANGE[1], description="Odd window size.")

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

    cmap: str = Field(default="grayscale", description="Colormap; grayscale is gray.")
    width: int = Field(default=1000, ge=10, le=8000)
    height: int = Field(default=1000, ge=10, le=8000)
    image_format: str = Field(default="png", alias="format", description="png or jpeg.")
    quality: int = Field(default=90, ge=1, le=100, description="JPEG quality.")
    embed_avm: bool = False
    avm_metadata: str = Field(default="", description="JSON object of AVM fields; invalid JSON is ignored.")

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

    bins: int = Field(default=256, ge=10, le=10000)


class PixelDataQuery(HduSelection):
    """Query parameters of ``GET /pixeldata``."""

    max_size: int = Field(default=1200, ge=100, le=8000, description="Longest side of the returned plane.")
    slice_index: int = Field(default=-1, ge=-1, description="Cube slice; -1 = middle.")


class CubeInfoQuery(HduSelection):
    """Query parameters of ``GET /cubeinfo`` besides ``file_path``: the extension to describe.

    Without a choice the cube is the ``SCI`` HDU when it has 3 or more dimensions, else the first
    HDU that has; a chosen 2-D extension is reported as not a cube.
    """
