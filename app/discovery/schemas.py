"""Request and response models of ``POST /discovery/suggest-recipes``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ObservationInput(BaseModel):
    """One observation the caller could combine (the backend sends the first four fields)."""

    model_config = ConfigDict(strict=True)

    filter: str = Field(description="JWST filter name, e.g. `F444W` or `F150W2;F164N`.")
    instrument: str = Field(description="Instrument, e.g. `NIRCAM`, `MIRI`.")
    wavelength_um: float | None = Field(default=None, description="Pivot wavelength; parsed from the filter if null.")
    observation_id: str | None = Field(default=None, description="MAST observation id, listed in the recipes.")
    t_obs_release: float | None = Field(default=None, description="Release date (MJD); future = proprietary, skipped.")
    dataproduct_type: str | None = Field(default=None, description="Spectral products (spectrum, cube) are skipped.")
    intent_type: str | None = Field(default=None, description="MAST intentType; `calibration` is skipped.")
    ra: float | None = Field(default=None, ge=0.0, le=360.0, description="Pointing RA (deg), for sky grouping.")
    dec: float | None = Field(default=None, ge=-90.0, le=90.0, description="Pointing Dec (deg), for sky grouping.")


class SuggestRecipesRequest(BaseModel):
    """Body of ``POST /discovery/suggest-recipes``."""

    target_name: str | None = Field(default=None, description="Name of the target, echoed in `target`.")
    observations: list[ObservationInput] | None = Field(
        default=None, description="The observations to build recipes from (400 when null or empty)."
    )

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "target_name": "NGC 3132",
                    "observations": [
                        {
                            "filter": "F090W",
                            "instrument": "NIRCAM",
                            "observation_id": "jw02733-o001_t001_nircam_clear-f090w",
                        },
                        {
                            "filter": "F187N",
                            "instrument": "NIRCAM",
                            "observation_id": "jw02733-o001_t001_nircam_clear-f187n",
                        },
                        {
                            "filter": "F444W",
                            "instrument": "NIRCAM",
                            "observation_id": "jw02733-o001_t001_nircam_clear-f444w",
                        },
                        {
                            "filter": "F770W",
                            "instrument": "MIRI",
                            "wavelength_um": 7.7,
                            "ra": 151.7576,
                            "dec": -40.4371,
                        },
                    ],
                }
            ]
        },
    )


class TargetInfo(BaseModel):
    """The target the caller named."""

    name: str = Field(description="The name as sent.")
    common_name: str | None = Field(default=None, description="Common name, when known.")
    ra: float | None = Field(default=None, description="RA in degrees, when known.")
    dec: float | None = Field(default=None, description="Dec in degrees, when known.")
    category: str | None = Field(default=None, description="Kind of object, when known.")


class Recipe(BaseModel):
    """One suggested composite."""

    name: str = Field(description="Name of the recipe, e.g. `NIRCAM 3-color`.")
    rank: int = Field(description="1 for the best recipe.")
    filters: list[str] = Field(description="Filters used, shortest wavelength first.")
    color_mapping: dict[str, str] = Field(description="Hex colour (`#rrggbb`) of each filter, blue to red.")
    instruments: list[str] = Field(description="Instruments of the filters.")
    requires_mosaic: bool = Field(default=False, description="Whether a filter has several fields to mosaic.")
    estimated_time_seconds: int = Field(description="Rough time to build the composite.")
    observation_ids: list[str] | None = Field(description="Observation ids used, or null when none were sent.")
    score: float = Field(description="The score (0-1) that decides the rank.")


class SuggestRecipesResponse(BaseModel):
    """Recipes ranked 1..n by score."""

    target: TargetInfo | None = Field(description="The target, or null when no name was sent.")
    recipes: list[Recipe] = Field(description="The recipes, best first.")
