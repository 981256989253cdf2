"""Request and response models of ``POST /discovery/suggest-recipes``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ObservationInput(BaseModel):
    """One observation the caller could combine (the backend sends the first four fields)."""

    filter: str
    instrument: str
    wavelength_um: float | None = Field(default=None, description="Pivot wavelength; parsed from the filter if null.")
    observation_id: str | None = None
    t_obs_release: float | None = Field(default=None, description="Release date (MJD); future = proprietary, skipped.")
    dataproduct_type: str | None = Field(default=None, description="Spectral products (spectrum, cube) are skipped.")
    intent_type: str | None = Field(default=None, description="MAST intentType; `calibration` is skipped.")
    ra: float | None = Field(default=None, ge=0.0, le=360.0, description="Pointing RA (deg), for sky grouping.")
    dec: float | None = Field(default=None, ge=-90.0, le=90.0, description="Pointing Dec (deg), for sky grouping.")


class SuggestRecipesRequest(BaseModel):
    """Body of ``POST /discovery/suggest-recipes``."""

    target_name: str | None = None
    observations: list[ObservationInput] | None = None


class TargetInfo(BaseModel):
    """The target the caller named."""

    name: str
    common_name: str | None = None
    ra: float | None = None
    dec: float | None = None
    category: str | None = None


class Recipe(BaseModel):
    """One suggested composite."""

    name: str
    rank: int
    filters: list[str]
    color_mapping: dict[str, str]
    instruments: list[str]
    requires_mosaic: bool = False
    estimated_time_seconds: int
    observation_ids: list[str] | None
    score: float = Field(description="The score (0-1) that decides the rank.")


class SuggestRecipesResponse(BaseModel):
    """Recipes ranked 1..n by score."""

    target: TargetInfo | None
    recipes: list[Recipe]
