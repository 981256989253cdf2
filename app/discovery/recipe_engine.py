"""Suggest colour-composite recipes from a list of observations (``POST /discovery/suggest-recipes``).

Steps:

1. Drop what cannot go into an imaging composite: spectral products (``dataproduct_type``
   spectrum or cube, or a grism/prism element in the filter name), proprietary data (release date
   in the future) and calibration or background observations.
2. Resolve each filter's wavelength: the given ``wavelength_um``, else parsed from the JWST filter
   name (``F444W`` = 4.44 µm, ``F2100W`` = 21.0 µm; in a combination such as ``F444W;F470N`` or
   ``CLEAR;F090W`` the narrowest element defines the band).
3. Group observations by sky position when positions are given (friends-of-friends within
   :data:`FIELD_RADIUS_DEG`); otherwise all belong to one field.
4. Per field and instrument build the candidate recipes (all filters, a classic 3-colour pick,
   narrowband, broadband), plus an all-filter multi-instrument recipe; identical filter sets are
   kept once.
5. Score every recipe (filter count, wavelength span, sky coverage overlap, instrument pixel-scale
   match) and rank by score; ties break on the contract's recipe order, then the name, so the order
   is deterministic.

Colours follow the chromatic order: filters sorted by wavelength get hues spread from blue
(240°) to red (0°).
"""

from __future__ import annotations

import colorsys
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.core.exceptions import InvalidRequestError
from app.discovery.schemas import ObservationInput, Recipe, SuggestRecipesRequest, SuggestRecipesResponse, TargetInfo

OBSERVATIONS_REQUIRED = "observations list is required"

#: Observations closer than this (degrees) are one field.
FIELD_RADIUS_DEG = 0.1
#: Seconds between the Unix epoch and MJD 0.
_MJD_UNIX_OFFSET_DAYS = 40587.0

SPECTRAL_PRODUCT_TYPES = frozenset({"spectrum", "spectra", "spectral", "cube", "sed"})
_SPECTRAL_ELEMENT = re.compile(r"GRISM|PRISM|GR150|GR700|P750L|^G\d{3}[HM]$|CLEARP|MRS|^CH[1-4]", re.IGNORECASE)
_CALIBRATION_WORDS = re.compile(r"(?:^|[^A-Z])(BACKGROUND|BKG|DARK|FLAT|OPAQUE|CALIBRATION)(?:$|[^A-Z])", re.IGNORECASE)
_FILTER = re.compile(r"^F(\d{3,4})(W2|W|M|N|LP|C)$", re.IGNORECASE)

#: Band class of a filter suffix, narrowest first (the narrowest element of a combination wins).
_BAND_ORDER = {"N": 0, "M": 1, "C": 2, "W": 3, "W2": 4, "LP": 5}
_BAND_CLASS = {"N": "narrow", "M": "medium", "C": "medium", "W": "broad", "W2": "broad", "LP": "broad"}

#: Native pixel scale (arcsec) per instrument, for the resolution match of multi-instrument recipes.
PIXEL_SCALE_ARCSEC = {"NIRCAM": 0.063, "NIRISS": 0.065, "MIRI": 0.11, "NIRSPEC": 0.1, "FGS": 0.069}

# Score weights (sum to 1).
W_FILTERS, W_SPAN, W_COVERAGE, W_RESOLUTION = 0.35, 0.25, 0.2, 0.2


@dataclass(frozen=True)
class Band:
    """A filter element parsed from a name."""

    name: str
    wavelength_um: float
    band_class: str


@dataclass
class FilterEntry:
    """One filter of one instrument in one field, with the observations behind it."""

    filter: str
    instrument: str
    wavelength_um: float
    band_class: str
    observation_ids: list[str] = field(default_factory=list)
    positions: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Candidate:
    """A recipe before ranking."""

    name: str
    entries: list[FilterEntry]
    priority: int
    """Tie-break between equal scores: the contract's order (all filters, classic, narrow, broad, multi)."""
    score: float = 0.0


def parse_filter(name: str) -> Band | None:
    """Parse the defining element of a JWST filter name (``F444W;F470N`` -> F470N at 4.70 µm), or ``None``."""
    best: tuple[int, Band] | None = None
    for token in re.split(r"[;,+/\s]+", name.strip()):
        match = _FILTER.match(token)
        if not match:
            continue
        digits, suffix = match.group(1), match.group(2).upper()
        band = Band(token.upper(), int(digits) / 100.0, _BAND_CLASS[suffix])
        order = _BAND_ORDER[suffix]
        if best is None or order < best[0]:
            best = (order, band)
    return best[1] if best else None


def _now_mjd() -> float:
    return time.time() / 86400.0 + _MJD_UNIX_OFFSET_DAYS


def is_excluded(obs: ObservationInput, *, now_mjd: float) -> bool:
    """Tell whether an observation is spectral, proprietary, calibration or background."""
    if obs.dataproduct_type and obs.dataproduct_type.strip().lower() in SPECTRAL_PRODUCT_TYPES:
        return True
    if any(_SPECTRAL_ELEMENT.search(tok) for tok in re.split(r"[;,+/\s]+", obs.filter.strip()) if tok):
        return True
    if obs.t_obs_release is not None and math.isfinite(obs.t_obs_release) and obs.t_obs_release > now_mjd:
        return True
    if obs.intent_type and obs.intent_type.strip().lower() == "calibration":
        return True
    return bool(
        _CALIBRATION_WORDS.search(obs.filter) or (obs.observation_id and _CALIBRATION_WORDS.search(obs.observation_id))
    )


def _wavelength(obs: ObservationInput) -> tuple[float, str] | None:
    band = parse_filter(obs.filter)
    if obs.wavelength_um is not None and math.isfinite(obs.wavelength_um) and obs.wavelength_um > 0:
        return float(obs.wavelength_um), band.band_class if band else "broad"
    if band is None:
        return None
    return band.wavelength_um, band.band_class


def _separation_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    ra1, dec1, ra2, dec2 = map(math.radians, (*a, *b))
    cos_sep = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(ra1 - ra2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_sep))))


def group_by_position(observations: list[ObservationInput]) -> list[list[ObservationInput]]:
    """Friends-of-friends fields of the observations with positions; the others join the largest field."""
    placed = [o for o in observations if o.ra is not None and o.dec is not None]
    loose = [o for o in observations if o.ra is None or o.dec is None]
    groups: list[list[ObservationInput]] = []
    remaining = list(placed)
    while remaining:
        group = [remaining.pop(0)]
        grew = True
        while grew:
            grew = False
            for obs in list(remaining):
                if any(_separation_deg(_pos(obs), _pos(member)) <= FIELD_RADIUS_DEG for member in group):
                    group.append(obs)
                    remaining.remove(obs)
                    grew = True
        groups.append(group)
    if not groups:
        return [loose] if loose else []
    groups.sort(key=lambda g: -len(g))
    groups[0].extend(loose)
    return groups


def _pos(obs: ObservationInput) -> tuple[float, float]:
    assert obs.ra is not None
    assert obs.dec is not None
    return (obs.ra, obs.dec)


def _entries(observations: Iterable[ObservationInput]) -> dict[str, list[FilterEntry]]:
    """Group the filters per instrument (upper-cased), one entry per filter name, sorted by wavelength."""
    by_key: dict[tuple[str, str], FilterEntry] = {}
    for obs in observations:
        resolved = _wavelength(obs)
        if resolved is None:
            continue
        instrument = obs.instrument.strip().upper()
        name = obs.filter.strip()
        key = (instrument, name.upper())
        entry = by_key.get(key)
        if entry is None:
            entry = by_key[key] = FilterEntry(name, instrument, resolved[0], resolved[1])
        if obs.observation_id and obs.observation_id not in entry.observation_ids:
            entry.observation_ids.append(obs.observation_id)
        if obs.ra is not None and obs.dec is not None:
            entry.positions.append((obs.ra, obs.dec))
    out: dict[str, list[FilterEntry]] = {}
    for entry in by_key.values():
        out.setdefault(entry.instrument, []).append(entry)
    for entries in out.values():
        entries.sort(key=lambda e: (e.wavelength_um, e.filter))
    return dict(sorted(out.items()))


def _classic_three(entries: list[FilterEntry]) -> list[FilterEntry]:
    """Shortest, longest and the filter nearest their geometric mean (broadband preferred)."""
    pool = [e for e in entries if e.band_class == "broad"]
    if len(pool) < 3:
        pool = entries
    low, high = pool[0], pool[-1]
    mid_target = math.sqrt(low.wavelength_um * high.wavelength_um)
    middle = min(pool[1:-1], key=lambda e: (abs(math.log(e.wavelength_um / mid_target)), e.filter))
    return [low, middle, high]


def _candidates(field_entries: dict[str, list[FilterEntry]], suffix: str) -> list[Candidate]:
    out: list[Candidate] = []
    for instrument, entries in field_entries.items():
        if len(entries) >= 2:
            out.append(Candidate(f"N-filter {instrument}{suffix}", entries, 1))
        if len(entries) >= 3:
            out.append(Candidate(f"Classic 3-color {instrument}{suffix}", _classic_three(entries), 2))
        narrow = [e for e in entries if e.band_class == "narrow"]
        if len(narrow) >= 2:
            out.append(Candidate(f"Narrowband {instrument}{suffix}", narrow, 3))
        broad = [e for e in entries if e.band_class == "broad"]
        if len(broad) >= 2:
            out.append(Candidate(f"Broadband {instrument}{suffix}", broad, 4))
    instruments = [i for i, entries in field_entries.items() if entries]
    if len(instruments) >= 2:
        merged: dict[str, FilterEntry] = {}
        for entries in field_entries.values():
            for entry in entries:
                merged.setdefault(entry.filter.upper(), entry)
        combined = sorted(merged.values(), key=lambda e: (e.wavelength_um, e.filter))
        out.append(Candidate(f"N-filter {'+'.join(instruments)}{suffix}", combined, 5))
    return out


def _coverage(entries: list[FilterEntry]) -> float:
    """Mean pairwise overlap of the filters' pointings (1 when positions are unknown)."""
    centres = []
    for entry in entries:
        if entry.positions:
            ras, decs = zip(*entry.positions, strict=True)
            centres.append((sum(ras) / len(ras), sum(decs) / len(decs)))
    if len(centres) < 2:
        return 1.0
    overlaps = [
        max(0.0, 1.0 - _separation_deg(a, b) / (2 * FIELD_RADIUS_DEG))
        for i, a in enumerate(centres)
        for b in centres[i + 1 :]
    ]
    return sum(overlaps) / len(overlaps)


def score(entries: list[FilterEntry]) -> float:
    """Score in [0, 1]: filter count, wavelength span, coverage overlap and pixel-scale match."""
    n = len(entries)
    count_term = min(n, 6) / 6.0
    waves = [e.wavelength_um for e in entries]
    span_term = min(1.0, math.log2(max(waves) / min(waves)) / 3.0) if n >= 2 else 0.0
    scales = [PIXEL_SCALE_ARCSEC.get(i, 0.063) for i in {e.instrument for e in entries}]
    resolution_term = min(scales) / max(scales)
    total = (
        W_FILTERS * count_term + W_SPAN * span_term + W_COVERAGE * _coverage(entries) + W_RESOLUTION * resolution_term
    )
    return round(total, 6)


def chromatic_colors(entries: list[FilterEntry]) -> dict[str, str]:
    """``#rrggbb`` per filter: hues from blue (shortest wavelength) to red (longest)."""
    ordered = sorted(entries, key=lambda e: (e.wavelength_um, e.filter))
    n = len(ordered)
    colors: dict[str, str] = {}
    for i, entry in enumerate(ordered):
        hue_deg = 240.0 * (1.0 - i / (n - 1)) if n > 1 else 0.0
        r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, 1.0, 1.0)
        colors[entry.filter] = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    return colors


def _estimated_seconds(entries: list[FilterEntry]) -> int:
    instruments = {e.instrument for e in entries}
    return int(10 + 5 * len(entries) + (10 if len(instruments) > 1 else 0))


def _to_recipe(candidate: Candidate, rank: int) -> Recipe:
    ordered = sorted(candidate.entries, key=lambda e: (e.wavelength_um, e.filter))
    ids = [oid for e in ordered for oid in e.observation_ids]
    instruments = sorted({e.instrument for e in ordered})
    return Recipe(
        name=candidate.name,
        rank=rank,
        filters=[e.filter for e in ordered],
        color_mapping=chromatic_colors(ordered),
        instruments=instruments,
        requires_mosaic=False,
        estimated_time_seconds=_estimated_seconds(ordered),
        observation_ids=list(dict.fromkeys(ids)) or None,
        score=candidate.score,
    )


def suggest_recipes(request: SuggestRecipesRequest, *, now_mjd: float | None = None) -> SuggestRecipesResponse:
    """Rank composite recipes for the request's observations.

    Raises
    ------
    InvalidRequestError
        No observations were given.
    """
    if not request.observations:
        raise InvalidRequestError(OBSERVATIONS_REQUIRED)
    now = _now_mjd() if now_mjd is None else now_mjd
    usable = [o for o in request.observations if not is_excluded(o, now_mjd=now)]
    fields = group_by_position(usable)
    candidates: list[Candidate] = []
    for index, members in enumerate(fields):
        suffix = f" (field {index + 1})" if len(fields) > 1 else ""
        candidates.extend(_candidates(_entries(members), suffix))
    for cand in candidates:
        cand.score = score(cand.entries)
    seen: set[tuple[tuple[str, str], ...]] = set()
    unique: list[Candidate] = []
    # Keep the best-scoring recipe of each distinct filter set (per field).
    for cand in sorted(candidates, key=lambda c: (-c.score, c.priority, c.name)):
        key = (("", _field_of(cand.name)), *sorted((e.instrument, e.filter.upper()) for e in cand.entries))
        if key in seen:
            continue
        seen.add(key)
        unique.append(cand)
    recipes = [_to_recipe(c, rank) for rank, c in enumerate(unique, start=1)]
    target = (
        TargetInfo(name=request.target_name.strip()) if request.target_name and request.target_name.strip() else None
    )
    return SuggestRecipesResponse(target=target, recipes=recipes)


def _field_of(name: str) -> str:
    match = re.search(r"\(field \d+\)$", name)
    return match.group(0) if match else ""
