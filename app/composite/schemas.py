"""Request models of the N-channel composite endpoint (contract 6.6).

The backend sends every key, with explicit ``null`` for unset optional values; ``null`` for a field
that has a non-null default means "use the default" (see :class:`NullMeansDefault`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from app.schemas import NullMeansDefault

CurveLiteral = Literal["linear", "s_curve", "inverse_s", "shadows", "highlights"]
OverallStretch = Literal["zscale", "asinh", "log", "sqrt", "power", "histeq", "linear"]


class ChannelColor(NullMeansDefault):
    """Colour of a channel: exactly one of ``hue``, ``rgb`` or ``luminance=true`` (checked by the service)."""

    hue: float | None = Field(default=None, ge=0.0, le=360.0, description="Hue in degrees (0-360).")
    rgb: list[float] | None = Field(
        default=None, min_length=3, max_length=3, description="Explicit colour, three values in 0-1."
    )
    luminance: bool = Field(default=False, description="Use this channel as the LRGB luminance.")

    @model_validator(mode="after")
    def _rgb_range(self) -> ChannelColor:
        if self.rgb is not None and any(not 0.0 <= v <= 1.0 for v in self.rgb):
            raise ValueError("rgb values must be between 0 and 1")
        return self


class NChannelConfig(NullMeansDefault):
    """One channel: its files, its display settings and its colour."""

    file_paths: list[str] = Field(min_length=1, description="Storage keys of the channel's files.")
    stretch: str = Field(default="asinh", description="Stretch name; unknown values fall back to zscale.")
    black_point: float = Field(default=0.0, ge=0.0, le=1.0)
    white_point: float = Field(default=1.0, ge=0.0, le=1.0)
    gamma: float = Field(default=1.0, gt=0.0, le=5.0)
    asinh_a: float = Field(default=0.05, ge=0.001, le=1.0)
    curve: CurveLiteral = "linear"
    weight: float = Field(default=1.0, ge=0.0, le=2.0)
    color: ChannelColor
    label: str | None = None
    wavelength_um: float | None = Field(default=None, gt=0.0)


class OverallAdjustments(NullMeansDefault):
    """Composite-wide stretch and levels, applied after the channels are combined."""

    stretch: OverallStretch = "linear"
    black_point: float = Field(default=0.0, ge=0.0, le=1.0)
    white_point: float = Field(default=1.0, ge=0.0, le=1.0)
    gamma: float = Field(default=1.0, gt=0.0, le=5.0)
    asinh_a: float = Field(default=0.1, ge=0.001, le=1.0)


class NChannelCompositeRequest(NullMeansDefault):
    """Body of ``POST /composite/generate-nchannel``."""

    channels: list[NChannelConfig] = Field(min_length=1)
    overall: OverallAdjustments | None = None
    background_neutralization: bool = True
    output_format: Literal["png", "jpeg"] = "png"
    quality: int = Field(default=95, ge=1, le=100)
    width: int = Field(default=1000, gt=0, le=4096)
    height: int = Field(default=1000, gt=0, le=4096)
