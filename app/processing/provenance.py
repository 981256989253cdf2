"""Provenance of a mosaic: the FITS header cards and the SRCMETA table that say what went into it.

The primary header carries the grid WCS, ``MOSAIC``/``NINPUTS``/``COMBMETH``, one ``SRCnnnn`` card
per input, the keywords every input shares and the ``SRC*`` summaries, plus HISTORY; the
``SRCMETA`` binary table lists each input's provenance keywords (``SRCINDEX, FILENAME, KEYWORD,
VALUE, COMMENT``). Only headers of the inputs are read.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from astropy.io import fits

from app.processing.fits_io import open_fits
from app.processing.reprojection import Grid
from app.processing.sources import ImageSource

#: Keywords copied per source into SRCMETA (primary header first, the image header overrides).
PROVENANCE_KEYWORDS = (
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "FILTER",
    "PUPIL",
    "TARGNAME",
    "OBS_ID",
    "PROGRAM",
    "DATE-OBS",
    "EFFEXPTM",
    "EXPTIME",
    "BUNIT",
    "PHOTMJSR",
)
#: Summary cards: card name -> source keyword (unique values joined with commas).
SUMMARY_CARDS = {
    "SRCINST": "INSTRUME",
    "SRCDETS": "DETECTOR",
    "SRCFILT": "FILTER",
    "SRCTARG": "TARGNAME",
    "SRCOBS": "OBS_ID",
    "SRCPROP": "PROGRAM",
}
#: Keywords copied to the primary header when every source has the same value.
SHARED_KEYWORDS = ("TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "PUPIL", "TARGNAME", "PROGRAM", "BUNIT")


def _source_cards(source: ImageSource) -> dict[str, tuple[str, str]]:
    """Provenance keywords of a source: keyword -> (value text, comment)."""
    cards: dict[str, tuple[str, str]] = {}
    try:
        with open_fits(source.path) as hdul:
            headers = [hdul[0].header]
    except Exception:  # provenance is best effort; the image header is still there
        headers = []
    headers.append(source.info.header)
    for header in headers:
        for key in PROVENANCE_KEYWORDS:
            if key in header and header[key] is not None and str(header[key]).strip() != "":
                cards[key] = (str(header[key]), str(header.comments[key]))
    return cards


def mosaic_header(
    sources: list[ImageSource],
    grid: Grid,
    method: str,
    *,
    creator: str,
    weighted: bool = False,
    offsets: np.ndarray | None = None,
) -> tuple[fits.Header, fits.BinTableHDU]:
    """Return the primary header of a float32 mosaic on ``grid`` (WCS and provenance) and the SRCMETA table.

    The header is complete for writing the image as a stream (BITPIX, NAXIS1, NAXIS2 set), so the
    pixels can follow band by band. ``creator`` names the software and version; ``weighted`` says
    the mean was inverse-variance weighted; ``offsets`` are the background offsets subtracted per
    input, if any.
    """
    hdul = provenance_hdus(
        sources, grid, np.zeros((1, 1), dtype=np.float32), method, creator=creator, weighted=weighted, offsets=offsets
    )
    header = hdul[0].header.copy()
    header["NAXIS1"] = grid.nx
    header["NAXIS2"] = grid.ny
    return header, hdul[1]


def provenance_hdus(
    sources: list[ImageSource],
    grid: Grid,
    data: np.ndarray,
    method: str,
    *,
    creator: str,
    weighted: bool = False,
    offsets: np.ndarray | None = None,
) -> fits.HDUList:
    """Return the output HDUs: the MOSAIC primary image with WCS and provenance, and the SRCMETA table.

    ``creator`` names the software and version; ``weighted`` says the mean was inverse-variance
    weighted; ``offsets`` are the background offsets subtracted per input, if any.
    """
    header = grid.header()
    header["EXTNAME"] = ("MOSAIC", "mosaic image")
    header["ORIGIN"] = ("jwst-engine", "institution or software that wrote the file")
    header["CREATOR"] = (creator, "software that created the mosaic")
    header["DATE"] = (dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), "UTC date the file was written")
    header["MOSAIC"] = (True, "this image is a mosaic")
    header["NINPUTS"] = (len(sources), "number of input files")
    header["COMBMETH"] = (method, "combine method")
    all_cards = [_source_cards(s) for s in sources]
    _add_input_cards(header, sources, all_cards)
    _add_history(header, len(sources), method, weighted=weighted, offsets=offsets)
    table = _srcmeta_table(sources, all_cards, offsets)
    return fits.HDUList([fits.PrimaryHDU(data=data, header=header), table])


def _add_input_cards(
    header: fits.Header, sources: list[ImageSource], all_cards: list[dict[str, tuple[str, str]]]
) -> None:
    """Add one ``SRCnnnn`` card per input, the keywords all inputs share and the ``SRC*`` summaries."""
    for index, source in enumerate(sources, start=1):
        header[f"SRC{index:04d}"] = (_ascii(source.name)[-68:], f"input file {index}")
    for key in SHARED_KEYWORDS:
        shared = {cards[key][0] if key in cards else None for cards in all_cards}
        if len(shared) == 1 and None not in shared:
            header[key] = (shared.pop(), "shared by all inputs")
    for card, key in SUMMARY_CARDS.items():
        values = sorted({cards[key][0] for cards in all_cards if key in cards})
        if values:
            header[card] = (",".join(values)[:68], f"input {key} values")


def _add_history(
    header: fits.Header, n_inputs: int, method: str, *, weighted: bool, offsets: np.ndarray | None
) -> None:
    """Add the HISTORY lines, with the weighting and background-matching cards when they apply."""
    header.add_history(f"Mosaic of {n_inputs} files combined with '{method}' by jwst-engine.")
    header.add_history("Inputs reprojected (bilinear) onto a north-up TAN grid; exact zeros masked.")
    if method == "mean" and weighted:
        header["COMBWGT"] = ("inverse-variance", "mean weighted by 1/ERR**2, 1/sum(VAR_*) or WHT")
        header.add_history("Mean weighted by inverse variance (ERR, else VAR_*, else WHT extensions).")
    if offsets is not None:
        header["BKGMATCH"] = (True, "per-input background offsets subtracted")
        header.add_history("Background matched: offsets subtracted per input (SRCMETA keyword BKGOFFST).")


def _srcmeta_table(
    sources: list[ImageSource], all_cards: list[dict[str, tuple[str, str]]], offsets: np.ndarray | None
) -> fits.BinTableHDU:
    """Build the SRCMETA table: each input's provenance keywords, and its background offset if any."""
    rows: list[tuple[int, str, str, str, str]] = []
    for index, (source, cards) in enumerate(zip(sources, all_cards, strict=True), start=1):
        for key, (value, comment) in cards.items():
            rows.append((index, _ascii(source.name), key, value, comment))
        if offsets is not None:
            rows.append(
                (index, _ascii(source.name), "BKGOFFST", f"{offsets[index - 1]:.8g}", "background offset subtracted")
            )
    columns = [
        fits.Column(name="SRCINDEX", format="J", array=np.array([r[0] for r in rows], dtype=np.int32)),
        fits.Column(name="FILENAME", format=_afmt(r[1] for r in rows), array=np.array([r[1] for r in rows], dtype=str)),
        fits.Column(name="KEYWORD", format="8A", array=np.array([r[2] for r in rows], dtype=str)),
        fits.Column(name="VALUE", format=_afmt(r[3] for r in rows), array=np.array([r[3] for r in rows], dtype=str)),
        fits.Column(name="COMMENT", format=_afmt(r[4] for r in rows), array=np.array([r[4] for r in rows], dtype=str)),
    ]
    return fits.BinTableHDU.from_columns(columns, name="SRCMETA")


def _ascii(text: str) -> str:
    """FITS header and table strings are printable ASCII: replace anything else with '?'."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _afmt(values: object) -> str:
    width = max([len(str(v)) for v in values] + [1])  # type: ignore[attr-defined]
    return f"{width}A"
