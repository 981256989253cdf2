"""Turn a file's metadata into the prose that gets embedded.

A sentence encoder matches meaning, so codes are spelled out: ``MIRI`` becomes "Mid-Infrared
Instrument (MIRI)", ``F444W`` becomes "F444W filter at 4.44 µm (near-infrared, wide band)", an
exposure time becomes "deep exposure (2748 s)", a calibration level becomes words. The result is
also the ``matched_text`` returned by the search.
"""

from __future__ import annotations

import re
from datetime import date

from app.semantic.schemas import FileMetadata

#: Instrument code -> long name (the code is kept after it in parentheses).
INSTRUMENT_NAMES: dict[str, str] = {
    "NIRCAM": "Near Infrared Camera (NIRCam)",
    "MIRI": "Mid-Infrared Instrument (MIRI)",
    "NIRSPEC": "Near Infrared Spectrograph (NIRSpec)",
    "NIRISS": "Near Infrared Imager and Slitless Spectrograph (NIRISS)",
    "FGS": "Fine Guidance Sensor (FGS)",
}

#: Observing mode after the slash of ``INSTRUMENT/MODE`` -> words.
MODE_WORDS: dict[str, str] = {
    "IMAGE": "imaging",
    "IMAGING": "imaging",
    "WFSS": "wide field slitless spectroscopy",
    "GRISM": "grism spectroscopy",
    "SLIT": "fixed slit spectroscopy",
    "FS": "fixed slit spectroscopy",
    "MSA": "multi-object spectroscopy",
    "MOS": "multi-object spectroscopy",
    "IFU": "integral field spectroscopy",
    "SOSS": "single object slitless spectroscopy",
    "LRS": "low resolution spectroscopy",
    "MRS": "medium resolution spectroscopy",
    "CORON": "coronagraphic imaging",
    "AMI": "aperture masking interferometry",
    "TARGACQ": "target acquisition",
}

#: Filter band-width suffix -> words.
BAND_WORDS: dict[str, str] = {
    "W2": "extra-wide band",
    "W": "wide band",
    "M": "medium band",
    "N": "narrow band",
    "LP": "long-pass",
}

#: MAST calibration level -> words.
CALIBRATION_WORDS: dict[int, str] = {
    0: "planned, not yet observed",
    1: "raw uncalibrated data",
    2: "calibrated single exposure",
    3: "combined calibrated product",
    4: "high-level science product",
}

#: Pipeline processing level -> words (``unknown`` says nothing).
PROCESSING_WORDS: dict[str, str] = {
    "L1": "raw ramps",
    "L2A": "count-rate images",
    "L2B": "calibrated exposures",
    "L3": "combined mosaics",
}

#: Exposure depth bands: (upper bound in seconds, word); the last band is open-ended.
DEPTH_BANDS: tuple[tuple[float, str], ...] = ((300.0, "short"), (1500.0, "medium"), (float("inf"), "deep"))

#: Longest prose kept (the encoder reads 256 tokens, roughly 1000 characters; the rest only bloats the index).
MAX_TEXT_CHARS = 2000

_FILTER_RE = re.compile(r"F(\d{3,4})(W2|LP|W|M|N)", re.IGNORECASE)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _clean(value: str | None) -> str:
    return " ".join(value.split()) if value else ""


def describe_instrument(instrument: str) -> str:
    """``"MIRI/IMAGE"`` -> ``"Mid-Infrared Instrument (MIRI) imaging"``."""
    code, _, mode = instrument.partition("/")
    name = INSTRUMENT_NAMES.get(code.strip().upper(), code.strip())
    mode = mode.strip()
    if not mode:
        return name
    return f"{name} {MODE_WORDS.get(mode.upper(), mode.lower())}"


def describe_filters(filter_name: str) -> str:
    """``"F444W"`` -> ``"F444W filter at 4.44 µm (near-infrared, wide band)"``; compound names list each part."""
    parts = []
    for match in _FILTER_RE.finditer(filter_name):
        microns = int(match.group(1)) / 100.0
        regime = "mid-infrared" if microns >= 5.0 else "near-infrared"
        band = BAND_WORDS[match.group(2).upper()]
        parts.append((match.group(0).upper(), f"{microns:g} µm ({regime}, {band})"))
    if not parts:
        return f"{filter_name} filter"
    if len(parts) == 1 and parts[0][0] == filter_name.upper():
        return f"{filter_name} filter at {parts[0][1]}"
    return f"{filter_name} filter: " + ", ".join(f"{code} at {words}" for code, words in parts)


def describe_exposure(seconds: float) -> str | None:
    """``2748.0`` -> ``"deep exposure (2748 s)"``; None for a negative or non-finite time."""
    if not (seconds >= 0.0 and seconds != float("inf")):
        return None
    word = next(label for bound, label in DEPTH_BANDS if seconds < bound)
    return f"{word} exposure ({seconds:.0f} s)"


def describe_date(text: str) -> str:
    """``"2022-07-12"`` -> ``"2022-07-12 (July 2022)"``; other strings are kept as they are."""
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return text
    return f"{text} ({_MONTHS[day.month - 1]} {day.year})"


def metadata_to_text(meta: FileMetadata) -> str:
    """Describe ``meta`` in prose, or return ``""`` when no field carries anything to embed.

    Parameters
    ----------
    meta
        The file's metadata; ``file_id`` alone is not embeddable.
    """
    candidates = (
        _heading(meta.instrument, meta.target_name),
        _clean(meta.observation_title),
        _filter_sentence(meta.filter_name),
        _labelled("Wavelength range:", meta.wavelength_range),
        _exposure_sentence(meta.exposure_time),
        _calibration_sentence(meta.calibration_level),
        _processing_sentence(meta.processing_level),
        _labelled("Data type", meta.data_type),
        _date_sentence(meta.observation_date),
        _labelled("PI", meta.proposal_pi),
        _labelled("Proposal", meta.proposal_id),
        _labelled("File", meta.file_name),
    )
    sentences = [sentence for sentence in candidates if sentence]
    if not sentences:
        return ""
    text = ". ".join(sentences) + "."
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1].rstrip() + "…"


def _heading(instrument_value: str | None, target_value: str | None) -> str:
    """Name the instrument and the target (``"... (MIRI) observation of M16"``); ``""`` without either."""
    head: list[str] = []
    instrument = _clean(instrument_value)
    target = _clean(target_value)
    if instrument:
        described = describe_instrument(instrument)
        head.append(described if "/" in instrument else f"{described} observation")
    if target:
        head.append(f"of {target}" if head else f"Observation of {target}")
    return " ".join(head)


def _labelled(label: str, value: str | None) -> str:
    """Put ``label`` before the cleaned ``value``; ``""`` when the value is empty."""
    cleaned = _clean(value)
    return f"{label} {cleaned}" if cleaned else ""


def _filter_sentence(value: str | None) -> str:
    filter_name = _clean(value)
    return describe_filters(filter_name) if filter_name else ""


def _exposure_sentence(seconds: float | None) -> str:
    exposure = describe_exposure(seconds) if seconds is not None else None
    return exposure[0].upper() + exposure[1:] if exposure else ""


def _calibration_sentence(calibration_level: int | None) -> str:
    if calibration_level is None:
        return ""
    words = CALIBRATION_WORDS.get(calibration_level)
    level = f"Calibration level {calibration_level}"
    return f"{level}, {words}" if words else level


def _processing_sentence(value: str | None) -> str:
    """Name the processing level and its words; ``""`` when empty or ``unknown``."""
    processing = _clean(value)
    if not processing:
        return ""
    words = PROCESSING_WORDS.get(processing.upper())
    if words:
        return f"Processing level {processing}, {words}"
    return f"Processing level {processing}" if processing.lower() != "unknown" else ""


def _date_sentence(value: str | None) -> str:
    observed = _clean(value)
    return f"Observed {describe_date(observed)}" if observed else ""
