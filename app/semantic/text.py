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
    """Prose describing ``meta``, or ``""`` when no field carries anything to embed.

    Parameters
    ----------
    meta
        The file's metadata; ``file_id`` alone is not embeddable.
    """
    sentences: list[str] = []
    head: list[str] = []
    instrument = _clean(meta.instrument)
    target = _clean(meta.target_name)
    if instrument:
        described = describe_instrument(instrument)
        head.append(described if "/" in instrument else f"{described} observation")
    if target:
        head.append(f"of {target}" if head else f"Observation of {target}")
    if head:
        sentences.append(" ".join(head))
    if title := _clean(meta.observation_title):
        sentences.append(title)
    if filter_name := _clean(meta.filter_name):
        sentences.append(describe_filters(filter_name))
    if wavelength := _clean(meta.wavelength_range):
        sentences.append(f"Wavelength range: {wavelength}")
    if meta.exposure_time is not None and (exposure := describe_exposure(meta.exposure_time)):
        sentences.append(exposure[0].upper() + exposure[1:])
    if meta.calibration_level is not None:
        words = CALIBRATION_WORDS.get(meta.calibration_level)
        level = f"Calibration level {meta.calibration_level}"
        sentences.append(f"{level}, {words}" if words else level)
    if processing := _clean(meta.processing_level):
        words = PROCESSING_WORDS.get(processing.upper())
        if words:
            sentences.append(f"Processing level {processing}, {words}")
        elif processing.lower() != "unknown":
            sentences.append(f"Processing level {processing}")
    if data_type := _clean(meta.data_type):
        sentences.append(f"Data type {data_type}")
    if observed := _clean(meta.observation_date):
        sentences.append(f"Observed {describe_date(observed)}")
    if pi := _clean(meta.proposal_pi):
        sentences.append(f"PI {pi}")
    if proposal := _clean(meta.proposal_id):
        sentences.append(f"Proposal {proposal}")
    if file_name := _clean(meta.file_name):
        sentences.append(f"File {file_name}")
    if not sentences:
        return ""
    text = ". ".join(sentences) + "."
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1].rstrip() + "…"
