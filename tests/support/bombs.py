"""Decompression bombs: small files whose headers declare gigabytes of pixels, written by code.

A gzip stream may hold many members one after the other and still read as one stream, so a
4 GB run of zeros is one compressed 64 MiB member of zeros repeated: a few megabytes on disk,
written in well under a second. The tile-compressed bomb is a real ``GZIP_1`` tiled image whose
tile table repeats one compressed tile of zeros, so its ``ZNAXISn`` declare the full size.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from astropy.io import fits

from tests.support.fits_factory import make_wcs

#: Side of the bomb images: 33000 x 33000 float32 is 4.4 GB of zeros.
SIDE = 33_000
_MEMBER_BYTES = 64 * 1024 * 1024
_BLOCK = 2880


def _padded(n: int) -> int:
    return -(-n // _BLOCK) * _BLOCK


def _zero_members(n_bytes: int) -> bytes:
    """Gzip members that inflate to ``n_bytes`` zeros (one member compressed once, repeated)."""
    full, rest = divmod(n_bytes, _MEMBER_BYTES)
    member = gzip.compress(bytes(_MEMBER_BYTES), compresslevel=9) if full else b""
    tail = gzip.compress(bytes(rest), compresslevel=9) if rest else b""
    return member * full + tail


def _image_header(side: int, *, primary: bool, extname: str | None = None) -> fits.Header:
    header = fits.PrimaryHDU().header if primary else fits.ImageHDU().header
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = side
    header["NAXIS2"] = side
    if extname:
        header["EXTNAME"] = extname
    header.update(make_wcs((side, side)).to_header())
    return header


def _header_bytes(header: fits.Header) -> bytes:
    return header.tostring(padding=True).encode("ascii")


def gzip_bomb(path: Path, side: int = SIDE) -> None:
    """A ``.fits.gz`` whose primary HDU declares ``side`` x ``side`` float32 zeros (4.4 GB at 33000)."""
    data_bytes = _padded(side * side * 4)
    path.write_bytes(gzip.compress(_header_bytes(_image_header(side, primary=True))) + _zero_members(data_bytes))


def gzip_bomb_second_hdu(path: Path, side: int = SIDE) -> None:
    """A ``.fits.gz``: empty primary, the bomb as ``SCI`` (HDU 1), then a small table (HDU 2)."""
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="WAVELENGTH", format="D", array=np.linspace(1, 2, 10))], name="EXTRACT1D"
    )
    table_bytes = _header_bytes(table.header) + table.data.tobytes().ljust(_padded(table.data.nbytes), b"\0")
    head = _header_bytes(fits.PrimaryHDU().header) + _header_bytes(_image_header(side, primary=False, extname="SCI"))
    path.write_bytes(gzip.compress(head) + _zero_members(_padded(side * side * 4)) + gzip.compress(table_bytes))


def tile_bomb(path: Path, side: int = SIDE, tile_rows: int = 100) -> None:
    """A tile-compressed (``GZIP_1``) int32 image declaring ``side`` x ``side`` zeros (4.4 GB at 33000).

    One tile of ``tile_rows`` x ``side`` zeros is compressed by astropy; the tile table then
    repeats that row for every tile of the declared image.
    """
    small = path.with_suffix(".tile")
    seed = fits.CompImageHDU(
        data=np.zeros((tile_rows, side), dtype=np.int32), compression_type="GZIP_1", tile_shape=(tile_rows, side)
    )
    fits.HDUList([fits.PrimaryHDU(), seed]).writeto(small, overwrite=True)
    with fits.open(small, disable_image_compression=True) as hdul:
        table = hdul[1]
        header = table.header.copy()
        tile = bytes(np.asarray(table.data["COMPRESSED_DATA"][0], dtype=np.uint8))
    small.unlink()
    n_tiles = -(-side // tile_rows)
    column = fits.Column(
        name="COMPRESSED_DATA", format=f"1PB({len(tile)})", array=[np.frombuffer(tile, dtype=np.uint8)] * n_tiles
    )
    out = fits.BinTableHDU.from_columns([column])
    for card in header.cards:
        if card.keyword.startswith("Z") or card.keyword in ("EXTNAME",):
            out.header[card.keyword] = (card.value, card.comment)
    out.header["ZNAXIS2"] = side
    out.header["EXTNAME"] = "SCI"
    out.header.update(make_wcs((side, side)).to_header())
    fits.HDUList([fits.PrimaryHDU(), out]).writeto(path, overwrite=True)


BOMBS = {
    "gzip_bomb": ("bomb.fits.gz", gzip_bomb),
    "gzip_bomb_second_hdu": ("bomb_ext.fits.gz", gzip_bomb_second_hdu),
    "tile_bomb": ("bomb_tiles.fits", tile_bomb),
}


def write_bombs(directory: Path) -> dict[str, Path]:
    """Write every bomb of :data:`BOMBS` into ``directory``; return ``{name: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, (filename, writer) in BOMBS.items():
        path = directory / filename
        writer(path)
        paths[name] = path
    return paths
