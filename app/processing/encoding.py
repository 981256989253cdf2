"""Encode uint8 images as PNG or JPEG bytes, optionally embedding XMP metadata.

JPEG goes through Pillow (libjpeg-turbo). PNG is written here: each row gets the PNG ``Up``
filter (one numpy subtraction) and the rows are deflated by ISA-L (``isal``, a maintained binding
of Intel's compression library, which writes standard zlib streams) in bands of rows, so the
filtered copy never holds more than one band. ``bench/png.py`` measures why: on a 2048 x 2048
composite-like frame Pillow at ``compress_level=1`` takes about 420 ms (most of it in its adaptive
per-row filter choice, which it does not let us turn off), this writer about 40 ms, and its file is
smaller.
XMP goes into an ``iTXt`` chunk keyed ``XML:com.adobe.xmp`` in PNG and into an APP1 segment in
JPEG, where AVM-aware tools look for it.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image

#: ISA-L deflate level for PNG (0-3): 1 is the fastest level that still matches zlib's level 6 in size
#: on our images.
DEFAULT_PNG_COMPRESS_LEVEL = 1
#: Rows filtered and deflated at a time (bounds the filtered copy).
PNG_BAND_ROWS = 256
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type and channel count by the array's last axis.
PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
PNG_FILTER_UP = 2
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


def _png_rows(pixels: np.ndarray) -> np.ndarray:
    """Return the image as ``H x (W * channels)`` uint8 rows, after the same checks as :func:`_to_image`."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"image must not be empty, got shape {array.shape}")
    return np.ascontiguousarray(array).reshape(array.shape[0], -1)


def _chunk(kind: bytes, *body: bytes) -> list[bytes]:
    """One PNG chunk as pieces: length, type, the body's pieces, CRC-32 of type and body."""
    crc = zlib.crc32(kind)
    for piece in body:
        crc = zlib.crc32(piece, crc)
    return [struct.pack(">I", sum(map(len, body))), kind, *body, struct.pack(">I", crc)]


def _idat_stream(rows: np.ndarray, level: int) -> list[bytes]:
    """Deflate the ``Up``-filtered rows band by band; returns the pieces of one zlib stream."""
    compressor = isal_zlib.compressobj(level)
    pieces = []
    band = np.empty((min(PNG_BAND_ROWS, len(rows)), rows.shape[1] + 1), dtype=np.uint8)
    band[:, 0] = PNG_FILTER_UP
    for start in range(0, len(rows), PNG_BAND_ROWS):
        stop = min(start + PNG_BAND_ROWS, len(rows))
        out = band[: stop - start]
        if start == 0:  # the first row's previous row is zeros: Up leaves it as it is
            out[0, 1:] = rows[0]
            np.subtract(rows[1:stop], rows[: stop - 1], out=out[1:, 1:])
        else:
            np.subtract(rows[start:stop], rows[start - 1 : stop - 1], out=out[:, 1:])
        pieces.append(compressor.compress(out))
    pieces.append(compressor.flush())
    return pieces


def encode_png(
    pixels: np.ndarray, *, xmp: str | None = None, compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL
) -> bytes:
    """PNG bytes of a uint8 gray, RGB or RGBA image (8 bits per sample, not interlaced).

    Parameters
    ----------
    pixels
        ``H x W``, ``H x W x 3`` or ``H x W x 4`` uint8 array (row 0 is the top of the image).
    xmp
        Optional XMP packet (e.g. from :func:`app.processing.avm.avm_xmp`), stored uncompressed in
        an iTXt chunk.
    compress_level
        ISA-L deflate level 0-3.
    """
    if not 0 <= compress_level <= 3:
        raise ValueError(f"compress_level must be in 0..3, got {compress_level}")
    rows = _png_rows(pixels)
    height, width = pixels.shape[:2]
    colour_type = PNG_COLOUR_TYPES[1 if pixels.ndim == 2 else pixels.shape[2]]
    parts = [PNG_SIGNATURE, *_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if xmp:  # keyword, no compression (flag 0, method 0), empty language tag and translated keyword
        parts += _chunk(b"iTXt", XMP_PNG_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00", xmp.encode("utf-8"))
    parts += _chunk(b"IDAT", *_idat_stream(rows, compress_level))
    parts += _chunk(b"IEND")
    return b"".join(parts)


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
