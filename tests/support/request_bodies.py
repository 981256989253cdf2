"""Request bodies of the composite and mosaic endpoints as the backend serialises them (every key, explicit nulls)."""

from __future__ import annotations


def channel(
    paths: list[str], *, hue: float | None = None, rgb: list[float] | None = None, lum: bool = False, **kw: object
) -> dict[str, object]:
    """One channel with the backend's defaults; ``kw`` overrides any other key."""
    body: dict[str, object] = {
        "file_paths": paths,
        "stretch": "asinh",
        "black_point": 0,
        "white_point": 1,
        "gamma": 1,
        "asinh_a": 0.05,
        "curve": "linear",
        "weight": 1,
        "color": {"hue": hue, "rgb": rgb, "luminance": lum},
        "label": None,
        "wavelength_um": None,
    }
    body.update(kw)
    return body


def request_body(channels: list[dict[str, object]], **kw: object) -> dict[str, object]:
    """A whole request (PNG, 300 x 240 unless ``kw`` says otherwise)."""
    body: dict[str, object] = {
        "channels": channels,
        "overall": None,
        "background_neutralization": True,
        "output_format": "png",
        "quality": 95,
        "width": 300,
        "height": 240,
    }
    body.update(kw)
    return body


def mosaic_body(keys: list[str], **kw: object) -> dict[str, object]:
    """A ``POST /mosaic/generate`` body: every file with the backend's default stretch, FITS output."""
    body: dict[str, object] = {
        "files": [
            {"file_path": k, "stretch": "asinh", "black_point": 0, "white_point": 1, "gamma": 1, "asinh_a": 0.1}
            for k in keys
        ],
        "output_format": "fits",
        "quality": 95,
        "width": None,
        "height": None,
        "combine_method": "mean",
        "cmap": "grayscale",
    }
    body.update(kw)
    return body
