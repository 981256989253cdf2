"""Request models of the N-channel composite endpoint.

The backend sends every key, with explicit ``null`` for unset optional values; ``null`` for a field
that has a non-null default means "use the default" (see :class:`~app.schemas.NullMeansDefault`).
A channel's extension choice is the shared :class:`~app.schemas.HduSelection`. A channel's and the
overall stretch group are the shared :class:`~app.schemas.DisplaySettings`:
a channel's stretch is not validated (unknown names fall back to zscale, and the response says
so), while the overall stretch must be one of the names (422 otherwise).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from app.processing.enhancement import CurveName, StretchName
from app.schemas import DisplaySettings, HduSelection, NullMeansDefault

#: A channel's stretches: the shared ones plus ``auto``, which picks its parameters from the data.
ChannelStretch = StretchName | Literal["auto"]


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


class NChannelConfig(DisplaySettings, HduSelection):
    """One channel: its files, its display settings, its colour, and the extension read from every file.

    ``hdu_index`` or ``extname`` (with ``extver``) applies to each file of the channel, so three
    channels can take the SCI, ERR and WHT extensions of one file; unset, a file's SCI image HDU
    (else its first image HDU) is read.
    """

    file_paths: list[str] = Field(min_length=1, description="Storage keys of the channel's files.")
    stretch: ChannelStretch | str = Field(
        default="asinh", description="Stretch name or `auto`; unknown values fall back to zscale."
    )
    asinh_a: float = Field(default=0.05, ge=0.001, le=1.0, description="Softening of the asinh stretch.")
    curve: CurveName = "linear"
    weight: float = Field(default=1.0, ge=0.0, le=2.0)
    color: ChannelColor
    label: str | None = None
    wavelength_um: float | None = Field(default=None, gt=0.0)


class OverallAdjustments(DisplaySettings):
    """Composite-wide stretch and levels, applied after the channels are combined."""

    stretch: StretchName = "linear"


class NChannelCompositeRequest(NullMeansDefault):
    """Body of ``POST /composite/generate-nchannel``."""

    channels: list[NChannelConfig] = Field(min_length=1)
    overall: OverallAdjustments | None = None
    background_neutralization: bool = Field(
        default=True,
        description="Bring the stretched sky of every colour channel to one level, so the sky has no colour cast.",
    )
    output_format: Literal["png", "jpeg"] = "png"
    quality: int = Field(default=95, ge=1, le=100)
    width: int = Field(default=1000, gt=0, le=4096)
    height: int = Field(default=1000, gt=0, le=4096)
