"""PNG (our writer) and JPEG (Pillow) encoding, XMP embedding, decoding back with Pillow at the expected size."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from app.processing.encoding import PNG_BAND_ROWS, encode_image, encode_jpeg, encode_png

XMP = '<x:xmpmeta xmlns:x="adobe:ns:meta/">hello</x:xmpmeta>'


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_gray_rgb_rgba_roundtrip() -> None:
    rng = np.random.default_rng(0)
    for shape, mode in (((30, 40), "L"), ((30, 40, 3), "RGB"), ((30, 40, 4), "RGBA")):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        image = _decode(encode_png(pixels))
        assert image.format == "PNG"
        assert image.mode == mode
        assert image.size == (40, 30)
        assert np.array_equal(np.asarray(image), pixels)  # lossless


def test_png_spanning_several_bands_is_lossless_and_well_formed() -> None:
    # rows cross the band boundaries of the writer; Pillow checks every chunk's CRC and the zlib stream
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (PNG_BAND_ROWS * 2 + 7, 33, 3), dtype=np.uint8)
    pixels[PNG_BAND_ROWS - 1 : PNG_BAND_ROWS + 1] = 255
    data = encode_png(pixels)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data.endswith(b"IEND\xaeB`\x82")
    image = _decode(data)
    assert np.array_equal(np.asarray(image), pixels)


def _idat(data: bytes) -> bytes:
    """The concatenated IDAT bodies of a PNG."""
    at, found = 8, b""
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if data[at + 4 : at + 8] == b"IDAT":
            found += data[at + 8 : at + 8 + length]
        at += 12 + length
    return found


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_png_deflated_in_parts_is_one_valid_zlib_stream(threads: int) -> None:
    # zlib checks the Adler-32 of the joined parts; every part boundary falls between bands
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (PNG_BAND_ROWS * 3 + 5, 21, 3), dtype=np.uint8)
    data = encode_png(pixels, threads=threads)
    raw = zlib.decompress(_idat(data))
    assert len(raw) == pixels.shape[0] * (pixels.shape[1] * 3 + 1)
    assert np.array_equal(np.asarray(_decode(data)), pixels)
    assert data == encode_png(pixels, threads=threads)  # deterministic


def test_png_of_a_smooth_image_is_compressed() -> None:
    ramp = np.tile(np.arange(512, dtype=np.uint16)[None, :] // 2, (512, 1)).astype(np.uint8)
    assert len(encode_png(ramp)) < ramp.nbytes / 20


def test_png_rejects_empty_and_bad_levels() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        encode_png(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match=r"compress_level must be in 0\.\.3, got 6"):
        encode_png(np.zeros((2, 2), np.uint8), compress_level=6)


def test_png_xmp_itxt_chunk() -> None:
    data = encode_png(np.zeros((4, 5, 3), dtype=np.uint8), xmp=XMP)
    assert b"iTXtXML:com.adobe.xmp" in data
    assert _decode(data).info["xmp"] == XMP.encode()


def test_jpeg_quality_and_xmp() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    small = encode_jpeg(pixels, quality=10)
    large = encode_jpeg(pixels, quality=95, xmp=XMP)
    assert len(small) < len(large)
    image = _decode(large)
    assert image.format == "JPEG"
    assert image.size == (48, 64)
    assert image.info["xmp"] == XMP.encode()
    assert b"http://ns.adobe.com/xap/1.0/\x00" in large  # APP1 XMP segment


def test_jpeg_composites_alpha_onto_black() -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:4, :, 3] = 255  # top half opaque white, bottom transparent
    image = np.asarray(_decode(encode_jpeg(rgba, quality=100)).convert("L"))
    assert image[:3].mean() > 240
    assert image[5:].mean() < 15


def test_validation_and_dispatch() -> None:
    pixels = np.zeros((4, 4), dtype=np.uint8)
    assert _decode(encode_image(pixels, "jpg")).format == "JPEG"
    assert _decode(encode_image(pixels, "PNG")).format == "PNG"
    with pytest.raises(ValueError, match="unknown image format 'gif'"):
        encode_image(pixels, "gif")
    with pytest.raises(ValueError, match="image must be uint8, got float32"):
        encode_png(pixels.astype(np.float32))
    with pytest.raises(ValueError, match=r"image must be HxW, HxWx3 or HxWx4, got shape \(2, 2, 2\)"):
        encode_png(np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"quality must be in 1\.\.100, got 0"):
        encode_jpeg(pixels, quality=0)
