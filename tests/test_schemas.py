"""The shared display vocabulary: one rule for unknown stretch names, one conversion to the core's settings."""

from __future__ import annotations

import pytest

from app.core.exceptions import InvalidRequestError
from app.processing.enhancement import StretchSettings
from app.schemas import DisplaySettings, core_stretch, resolve_stretch


def test_the_viewer_policy_takes_exact_names_and_refuses_the_rest() -> None:
    assert resolve_stretch("asinh", on_unknown="reject") == ("asinh", False)
    for name in ("ASINH", " asinh", "cubic", ""):
        with pytest.raises(InvalidRequestError, match="Invalid stretch"):
            resolve_stretch(name, on_unknown="reject")


def test_the_fallback_policy_ignores_case_and_spaces_and_says_when_it_falls_back() -> None:
    assert resolve_stretch(" Asinh ", on_unknown="fallback") == ("asinh", False)
    assert resolve_stretch("cubic", on_unknown="fallback") == ("zscale", True)
    assert resolve_stretch("AUTO", on_unknown="fallback", allowed=("asinh", "auto")) == ("auto", False)


def test_core_stretch_carries_the_levels() -> None:
    display = DisplaySettings.model_validate(
        {"stretch": "log", "black_point": 0.1, "white_point": None, "gamma": 2, "asinh_a": None}
    )
    assert core_stretch(display, "log") == StretchSettings("log", 0.1, 1.0, 2.0, 0.1)
