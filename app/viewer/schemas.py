"""Request and response models of the viewer endpoints (E3-E7 of the contract), plus the
validated query parameters of preview and histogram as plain dataclasses (picklable for jobs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, Field

from app.core.exceptions import InvalidRequestError
from app.processing.colormaps import COLORMAP_NAMES
from app.processing.enhancement import STRETCH_NAMES
from app.processing.filters import SIGMA_RANGE, SIZE_RANGE, SMOOTH_METHODS

IMAGE_FORMATS = ("png", "jpeg")
PREVIEW_SIDE_RANGE = (10, 8000)
GAMMA_RANGE = (0.1, 5.0)
ASINH_A_RANGE = (0.001, 1.0)
QUALITY_RANGE = (1, 100)
BINS_RANGE = (10, 10000)
PIXELDATA_SIZE_RANGE = (100, 8000)
AVM_METADATA_KEYS = ("target_name", "instrument", "filter", "description", "facility", "spectral_band")


class ThumbnailRequest(BaseModel):
    """Body of ``POST /thumbnail``."""

    file_path: str = Field(description="Storage key of the FITS file, relative to the storage root.")


class ThumbnailResponse(BaseModel):
    """A ~256 px PNG, base64 without a ``data:`` prefix."""

    thumbnail_base64: str


class HistogramData(BaseModel):
    counts: list[int]
    bin_centers: list[float]
    bin_edges: list[float]
    n_bins: int


class CubePosition(BaseModel):
    n_slices: int
    current_slice: int


class HistogramStats(BaseModel):
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


def _check_range(name: str, value: float, bounds: tuple[float, float]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidRequestError(f"{name} must be between {bounds[0]} and {bounds[1]}, got {value}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidRequestError(f"Invalid {name} '{value}'. Must be one of: {', '.join(choices)}")


@dataclass(frozen=True)
class DisplayParams:
    """Stretch, levels and smoothing shared by preview and histogram (validated)."""

    stretch: str = "zscale"
    gamma: float = 1.0
    black_point: float = 0.0
    white_point: float = 1.0
    asinh_a: float = 0.1
    slice_index: int = -1
    smooth_method: str = ""
    smooth_sigma: float = 1.0
    smooth_size: int = 3

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` (400) for any value outside the contract's ranges."""
        _check_choice("stretch", self.stretch, STRETCH_NAMES)
        _check_range("gamma", self.gamma, GAMMA_RANGE)
        _check_range("black_point", self.black_point, (0.0, 1.0))
        _check_range("white_point", self.white_point, (0.0, 1.0))
        if not self.black_point < self.white_point:
            raise InvalidRequestError(
                f"black_point must be less than white_point, got {self.black_point} >= {self.white_point}"
            )
        _check_range("asinh_a", self.asinh_a, ASINH_A_RANGE)
        if self.slice_index < -1:
            raise InvalidRequestError(f"slice_index must be >= -1, got {self.slice_index}")
        if self.smooth_method:
            _check_choice("smooth_method", self.smooth_method, SMOOTH_METHODS)
        _check_range("smooth_sigma", self.smooth_sigma, SIGMA_RANGE)
        if not SIZE_RANGE[0] <= self.smooth_size <= SIZE_RANGE[1] or self.smooth_size % 2 == 0:
            raise InvalidRequestError(
                f"smooth_size must be an odd integer between {SIZE_RANGE[0]} and {SIZE_RANGE[1]}, "
                f"got {self.smooth_size}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreviewParams:
    """Query parameters of ``GET /preview`` besides the display ones (validated)."""

    display: DisplayParams
    cmap: str = "grayscale"
    width: int = 1000
    height: int = 1000
    image_format: str = "png"
    quality: int = 90
    embed_avm: bool = False
    avm_metadata: dict[str, str] | None = None

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` (400) for any value outside the contract's ranges."""
        _check_choice("cmap", self.cmap, ("grayscale", *COLORMAP_NAMES))
        _check_range("width", self.width, PREVIEW_SIDE_RANGE)
        _check_range("height", self.height, PREVIEW_SIDE_RANGE)
        _check_choice("format", self.image_format, IMAGE_FORMATS)
        _check_range("quality", self.quality, QUALITY_RANGE)
        self.display.validate()
