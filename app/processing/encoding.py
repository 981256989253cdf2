"""Encode uint8 images as PNG or JPEG bytes with Pillow, optionally embedding XMP metadata.

PNG is written with a fast ``compress_level`` and never ``optimize=True`` (which costs tens of
seconds on large images). XMP goes into an ``iTXt`` chunk keyed ``XML:com.adobe.xmp`` in PNG and
into an APP1 segment in JPEG, where AVM-aware tools look for it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

#: zlib level for PNG: 1 is several times faster than 6 and only slightly larger.
DEFAULT_PNG_COMPRESS_LEVEL = 1
DEFAULT_JPEG_QUALITY = 90
XMP_PNG_KEY = "XML:com.adobe.xmp"


def _to_image(pixels: np.ndarray) -> Image.Image:
    """Wrap an ``H x W`` (gray), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA) uint8 array."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}")
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[2] == 3 else "RGBA")
    raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")


def encode_png(
    pixels: np.ndarray, *, xmp: str | None = None, compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL
) -> bytes:
    """PNG bytes of a uint8 gray, RGB or RGBA image.

    Parameters
    ----------
    pixels
        ``H x W``, ``H x W x 3`` or ``H x W x 4`` uint8 array (row 0 is the top of the image).
    xmp
        Optional XMP packet (e.g. from :func:`app.processing.avm.avm_xmp`), stored as an iTXt chunk.
    compress_level
        zlib level 0-9.
    """
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
    image = _to_image(pixels)
    info = None
    if xmp:
        info = PngInfo()
        info.add_itxt(XMP_PNG_KEY, xmp, lang="", tkey="", zip=False)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level, optimize=False, pnginfo=info)
    return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, *, quality: int = DEFAULT_JPEG_QUALITY, xmp: str | None = None) -> bytes:
    """JPEG bytes of a uint8 gray or RGB image; RGBA is composited onto black first.

    Parameters
    ----------
    pixels
        ``H x W``, ``H x W x 3`` or ``H x W x 4`` uint8 array.
    quality
        JPEG quality 1-100.
    xmp
        Optional XMP packet, stored in an APP1 segment.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    image = _to_image(pixels)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (0, 0, 0))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    buffer = io.BytesIO()
    kwargs: dict[str, object] = {}
    if xmp:
        kwargs["xmp"] = xmp.encode("utf-8")
    image.save(buffer, format="JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


#: Media type of each output format.
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg"}


def encode_image(
    pixels: np.ndarray, image_format: str, *, quality: int = DEFAULT_JPEG_QUALITY, xmp: str | None = None
) -> bytes:
    """Encode as ``"png"`` or ``"jpeg"`` (``"jpg"`` accepted); the media type is ``MEDIA_TYPES[image_format]``."""
    fmt = image_format.lower()
    if fmt == "png":
        return encode_png(pixels, xmp=xmp)
    if fmt in ("jpeg", "jpg"):
        return encode_jpeg(pixels, quality=quality, xmp=xmp)
    raise ValueError(f"unknown image format {image_format!r}; expected png or jpeg")
