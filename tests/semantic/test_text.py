"""Metadata becomes prose with spelled-out codes."""

from __future__ import annotations

import pytest

from app.semantic.schemas import FileMetadata
from app.semantic.text import (
    MAX_TEXT_CHARS,
    describe_exposure,
    describe_filters,
    describe_instrument,
    metadata_to_text,
)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("NIRCAM", "Near Infrared Camera (NIRCam)"),
        ("MIRI/IMAGE", "Mid-Infrared Instrument (MIRI) imaging"),
        ("NIRSPEC/IFU", "Near Infrared Spectrograph (NIRSpec) integral field spectroscopy"),
        ("niriss/soss", "Near Infrared Imager and Slitless Spectrograph (NIRISS) single object slitless spectroscopy"),
        ("FGS", "Fine Guidance Sensor (FGS)"),
        ("OTHER/THING", "OTHER thing"),
    ],
)
def test_instrument_names(code: str, words: str) -> None:
    assert describe_instrument(code) == words


def test_filter_words() -> None:
    assert describe_filters("F444W") == "F444W filter at 4.44 µm (near-infrared, wide band)"
    assert describe_filters("F2100W") == "F2100W filter at 21 µm (mid-infrared, wide band)"
    assert describe_filters("CLEAR;F187N") == "CLEAR;F187N filter: F187N at 1.87 µm (near-infrared, narrow band)"
    assert describe_filters("CLEAR") == "CLEAR filter"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10.0, "short exposure (10 s)"), (800.0, "medium exposure (800 s)"), (2748.2, "deep exposure (2748 s)")],
)
def test_exposure_depth(seconds: float, text: str) -> None:
    assert describe_exposure(seconds) == text


def test_negative_exposure_is_skipped() -> None:
    assert describe_exposure(-1.0) is None
    assert describe_exposure(float("nan")) is None


def test_full_record() -> None:
    meta = FileMetadata(
        file_id="abc",
        target_name="NGC 3132",
        instrument="MIRI",
        filter_name="F1130W",
        exposure_time=2000,
        wavelength_range="INFRARED",
        processing_level="L2b",
        calibration_level=3,
        observation_date="2022-06-12",
        proposal_pi="Doe, Jane",
        proposal_id=2733,  # type: ignore[arg-type]  # numbers are taken as strings
        observation_title="Planetary nebula",
        data_type="image",
        file_name="jw02733_f1130w_i2d.fits",
    )
    text = metadata_to_text(meta)
    for part in (
        "Mid-Infrared Instrument (MIRI) observation of NGC 3132.",
        "11.3 µm (mid-infrared, wide band)",
        "Deep exposure (2000 s)",
        "Calibration level 3, combined calibrated product",
        "Processing level L2b, calibrated exposures",
        "Observed 2022-06-12 (June 2022)",
        "PI Doe, Jane",
        "Proposal 2733",
        ". Planetary nebula.",
        "Data type image",
        "File jw02733_f1130w_i2d.fits",
        "Wavelength range: INFRARED",
    ):
        assert part in text


def test_instrument_mode_and_target() -> None:
    meta = FileMetadata(file_id="x", instrument="MIRI/IMAGE", target_name="Carina Nebula")
    assert metadata_to_text(meta) == "Mid-Infrared Instrument (MIRI) imaging of Carina Nebula."


def test_nothing_to_embed() -> None:
    assert metadata_to_text(FileMetadata(file_id="x")) == ""
    assert metadata_to_text(FileMetadata(file_id="x", target_name="  ", processing_level="unknown")) == ""
    assert metadata_to_text(FileMetadata(file_id="x", target_name="M16")) == "Observation of M16."


def test_long_metadata_is_capped() -> None:
    text = metadata_to_text(FileMetadata(file_id="x", observation_title="word " * 5000))
    assert len(text) == MAX_TEXT_CHARS
    assert text.endswith("…")
