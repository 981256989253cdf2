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

from pydantic import ConfigDict, Field, model_validator

from app.core.json_types import JsonInt
from app.core.openapi import header
from app.processing.enhancement import STRETCH_NAMES, CurveName, StretchName
from app.schemas import DisplaySettings, HduSelection, NullMeansDefault, known_values

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

    file_paths: list[str] = Field(
        min_length=1, description="Storage keys of the channel's files (several are co-added on the grid)."
    )
    stretch: ChannelStretch | str = Field(
        default="asinh",
        description="Stretch name, or `auto` (parameters chosen from the data); case and spaces ignored.",
        json_schema_extra=known_values(
            (*STRETCH_NAMES, "auto"), "Any other name falls back to zscale (`X-Composite-Stretch-Fallback`)."
        ),
    )
    asinh_a: float = Field(default=0.05, ge=0.001, le=1.0, description="Softening of the asinh stretch.")
    curve: CurveName = Field(default="linear", description="Tone curve applied after the levels.")
    weight: float = Field(default=1.0, ge=0.0, le=2.0, description="Multiplier of the channel's stretched values.")
    color: ChannelColor = Field(description="The channel's colour: exactly one of hue, rgb or luminance.")
    label: str | None = Field(default=None, description="Free label of the channel, e.g. the filter name.")
    wavelength_um: float | None = Field(default=None, gt=0.0, description="Wavelength of the channel (micrometres).")


class OverallAdjustments(DisplaySettings):
    """Composite-wide stretch and levels, applied after the channels are combined."""

    stretch: StretchName = Field(default="linear", description="Stretch of the combined image (422 for another).")


class NChannelCompositeRequest(NullMeansDefault):
    """Body of ``POST /composite/generate-nchannel``."""

    channels: list[NChannelConfig] = Field(min_length=1, description="The channels, at least one with a colour.")
    overall: OverallAdjustments | None = Field(
        default=None, description="Stretch and levels of the combined image; null for none."
    )
    background_neutralization: bool = Field(
        default=True,
        description="Bring the stretched sky of every colour channel to one level, so the sky has no colour cast.",
    )
    output_format: Literal["png", "jpeg"] = Field(default="png", description="Image encoding.")
    quality: JsonInt = Field(default=95, ge=1, le=100, description="JPEG quality.")
    width: JsonInt = Field(default=1000, gt=0, le=4096, description="Width of the image (pixels).")
    height: JsonInt = Field(default=1000, gt=0, le=4096, description="Height of the image (pixels).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channels": [
                        {
                            "file_paths": ["mast/jw02733-o001/jw02733_nircam_f090w_i2d.fits"],
                            "stretch": "auto",
                            "color": {"hue": 240.0},
                            "label": "F090W",
                            "wavelength_um": 0.9,
                        },
                        {
                            "file_paths": ["mast/jw02733-o001/jw02733_nircam_f200w_i2d.fits"],
                            "stretch": "asinh",
                            "color": {"hue": 120.0},
                            "label": "F200W",
                            "wavelength_um": 2.0,
                        },
                        {
                            "file_paths": ["mast/jw02733-o001/jw02733_nircam_f444w_i2d.fits"],
                            "stretch": "asinh",
                            "black_point": 0.02,
                            "white_point": 0.98,
                            "color": {"rgb": [1.0, 0.2, 0.1]},
                            "label": "F444W",
                            "wavelength_um": 4.44,
                        },
                    ],
                    "overall": {"stretch": "linear", "gamma": 1.1},
                    "background_neutralization": True,
                    "output_format": "png",
                    "width": 1600,
                    "height": 1200,
                }
            ]
        }
    )


#: The ``X-Composite-*`` headers of a composite (OpenAPI header objects).
COMPOSITE_HEADERS: dict[str, dict[str, object]] = {
    "X-Composite-Output-Shape": header("`<width>x<height>` of the image.", required=True),
    "X-Composite-Content-Shape": header("`<w>x<h>` of the sky inside the black bars.", required=True),
    "X-Composite-Grid-Shape": header("`<nx>x<ny>` of the working celestial grid.", required=True),
    "X-Composite-Downscaled": header("`true` when the grid was reduced to fit the memory budget.", required=True),
    "X-Composite-Downscale-Factor": header("Reduction factor of the grid (`1.000` when none).", required=True),
    "X-Composite-Memory-Estimate-MB": header("Estimated working memory of the job (MiB).", required=True),
    "X-Composite-Cache": header(
        "`hit` or `miss` for each channel's reprojection cache, comma-separated.", required=True
    ),
    "X-Composite-Auto-Exposure": header("`on` when the automatic exposure was applied, else `off`.", required=True),
    "X-Composite-Auto-Stretch": header("Parameters chosen for `auto` channels: `<index>:<parameters>; ...`."),
    "X-Composite-Stretch-Fallback": header("Channels whose unknown stretch name became zscale, comma-separated."),
}
