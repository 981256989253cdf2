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

from app.processing.parallel import map_in_threads

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


def _checked(pixels: np.ndarray) -> np.ndarray:
    """Return ``pixels`` as a C-contiguous ``H x W``, ``H x W x 3`` or ``H x W x 4`` uint8 array, or raise."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _to_image(pixels: np.ndarray) -> Image.Image:
    """Wrap an ``H x W`` (gray), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA) uint8 array."""
    array = _checked(pixels)
    mode = "L" if array.ndim == 2 else ("RGB" if array.shape[2] == 3 else "RGBA")
    return Image.fromarray(array, mode=mode)


def _png_rows(pixels: np.ndarray) -> np.ndarray:
    """Return the image as ``H x (W * channels)`` uint8 rows (not empty)."""
    array = _checked(pixels)
    if array.size == 0:
        raise ValueError(f"image must not be empty, got shape {array.shape}")
    return array.reshape(array.shape[0], -1)


def _chunk(kind: bytes, *body: bytes) -> list[bytes]:
    """One PNG chunk as pieces: length, type, the body's pieces, CRC-32 of type and body."""
    crc = zlib.crc32(kind)
    for piece in body:
        crc = zlib.crc32(piece, crc)
    return [struct.pack(">I", sum(map(len, body))), kind, *body, struct.pack(">I", crc)]


def _filtered(rows: np.ndarray, start: int, stop: int, band: np.ndarray) -> np.ndarray:
    """Rows ``start:stop`` with the ``Up`` filter (each row minus the one above), into ``band``."""
    out = band[: stop - start]
    if start == 0:  # the first row's previous row is zeros: Up leaves it as it is
        out[0, 1:] = rows[0]
        np.subtract(rows[1:stop], rows[: stop - 1], out=out[1:, 1:])
    else:
        np.subtract(rows[start:stop], rows[start - 1 : stop - 1], out=out[:, 1:])
    return out


def _deflate_rows(rows: np.ndarray, start: int, stop: int, level: int, last: bool) -> tuple[list[bytes], int]:
    """Raw-deflate the filtered rows ``start:stop`` band by band; returns the pieces and their Adler-32.

    A part that is not the ``last`` ends with a sync flush (byte-aligned, no final block), so parts
    deflated separately concatenate into one valid stream.
    """
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    band = np.empty((min(PNG_BAND_ROWS, stop - start), rows.shape[1] + 1), dtype=np.uint8)
    band[:, 0] = PNG_FILTER_UP
    pieces, adler = [], 1
    for first in range(start, stop, PNG_BAND_ROWS):
        out = _filtered(rows, first, min(first + PNG_BAND_ROWS, stop), band)
        adler = isal_zlib.adler32(out, adler)
        pieces.append(compressor.compress(out))
    pieces.append(compressor.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH))
    return pieces, adler


def _adler32_concat(first: int, second: int, second_length: int) -> int:
    """Adler-32 of ``X + Y`` from those of ``X`` and ``Y`` (``len(Y) == second_length``).

    With ``A = 1 + sum(bytes)`` and ``B = sum of the running A`` (mod 65521), every running sum of
    ``Y`` grows by ``A_X - 1``: ``A = A_X + A_Y - 1`` and ``B = B_X + B_Y + len(Y) * (A_X - 1)``.
    """
    modulus = 65521
    a_x, b_x = first & 0xFFFF, first >> 16
    a_y, b_y = second & 0xFFFF, second >> 16
    a = (a_x + a_y - 1) % modulus
    b = (b_x + b_y + second_length * (a_x - 1)) % modulus
    return (b << 16) | a


def _idat_stream(rows: np.ndarray, level: int, threads: int = 1) -> list[bytes]:
    """Deflate the ``Up``-filtered rows into the pieces of one zlib stream, in ``threads`` parts at once.

    Each part is a run of whole bands deflated on its own (ISA-L releases the GIL); the parts are
    joined behind one zlib header, with the Adler-32 of the whole filtered data at the end.
    """
    n_bands = -(-len(rows) // PNG_BAND_ROWS)
    parts = max(1, min(threads, n_bands))
    cuts = [round(i * n_bands / parts) * PNG_BAND_ROWS for i in range(parts)] + [len(rows)]
    spans = [(cuts[i], min(cuts[i + 1], len(rows))) for i in range(parts)]
    done = map_in_threads(
        lambda span: _deflate_rows(rows, span[0], span[1], level, last=span[1] == len(rows)), spans, parts
    )
    adler = 1
    for (start, stop), (_, part_adler) in zip(spans, done, strict=True):
        adler = _adler32_concat(adler, part_adler, (stop - start) * (rows.shape[1] + 1))
    header = b"\x78\x01"  # deflate, 32 KiB window, fastest-level hint, no dictionary (check bits: 0x7801 % 31 == 0)
    return [header, *(piece for pieces, _ in done for piece in pieces), struct.pack(">I", adler)]


def encode_png(
    pixels: np.ndarray,
    *,
    xmp: str | None = None,
    compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL,
    threads: int = 1,
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
    threads
        Parts of the image deflated at once.
    """
    if not 0 <= compress_level <= 3:
        raise ValueError(f"compress_level must be in 0..3, got {compress_level}")
    rows = _png_rows(pixels)
    height, width = pixels.shape[:2]
    colour_type = PNG_COLOUR_TYPES[1 if pixels.ndim == 2 else pixels.shape[2]]
    parts = [PNG_SIGNATURE, *_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if xmp:  # keyword, no compression (flag 0, method 0), empty language tag and translated keyword
        parts += _chunk(b"iTXt", XMP_PNG_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00", xmp.encode("utf-8"))
    parts += _chunk(b"IDAT", *_idat_stream(rows, compress_level, threads))
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
    pixels: np.ndarray,
    image_format: str,
    *,
    quality: int = DEFAULT_JPEG_QUALITY,
    xmp: str | None = None,
    threads: int = 1,
) -> bytes:
    """Encode as ``"png"`` or ``"jpeg"`` (``"jpg"`` accepted); the media type is ``MEDIA_TYPES[image_format]``."""
    fmt = image_format.lower()
    if fmt == "png":
        return encode_png(pixels, xmp=xmp, threads=threads)
    if fmt in ("jpeg", "jpg"):
        return encode_jpeg(pixels, quality=quality, xmp=xmp)
    raise ValueError(f"unknown image format {image_format!r}; expected png or jpeg")
