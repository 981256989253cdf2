"""Read FITS images with bounded memory.

Everything starts from the headers: :func:`image_info` finds the image HDU and its shape without
reading a pixel, so callers can check budgets first. :func:`read_plane` then reads one 2-D
plane (a cube slice), optionally downscaled by striding or block-averaging in row bands, so a
10k x 10k file never becomes a full-size float64 copy. Plain (uncompressed) HDUs are read band by
band with ordinary file reads rather than through a memory map, so the process's resident memory
stays at about one band whatever the file size; tile- and gzip-compressed files go through
astropy. :func:`check_read_budget` therefore counts, for an uncompressed plane, what a read holds
(the downscaled output and one band), and for a compressed one its declared size. Integer images
are scaled with BSCALE/BZERO and BLANK pixels become NaN; the result is always float32.

Compressed files are bounded by what they would inflate, not by their size on disk: gzip, bzip2
and xz streams are opened through :mod:`app.processing.inflate` (a lazy seek and a hard end), and
before any pixel of a compressed HDU is read, its declared size (all HDUs up to and including it
for a whole-file stream, ``ZNAXISn`` x ``ZBITPIX`` for a tiled image) is checked against the
running job's inflation budget (:func:`inflate_budget`, :class:`BudgetExceeded` above it). A plain
file read in bands or windows inflates nothing and keeps working at any size.

Which image HDU: an :class:`HduChoice` (index, or EXTNAME and EXTVER) when the caller has one,
else the ``SCI`` extension when the file has one, else the first HDU with image data. In a JWST
product, the ``DQ`` extension of the image's shape is read alongside, band for band with the same
stride or blocks, and the pixels it flags with :data:`JWST_DQ_MASK` become NaN before any
averaging, so every endpoint sees the same masked data at the cost of one more band in memory.

This module raises the core's errors of :mod:`app.processing.errors` (``InvalidFits`` and its
``UnsupportedEncoding`` for Unix-compressed ``.Z`` files, ``NoImageData``, ``BudgetExceeded``,
``InvalidInput``) so every endpoint reports bad files the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from app.processing.errors import BudgetExceeded, InvalidFits, InvalidInput, NoImageData, ProcessingError
from app.processing.inflate import BoundedStream, limit_message, open_bounded
from app.processing.parallel import map_in_threads

logger = logging.getLogger("app.processing.fits_io")

DownscaleMethod = Literal["stride", "block"]

#: Bytes of raw pixels processed at once when block-averaging (bounds temporary memory).
BAND_BYTES = 16 * 1024 * 1024
_IMAGE_HDU_TYPES = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
#: Inflation budget of a job that set none (:func:`inflate_budget`), in bytes.
DEFAULT_INFLATE_BYTES = 1536 * 1024 * 1024
_inflate_limit: ContextVar[int] = ContextVar("fits_inflate_limit", default=DEFAULT_INFLATE_BYTES)


@contextmanager
def inflate_budget(n_bytes: int) -> Iterator[None]:
    """Inside the ``with`` block, compressed FITS data may inflate to at most ``n_bytes``."""
    token = _inflate_limit.set(n_bytes)
    try:
        yield
    finally:
        _inflate_limit.reset(token)


def inflate_limit() -> int:
    """Return the inflation budget of the running job, in bytes."""
    return _inflate_limit.get()


#: JWST DQ bits (``stdatamodels`` ``dqflags.pixel``) whose pixels are read as NaN. DO_NOT_USE is
#: the pipeline's own "exclude this pixel" flag (set on dead, fully saturated, outlier and other
#: unusable pixels) and NON_SCIENCE marks detector areas outside the science aperture: the two the
#: resample step leaves out by default. DEAD and HOT are detector defects that never carry sky
#: signal, even when a reference file flags them without DO_NOT_USE. SATURATED, JUMP_DET, WARM and
#: the rest are kept: a partly saturated pixel at the core of a bright star still has a valid slope
#: from its unsaturated groups, and a jump is corrected, so masking them would cut real stars.
JWST_DQ_DO_NOT_USE = 1
JWST_DQ_NON_SCIENCE = 512
JWST_DQ_DEAD = 1024
JWST_DQ_HOT = 2048
JWST_DQ_MASK = JWST_DQ_DO_NOT_USE | JWST_DQ_NON_SCIENCE | JWST_DQ_DEAD | JWST_DQ_HOT
#: EXTNAME of the image a JWST (or HST) product is about: the default image HDU when present.
SCIENCE_EXTNAME = "SCI"


@dataclass(frozen=True)
class HduChoice:
    """Which image HDU of a file to read: by index, by EXTNAME (and EXTVER), or the default.

    The default (no index, or a negative one, and no name) is the ``SCI`` image HDU when the file
    has one, else the first HDU with image data.
    """

    index: int | None = None
    extname: str | None = None
    extver: int | None = None

    @property
    def is_default(self) -> bool:
        """Whether nothing was chosen (the default HDU is used)."""
        return (self.index is None or self.index < 0) and not self.extname


@dataclass(frozen=True)
class DqPartner:
    """Where a JWST data-quality plane of the image lives and how to read it."""

    hdu_index: int
    bitpix: int
    bzero: int
    bits: int = JWST_DQ_MASK


@dataclass(frozen=True)
class ImageInfo:
    """What the headers say about the chosen image HDU (no pixel read)."""

    hdu_index: int
    shape: tuple[int, ...]
    bitpix: int
    header: fits.Header
    extname: str | None
    inflated_bytes: int = 0
    """Bytes that must be inflated to read the HDU's data: 0 for a plain file."""
    dq: DqPartner | None = None
    """The JWST data-quality extension of the same shape whose flagged pixels are read as NaN, if any."""

    @property
    def label(self) -> str:
        """``HDU n`` or ``HDU n (EXTNAME)``, for messages."""
        return f"HDU {self.hdu_index} ({self.extname})" if self.extname else f"HDU {self.hdu_index}"

    @property
    def ny(self) -> int:
        """Number of rows (second-to-last axis)."""
        return self.shape[-2]

    @property
    def nx(self) -> int:
        """Number of columns (last axis)."""
        return self.shape[-1]

    @property
    def n_elements(self) -> int:
        """Number of values in the whole HDU (all axes)."""
        return math.prod(self.shape)

    @property
    def slice_axis(self) -> int | None:
        """Index (in :attr:`shape`) of the axis browsed by ``slice_index``; ``None`` for an image.

        Axes of length 1 (the Stokes axis of a radio cube, a degenerate frequency axis) are
        skipped: a cube ``(STOKES=1, FREQ=7, DEC, RA)`` is browsed along its 7 channels. Of several
        longer axes, the first (the last FITS axis) is browsed, the others are read at their middle.
        """
        for index, length in enumerate(self.shape[:-2]):
            if length > 1:
                return index
        return None

    @property
    def slice_fits_axis(self) -> int | None:
        """FITS number (``NAXISn``, 1-based) of the browsed axis; ``None`` for an image."""
        axis = self.slice_axis
        return None if axis is None else len(self.shape) - axis

    @property
    def n_slices(self) -> int:
        """Length of the browsed axis (length-1 axes squeezed), 1 for an image."""
        axis = self.slice_axis
        return 1 if axis is None else self.shape[axis]

    @property
    def is_cube(self) -> bool:
        """Whether an axis besides the two image axes has more than one plane."""
        return self.slice_axis is not None


@dataclass
class Plane:
    """One 2-D float32 plane read from a file, possibly downscaled."""

    data: np.ndarray
    info: ImageInfo
    slice_index: int
    factor: int
    """Downscale factor along each axis (1 = full resolution)."""

    @property
    def original_shape(self) -> tuple[int, int]:
        """Shape ``(ny, nx)`` of the plane at full resolution."""
        return (self.info.ny, self.info.nx)


@contextmanager
def open_fits(path: Path | str, *, memmap: bool = True) -> Iterator[fits.HDUList]:
    """Open a FITS file lazily; any parsing failure becomes :class:`InvalidFits` .

    A compressed file is read through a bounded stream (:func:`app.processing.inflate.open_bounded`):
    whatever the code inside the block does with it, nothing inflates past :func:`inflate_limit`,
    and an error raised after the stream refused a read leaves as :class:`BudgetExceeded`.
    """
    stream = _open_stream(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            hdul = fits.open(
                stream if stream is not None else path,
                memmap=memmap,
                do_not_scale_image_data=True,
                lazy_load_hdus=True,
                mode="readonly",
            )
    except Exception as error:
        _close(stream)
        _raise_if_refused(stream, error)
        if isinstance(error, MemoryError | ProcessingError):
            raise
        logger.info("fits_open_failed", extra={"error": type(error).__name__})
        raise InvalidFits(f"Not a valid FITS file: {Path(path).name}") from error
    try:
        yield hdul
    except Exception as error:
        _raise_if_refused(stream, error)
        raise
    finally:
        hdul.close()
        _close(stream)
    if stream is not None and stream.exceeded:  # astropy took the refusal for the end of the file
        raise BudgetExceeded(limit_message(stream.needed, stream.limit))


def _open_stream(path: Path | str) -> BoundedStream | None:
    try:
        return open_bounded(path, inflate_limit())
    except OSError as error:
        logger.info("fits_open_failed", extra={"error": type(error).__name__})
        raise InvalidFits(f"Not a valid FITS file: {Path(path).name}") from error


def _close(stream: BoundedStream | None) -> None:
    if stream is not None:
        stream.close()


def _raise_if_refused(stream: BoundedStream | None, error: Exception) -> None:
    """Re-raise as :class:`BudgetExceeded` when the stream refused a read (whatever ``error`` became)."""
    if stream is not None and stream.exceeded and not isinstance(error, BudgetExceeded):
        raise BudgetExceeded(limit_message(stream.needed, stream.limit)) from error


def _hdu_shape(hdu: Any) -> tuple[int, ...] | None:
    if not isinstance(hdu, _IMAGE_HDU_TYPES):
        return None
    header = hdu.header  # for CompImageHDU astropy already presents the image header
    dims = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
    if len(dims) < 2 or any(d <= 0 for d in dims):
        return None
    return tuple(reversed(dims))


def _streamed(hdul: fits.HDUList) -> bool:
    """Whether the whole file is one compressed stream (gzip, bzip2, xz): reaching an HDU inflates all before it.

    Searches that look past the HDU they would choose (a later ``SCI``, a ``DQ`` or ``ASDF``
    extension) are skipped in such a file, so a compressed file is never inflated further than the
    HDU that is read.
    """
    try:
        fileinfo = hdul[0].fileinfo() or {}  # the HDU's own: the list's would load every HDU first
    except (AttributeError, ValueError, OSError, IndexError):
        return False
    return bool(getattr(fileinfo.get("file"), "compression", None))


def _may_look_past(hdul: fits.HDUList, hdu: Any) -> bool:
    """Tell whether headers after ``hdu`` may be read.

    Always in a plain file; in a compressed stream only when inflating through ``hdu``'s data stays
    within the job's budget (never for a bomb).
    """
    if not _streamed(hdul):
        return True
    return _stream_end(hdu) <= inflate_limit()


def _stream_end(hdu: Any) -> int:
    """Offset in the (inflated) stream where ``hdu``'s data ends."""
    try:
        fileinfo = hdu.fileinfo() or {}
    except (AttributeError, ValueError, OSError):
        return 0
    return int(fileinfo.get("datLoc") or 0) + int(fileinfo.get("datSpan") or 0)


def _iter_hdus(hdul: fits.HDUList, stop: int | None = None) -> Iterator[tuple[int, Any]]:
    index = 0
    while stop is None or index < stop:
        try:
            hdu = hdul[index]
        except IndexError:
            return
        except (OSError, ValueError, TypeError) as error:
            raise InvalidFits("FITS file is truncated or corrupt") from error
        yield index, hdu
        index += 1


def _squeezed_ndim(shape: tuple[int, ...]) -> int:
    """Dimensions of an image shape once length-1 axes besides the two image axes are dropped."""
    return 2 + sum(1 for n in shape[:-2] if n > 1)


def _name_of(hdu: Any) -> str:
    """EXTNAME of ``hdu``, upper case and stripped (``PRIMARY`` for a primary HDU without one)."""
    return str(hdu.name or "").strip().upper()


def _ver_of(hdu: Any) -> int:
    """EXTVER of ``hdu`` (1 when the card is missing or not an integer)."""
    try:
        return int(hdu.ver)
    except (TypeError, ValueError):
        return 1


def _by_index(hdus: dict[int, Any], index: int) -> tuple[int, tuple[int, ...]]:
    if index not in hdus:
        raise InvalidInput(f"hdu_index {index} out of range (file has {len(hdus)} HDUs)")
    shape = _hdu_shape(hdus[index])
    if shape is None:
        raise NoImageData(f"HDU {index} holds no image data")
    return index, shape


def _by_name(hdus: dict[int, Any], extname: str, extver: int | None) -> tuple[int, tuple[int, ...]]:
    wanted = extname.strip().upper()
    for index, hdu in hdus.items():
        if _name_of(hdu) == wanted and (extver is None or _ver_of(hdu) == extver):
            shape = _hdu_shape(hdu)
            if shape is None:
                raise NoImageData(f"HDU {index} ({wanted}) holds no image data")
            return index, shape
    named = [(_name_of(h), _ver_of(h)) for h in hdus.values() if _name_of(h)]
    listed = ", ".join(dict.fromkeys(name if ver == 1 else f"{name},{ver}" for name, ver in named))
    which = f"{wanted},{extver}" if extver is not None else wanted
    raise InvalidInput(f"No HDU with extname {which} in the file; its extensions are: {listed or 'none named'}")


def find_image_hdu(
    hdul: fits.HDUList,
    hdu_index: int | None = None,
    *,
    min_ndim: int = 2,
    extname: str | None = None,
    extver: int | None = None,
) -> tuple[int, tuple[int, ...]]:
    """Return ``(index, shape)`` of the chosen image HDU.

    ``hdu_index`` (>= 0) or ``extname`` (with ``extver``, else the first HDU of that name) chooses
    an HDU; otherwise the ``SCI`` image HDU with >= ``min_ndim`` dimensions is taken when the file
    has one (a JWST or HST product, whatever its index), else the first such HDU.

    Raises
    ------
    NoImageData
        No such HDU, or the chosen one holds no image.
    InvalidInput
        ``hdu_index`` is out of range, or no HDU has the name ``extname`` (the message lists the
        names there are).
    """
    if hdu_index is not None and hdu_index >= 0:
        return _by_index(dict(_iter_hdus(hdul, stop=hdu_index + 1)), hdu_index)
    if extname:
        return _by_name(dict(_iter_hdus(hdul)), extname, extver)
    first: tuple[int, tuple[int, ...]] | None = None
    for index, hdu in _iter_hdus(hdul):
        shape = _hdu_shape(hdu)
        if shape is None or _squeezed_ndim(shape) < min_ndim:
            continue
        if _name_of(hdu) == SCIENCE_EXTNAME:
            return index, shape
        if first is None:
            first = (index, shape)
            if not _may_look_past(hdul, hdu):  # a later SCI would cost inflating a bomb: take this one
                break
    if first is None:
        raise NoImageData()
    return first


def _is_jwst_product(hdul: fits.HDUList) -> bool:
    """Whether the file is a JWST pipeline product: ``TELESCOP = 'JWST'``, or the ASDF extension of a datamodel."""
    telescope = str(hdul[0].header.get("TELESCOP", "")).strip().upper()
    return telescope == "JWST" or any(_name_of(hdu) == "ASDF" for _, hdu in _iter_hdus(hdul))


def _dq_partner(hdul: fits.HDUList, index: int, shape: tuple[int, ...]) -> DqPartner | None:
    """Return the ``DQ`` extension of a JWST product that flags the image HDU ``index`` (same shape and EXTVER).

    Only JWST products: other missions' DQ bits mean other things (in HST files bit 1 is a
    Reed-Solomon error, not "do not use").
    """
    image = hdul[index]
    if _name_of(image) == "DQ" or not _may_look_past(hdul, image) or not _is_jwst_product(hdul):
        return None
    for dq_index, hdu in _iter_hdus(hdul):
        if _name_of(hdu) != "DQ" or _ver_of(hdu) != _ver_of(image) or _hdu_shape(hdu) != shape:
            continue
        bitpix = int(hdu.header.get("BITPIX", 0))
        if bitpix not in (8, 16, 32, 64) or isinstance(hdu, fits.CompImageHDU):
            return None
        return DqPartner(dq_index, bitpix, int(hdu.header.get("BZERO", 0)))
    return None


def _has_wcs(header: fits.Header) -> bool:
    return any(key in header for key in ("CTYPE1", "CRVAL1", "CD1_1", "PC1_1"))


def _science_wcs(hdul: fits.HDUList, index: int, shape: tuple[int, ...]) -> fits.Header | None:
    """Return the WCS cards of the ``SCI`` HDU of the same shape and EXTVER as HDU ``index``, if it has one.

    A JWST or HST product writes its WCS in the ``SCI`` header only; its ``ERR``, ``DQ``, ``VAR_*``
    and ``WHT`` planes are on the same pixels, so they share it.
    """
    image = hdul[index]
    if _name_of(image) in ("", SCIENCE_EXTNAME, "PRIMARY") or not _may_look_past(hdul, image):
        return None
    for _, hdu in _iter_hdus(hdul):
        if _name_of(hdu) != SCIENCE_EXTNAME or _ver_of(hdu) != _ver_of(image) or _hdu_shape(hdu) != shape:
            continue
        if not _has_wcs(hdu.header):
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                cards: fits.Header = WCS(hdu.header).to_header(relax=True)
        except Exception as error:  # astropy raises many types for broken WCS headers
            logger.info("wcs_parse_failed", extra={"error": type(error).__name__})
            return None
        return cards
    return None


def image_info(
    path: Path | str,
    *,
    hdu_index: int | None = None,
    min_ndim: int = 2,
    choice: HduChoice | None = None,
) -> ImageInfo:
    """Headers-only description of the image HDU of ``path``.

    ``choice`` (or just ``hdu_index``) picks the HDU (:func:`find_image_hdu`). ``min_ndim``
    (default 2) skips HDUs with fewer dimensions when searching, e.g. 3 to find the first cube
    (axes of length 1 do not count); :class:`NoImageData` when none qualifies. In a JWST product,
    the ``DQ`` extension of the same shape is found too (:attr:`ImageInfo.dq`), so every read masks
    the pixels it flags. An extension without WCS cards of its own (``ERR``, ``WHT``) gets those of
    the ``SCI`` image it belongs to in its header copy.
    """
    if choice is None:
        choice = HduChoice(index=hdu_index)
    with open_fits(path) as hdul:
        index, shape = find_image_hdu(
            hdul, choice.index, min_ndim=min_ndim, extname=choice.extname, extver=choice.extver
        )
        hdu = hdul[index]
        header = checked_header(hdu, index).copy()
        bitpix = int(header.get("BITPIX", -32))
        extname = header.get("EXTNAME")
        try:
            dq = _dq_partner(hdul, index, shape)
            borrowed = None if _has_wcs(header) else _science_wcs(hdul, index, shape)
        except InvalidFits:  # a damaged extension after the image: the image itself is still readable
            dq, borrowed = None, None
        if borrowed is not None:
            header.update(borrowed)
        label = str(extname).strip() if extname else None
        return ImageInfo(
            index, shape, bitpix, header, label or None, inflated_bytes=_inflated_through(hdul, hdu, dq), dq=dq
        )


#: Cards an image cannot be read or placed on the sky without: one of them unparsable is a damaged file.
_ESSENTIAL_CARD = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|BSCALE|BZERO|BLANK|Z\w+|CTYPE\d|CRPIX\d|CRVAL\d|CDELT\d|CD\d_\d"
    r"|PC\d_\d|CUNIT\d|CROTA\d|LONPOLE|LATPOLE|EQUINOX|RADESYS)$"
)


def checked_header(hdu: Any, index: int) -> fits.Header:
    """Return the header of ``hdu`` once every card of it parses; :class:`InvalidFits` naming the card if not.

    astropy parses a card's value only when it is first read, so a card such as ``CRPIX1 = NAN``
    would otherwise fail deep inside whatever code reads it first. A non-standard card astropy can
    fix (a DSS plate's ``SKEW = '-1.38, -1.69'``) is fixed; one it cannot fix is dropped from the
    header (logged) unless the image needs it (structure, scaling, WCS): then the file is damaged.
    """
    keyword = ""
    try:
        header: fits.Header = hdu.header
        broken = [card.keyword for card in header.cards if not _card_parses(card, _ESSENTIAL_CARD.match(card.keyword))]
    except Exception as error:
        if isinstance(error, MemoryError | ProcessingError):
            raise
        logger.info("fits_header_unreadable", extra={"hdu": index, "error": type(error).__name__})
        raise InvalidFits(f"The header of HDU {index} is damaged") from error
    for keyword in broken:
        if _ESSENTIAL_CARD.match(keyword):
            logger.info("fits_header_unreadable", extra={"hdu": index, "card": keyword})
            raise InvalidFits(f"The header of HDU {index} is damaged: card {keyword} cannot be parsed")
        logger.info("fits_card_dropped", extra={"hdu": index, "card": keyword})
        with contextlib.suppress(KeyError, IndexError):
            del header[keyword]
    return header


def _card_parses(card: fits.Card, essential: object) -> bool:
    """Tell whether ``card``'s value can be read: as it is when ``essential``, else after astropy's own fix."""
    for attempt in range(1 if essential else 2):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                _ = card.value
            return True
        except Exception as error:
            if isinstance(error, MemoryError):
                raise
            if attempt == 0:
                with warnings.catch_warnings(), contextlib.suppress(Exception):
                    warnings.simplefilter("ignore", AstropyWarning)
                    card.verify("silentfix")
    return False


def _inflated_through(hdul: fits.HDUList, hdu: Any, dq: DqPartner | None) -> int:
    """Bytes inflated to read ``hdu`` and, in a compressed stream, the DQ plane read with it."""
    shape = _hdu_shape(hdu) or ()
    total = _inflated_bytes(hdu, shape, int(hdu.header.get("BITPIX", -32)))
    if dq is not None and _streamed(hdul):
        total = max(total, _stream_end(hdul[dq.hdu_index]))
    return total


def _inflated_bytes(hdu: Any, shape: tuple[int, ...], bitpix: int) -> int:
    """Bytes inflated to read ``hdu``'s data: the stream up to its end, plus its tiles' declared size."""
    total = 0
    try:
        fileinfo = hdu.fileinfo() or {}
    except (AttributeError, ValueError, OSError):
        fileinfo = {}
    if getattr(fileinfo.get("file"), "compression", None):
        total += _stream_end(hdu)
    if isinstance(hdu, fits.CompImageHDU):
        total += math.prod(shape) * max(1, abs(bitpix) // 8)
    return total


def check_elements(info: ImageInfo, max_elements: int) -> None:
    """Raise :class:`BudgetExceeded` when the HDU has more than ``max_elements`` pixels."""
    if info.n_elements > max_elements:
        raise BudgetExceeded(f"FITS array too large: {info.n_elements} elements exceeds the limit of {max_elements}")


def check_inflation(info: ImageInfo, limit: int | None = None) -> None:
    """Raise :class:`BudgetExceeded` when reading the HDU would inflate more than ``limit`` bytes.

    ``limit`` defaults to the running job's budget (:func:`inflate_limit`); a plain file needs none.
    """
    limit = inflate_limit() if limit is None else limit
    if info.inflated_bytes > limit:
        raise BudgetExceeded(limit_message(info.inflated_bytes, limit))


def resolve_slice(info: ImageInfo, slice_index: int = -1) -> int:
    """Resolve the slice actually used: -1 means the middle one; larger values are clamped."""
    if not info.is_cube:
        return 0
    if slice_index < 0:
        return info.n_slices // 2
    return min(slice_index, info.n_slices - 1)


def _leading_index(info: ImageInfo, slice_index: int) -> tuple[int, ...]:
    """Index into all axes before the last two: the slice on the browsed axis, the middle of the others."""
    browsed = info.slice_axis
    return tuple(slice_index if axis == browsed else n // 2 for axis, n in enumerate(info.shape[:-2]))


def _scale_raw(raw: np.ndarray, header: fits.Header, *, compressed: bool, owned: bool = False) -> np.ndarray:
    """Apply BLANK, BSCALE and BZERO to raw pixels; return float32.

    ``owned`` means ``raw`` is a fresh native buffer the caller gives away (from :class:`_FileRows`):
    float32 data is then used in place instead of copied.
    """
    out = np.asarray(raw).astype(np.float32, copy=not owned)
    if compressed:
        return out
    if raw.dtype.kind in "iu":
        blank = header.get("BLANK")
        bscale = float(header.get("BSCALE", 1.0))
        bzero = float(header.get("BZERO", 0.0))
        if bscale != 1.0 or bzero != 0.0:
            out = (np.asarray(raw).astype(np.float64) * bscale + bzero).astype(np.float32)
        if blank is not None:
            out[np.asarray(raw) == int(blank)] = np.nan
    else:
        bscale = float(header.get("BSCALE", 1.0))
        bzero = float(header.get("BZERO", 0.0))
        if bscale != 1.0 or bzero != 0.0:
            out = out * np.float32(bscale) + np.float32(bzero)
    return out


_BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class _FileRows:
    """Rows of one 2-D plane of an uncompressed HDU, read with plain file reads (no memory map).

    Reading through a memory map leaves every touched page of the file in the process's resident
    set; ``read`` into fresh buffers keeps the peak RSS at the size of one band, whatever the file
    size. Supports ``plane[rows, cols]`` with slices, like the arrays it stands in for.
    """

    #: Arrays returned by indexing are fresh buffers owned by the caller.
    owned = True

    def __init__(self, path: Path | str, data_offset: int, bitpix: int, ny: int, nx: int, plane_index: int) -> None:
        self.path = path
        self.dtype = np.dtype(_BITPIX_DTYPES[bitpix])
        self.shape = (ny, nx)
        self._start = data_offset + plane_index * ny * nx * self.dtype.itemsize

    def _read(self, handle: Any, row: int, n_rows: int) -> np.ndarray:
        nx = self.shape[1]
        handle.seek(self._start + row * nx * self.dtype.itemsize)
        count = n_rows * nx
        buffer = np.fromfile(handle, dtype=self.dtype, count=count)
        if buffer.size != count:
            raise EOFError("FITS data ends before the declared size")
        if self.dtype.byteorder == ">" and np.little_endian:  # to native order, in place
            buffer = buffer.byteswap(inplace=True).view(self.dtype.newbyteorder("="))
        return buffer.reshape(n_rows, nx)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        ny, _ = self.shape
        start, stop, step = rows.indices(ny)
        with open(self.path, "rb") as handle:
            if step == 1:
                block = self._read(handle, start, max(0, stop - start))
                return block[:, cols]
            picked = range(start, stop, step)
            out: np.ndarray | None = None
            for i, row in enumerate(picked):
                line = self._read(handle, row, 1)[0, cols]
                if out is None:
                    out = np.empty((len(picked), line.size), dtype=line.dtype)
                out[i] = line
            return out if out is not None else np.empty((0, 0), dtype=self.dtype)


def _file_rows(path: Path | str, hdu: Any, info: ImageInfo, lead: tuple[int, ...]) -> _FileRows | None:
    """Make a :class:`_FileRows` reader for a plain (not tile- or gzip-compressed) image HDU, else ``None``."""
    if isinstance(hdu, fits.CompImageHDU) or info.bitpix not in _BITPIX_DTYPES:
        return None
    try:
        fileinfo = hdu.fileinfo()
    except (AttributeError, ValueError, OSError):
        return None
    if not fileinfo or getattr(fileinfo.get("file"), "compression", None):
        return None
    plane_index = 0
    for index, size in zip(lead, info.shape[: len(lead)], strict=True):
        plane_index = plane_index * size + index
    return _FileRows(path, int(fileinfo["datLoc"]), info.bitpix, info.ny, info.nx, plane_index)


def _owned(plane: Any) -> bool:
    return bool(getattr(plane, "owned", False))


def _flagged(raw: Any, dq: DqPartner, *, owned: bool = False) -> np.ndarray:
    """Return where the raw DQ values ``raw`` carry one of the masked bits.

    JWST writes its uint32 DQ as int32 with ``BZERO = 2**31``: adding it only flips the sign bit,
    so bits below it are tested on the raw values as they are (no 64-bit copy of the band), in
    place when ``raw`` is a fresh buffer the caller gives away.
    """
    values = np.asarray(raw)
    sign_bit = 1 << (values.dtype.itemsize * 8 - 1)
    if dq.bzero and not (dq.bzero == sign_bit and dq.bits < sign_bit and values.dtype.kind == "i"):
        values, owned = values.astype(np.int64) + np.int64(dq.bzero), True
    bits = np.bitwise_and(values, dq.bits, out=values if owned else None)
    flagged: np.ndarray = bits != 0
    return flagged


class _Float32Plane:
    """One plane as float32 rows: BSCALE/BZERO/BLANK applied and, with a DQ plane, its flagged pixels NaN.

    Indexing (``plane[rows, cols]``) reads the science rows and the same rows of the DQ plane the
    same way (a band, a stride), so masking costs one more read of the same shape, never a full
    DQ array.
    """

    def __init__(
        self, raw: Any, header: fits.Header, *, compressed: bool, dq: Any = None, dq_info: DqPartner | None = None
    ) -> None:
        self.raw = raw
        self.header = header
        self.compressed = compressed
        self.dq = dq
        self.dq_info = dq_info
        ny, nx = raw.shape
        self.shape = (int(ny), int(nx))

    @property
    def thread_safe(self) -> bool:
        """Whether bands may be read at once from several threads (plain file reads, each with its own handle)."""
        return isinstance(self.raw, _FileRows) and (self.dq is None or isinstance(self.dq, _FileRows))

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel of a band costs while read (raw, float32 result and the DQ test)."""
        raw = max(int(np.dtype(self.raw.dtype).itemsize), 4) * 2
        return raw + (16 if self.dq is not None else 0)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        out = _scale_raw(self.raw[key], self.header, compressed=self.compressed, owned=_owned(self.raw))
        if self.dq is not None and self.dq_info is not None:
            flagged = _flagged(self.dq[key], self.dq_info, owned=_owned(self.dq))
            np.copyto(out, np.float32(np.nan), where=flagged)
        return out


def _banded_scale(plane: _Float32Plane, threads: int = 1) -> np.ndarray:
    """Convert the whole plane to float32 band by band (no full-size raw copy beside the result)."""
    ny, nx = plane.shape
    out = np.empty((ny, nx), dtype=np.float32)
    band = max(1, BAND_BYTES // max(1, nx * plane.bytes_per_pixel))

    def one(start: int) -> None:
        stop = min(ny, start + band)
        out[start:stop] = plane[start:stop, :]

    map_in_threads(one, range(0, ny, band), threads if plane.thread_safe else 1)
    return out


def downscale_factor(ny: int, nx: int, max_side: int | None) -> int:
    """Smallest integer factor that brings the longer side to at most ``max_side``."""
    if not max_side or max(ny, nx) <= max_side:
        return 1
    return math.ceil(max(ny, nx) / max_side)


def _block_mean(plane: _Float32Plane, factor: int, threads: int = 1) -> np.ndarray:
    """Block-average a 2-D array in row bands, ignoring NaN; partial blocks at the edges are kept.

    The result is ``ceil(ny / factor) x ceil(nx / factor)`` (the shape a stride read gives): the last
    row and column of blocks average the pixels they have, so a thin image or a signal in the last
    rows is never dropped.
    """
    ny, nx = plane.shape
    out_ny, out_nx = -(-ny // factor), -(-nx // factor)
    row_bytes = nx * plane.bytes_per_pixel
    band_blocks = max(1, BAND_BYTES // (row_bytes * factor))
    out = np.empty((out_ny, out_nx), dtype=np.float32)

    def one(start: int) -> None:
        stop = min(out_ny, start + band_blocks)
        band = plane[start * factor : min(ny, stop * factor), :]
        band = _pad_to_blocks(band, (stop - start) * factor, out_nx * factor)
        sums = _block_sum(band, factor)
        if np.isfinite(sums).all():  # no NaN or inf in the band (checked on the smaller sums)
            sums /= np.float32(factor * factor)
            out[start:stop] = sums
            return
        finite = np.isfinite(band)
        np.copyto(band, np.float32(0.0), where=~finite)
        counts = _block_sum(finite.astype(np.float32), factor)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = _block_sum(band, factor) / counts  # 0/0 -> NaN for all-NaN blocks

    map_in_threads(one, range(0, out_ny, band_blocks), threads if plane.thread_safe else 1)
    return out


def _pad_to_blocks(band: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Return ``band`` NaN-padded to ``rows x cols`` (itself when it already has that shape)."""
    if band.shape == (rows, cols):
        return band
    padded = np.full((rows, cols), np.nan, dtype=np.float32)
    padded[: band.shape[0], : band.shape[1]] = band
    return padded


def _block_sum(band: np.ndarray, factor: int) -> np.ndarray:
    """Sum the ``factor x factor`` blocks of a 2-D float32 array whose shape is a multiple of ``factor``.

    Adds strided slices instead of reducing a 4-D reshape: memory-bound and several times faster
    for the small factors used here. Rows are summed first (whole contiguous rows, one pass over
    the band), then columns of the ``factor`` times smaller result, so a large factor does not
    stream the band from memory once per column offset.
    """
    rows = band[0::factor].copy()
    for k in range(1, factor):
        rows += band[k::factor]
    cols = rows[:, 0::factor].copy()
    for k in range(1, factor):
        cols += rows[:, k::factor]
    return cols


def _raw_source(path: Path | str, hdu: Any, info: ImageInfo, lead: tuple[int, ...], *, compressed: bool) -> Any:
    """Pick what to read the raw plane from: plain file reads when possible, else the HDU's data or section."""
    plane: Any = _file_rows(path, hdu, info, lead)
    if plane is None:
        source: Any = hdu.section if compressed else hdu.data
        if source is None:
            raise NoImageData()
        plane = source[lead] if lead else source
    return plane


def _plane_source(path: Path | str, hdul: fits.HDUList, info: ImageInfo, lead: tuple[int, ...]) -> _Float32Plane:
    """Return the float32 reader of one plane of the image HDU of ``info``, masked by its DQ plane if it has one."""
    hdu = hdul[info.hdu_index]
    compressed = isinstance(hdu, fits.CompImageHDU)
    raw = _raw_source(path, hdu, info, lead, compressed=compressed)
    dq = None
    if info.dq is not None:
        dq_hdu = hdul[info.dq.hdu_index]
        dq_info = ImageInfo(info.dq.hdu_index, info.shape, info.dq.bitpix, dq_hdu.header, "DQ")
        dq = _raw_source(path, dq_hdu, dq_info, lead, compressed=False)
    return _Float32Plane(raw, info.header, compressed=compressed, dq=dq, dq_info=info.dq)


def _downscaled(plane: _Float32Plane, factor: int, method: DownscaleMethod, threads: int = 1) -> np.ndarray:
    """Convert the plane to float32, downscaled by ``factor`` with ``method`` (as is when ``factor`` is 1)."""
    if factor == 1:
        return _banded_scale(plane, threads)
    if method == "stride":
        return plane[::factor, ::factor]
    return _block_mean(plane, factor, threads)


def read_plane(
    path: Path | str,
    *,
    hdu_index: int | None = None,
    slice_index: int = -1,
    max_side: int | None = None,
    method: DownscaleMethod = "block",
    max_elements: int | None = None,
    factor: int | None = None,
    info: ImageInfo | None = None,
    choice: HduChoice | None = None,
    threads: int = 1,
) -> Plane:
    """Read one 2-D plane as float32, downscaled so its longer side is at most ``max_side``.

    Parameters
    ----------
    path
        FITS file.
    hdu_index
        HDU to read; ``None`` or negative picks the first HDU with >= 2-D data.
    slice_index
        Cube slice along the leading axis (-1 = middle, clamped above).
    max_side
        Longest side of the result; ``None`` keeps full resolution.
    method
        ``"block"`` averages factor x factor blocks (anti-aliased), ``"stride"`` takes every n-th pixel.
    max_elements
        If given, refuse before reading when the HDU has more elements.
    factor
        Explicit integer downscale factor (overrides ``max_side``), e.g. the largest factor that
        keeps the result at least as large as a target size before a final exact resize.
    info
        The :func:`image_info` of the same file and HDU when the caller already has it (saves
        parsing the headers twice); ``hdu_index`` and ``choice`` are then ignored.
    choice
        The HDU to read by index or EXTNAME (:class:`HduChoice`); overrides ``hdu_index``.
    threads
        Row bands read and converted at once (plain, uncompressed files only; each band opens the
        file itself).
    """
    if factor is not None and factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if method not in ("block", "stride"):
        raise ValueError(f"method must be 'block' or 'stride', got {method!r}")
    if info is None:
        info = image_info(path, hdu_index=hdu_index, choice=choice)
    if max_elements is not None:
        check_elements(info, max_elements)
    check_inflation(info)
    used_slice = resolve_slice(info, slice_index)
    if factor is None:
        factor = downscale_factor(info.ny, info.nx, max_side)
    factor = min(factor, max(info.ny, info.nx))
    with open_fits(path) as hdul:
        lead = _leading_index(info, used_slice)
        try:
            plane = _plane_source(path, hdul, info, lead)
            data = _downscaled(plane, factor, method, threads)
        except Exception as error:
            raise _read_error(info, error) from error
    return Plane(data=data, info=info, slice_index=used_slice, factor=factor)


#: Pixels of the full-resolution sample that display limits are computed from.
LIMITS_SAMPLE_PIXELS = 1_000_000


def sample_stride(info: ImageInfo, max_pixels: int = LIMITS_SAMPLE_PIXELS) -> int:
    """Row and column stride of :func:`read_sample`: at most about ``max_pixels`` pixels are kept."""
    pixels = info.ny * info.nx
    return max(1, math.ceil(math.sqrt(pixels / max_pixels))) if pixels > max_pixels else 1


def read_sample(
    path: Path | str,
    info: ImageInfo,
    *,
    slice_index: int = -1,
    max_pixels: int = LIMITS_SAMPLE_PIXELS,
    plane: Plane | None = None,
) -> np.ndarray:
    """Every n-th pixel of every n-th row of one plane at full resolution (float32, NaN kept).

    The sample is the same whatever size the caller renders at, and its pixels keep the noise of
    the data (a block average would smooth it), so display limits taken from it do not change
    with the output size. ``plane``, when it is the same plane already read at full resolution
    (factor 1), is sampled in memory instead of reading the file again.
    """
    stride = sample_stride(info, max_pixels)
    if plane is not None and plane.factor == 1 and plane.slice_index == resolve_slice(info, slice_index):
        return np.array(plane.data[::stride, ::stride], dtype=np.float32, copy=True)
    return read_plane(path, info=info, slice_index=slice_index, factor=stride, method="stride").data


def read_window(path: Path | str, info: ImageInfo, *, rows: slice, cols: slice, slice_index: int = -1) -> np.ndarray:
    """Read only ``[rows, cols]`` of one plane of the HDU described by ``info``, as float32.

    Slicing the memory map (or the compressed section) touches only the rows of the window, so a
    small region of a huge image costs a small read.
    """
    check_inflation(info)
    lead = _leading_index(info, resolve_slice(info, slice_index))
    with open_fits(path) as hdul:
        hdu = hdul[info.hdu_index]
        compressed = isinstance(hdu, fits.CompImageHDU)
        try:
            source: Any = hdu.section if compressed else hdu.data
            if source is None:
                raise NoImageData()
            dq_source = hdul[info.dq.hdu_index].data if info.dq is not None else None
            plane = _Float32Plane(
                source[lead] if lead else source,
                info.header,
                compressed=compressed,
                dq=dq_source[lead] if dq_source is not None and lead else dq_source,
                dq_info=info.dq,
            )
            return plane[rows, cols]
        except Exception as error:
            raise _read_error(info, error) from error


def _read_error(info: ImageInfo, error: Exception) -> Exception:
    """Return the error to raise for a failed pixel read: the core's own as is, else a damaged HDU.

    astropy and its compression codecs raise many types (``OSError``, ``ValueError``, the codec's
    own unpicklable exception for a damaged tile); none of them may leave a job as is.
    """
    if isinstance(error, ProcessingError | MemoryError):
        return error
    logger.info("fits_read_failed", extra={"hdu": info.hdu_index, "error": type(error).__name__})
    return InvalidFits(f"The data of {info.label} is damaged or truncated")


#: Most pixels of one uncompressed plane a downscaled read scans (a 65 536 x 65 536 plane). Memory
#: does not grow with the plane, but the time does: far larger declared planes are refused (413).
MAX_SCAN_PIXELS = 2**32


def reads_in_bands(path: Path | str, info: ImageInfo) -> bool:
    """Say whether the plane of ``info`` is read band by band with plain file reads.

    True for an uncompressed file and a plain image HDU; False for a gzip-compressed file or a
    tile-compressed HDU, whose declared size is what a read may have to inflate.
    """
    with open_fits(path) as hdul:
        try:
            hdu = hdul[info.hdu_index]
        except (IndexError, OSError, ValueError, TypeError) as error:
            raise InvalidFits("FITS file is truncated or corrupt") from error
        return _file_rows(path, hdu, info, ()) is not None


def held_pixels(info: ImageInfo, factor: int) -> int:
    """Values a banded read of one plane at ``1/factor`` holds at once: the output and one band of rows."""
    factor = max(1, factor)
    output = -(-info.ny // factor) * -(-info.nx // factor)
    band = min(info.ny * info.nx, max(info.nx, BAND_BYTES // 4))
    return output + band


def check_read_budget(
    path: Path | str, info: ImageInfo, *, factor: int, max_elements: int, max_scan_pixels: int = MAX_SCAN_PIXELS
) -> None:
    """Raise :class:`BudgetExceeded` unless reading one plane at ``1/factor`` fits ``max_elements`` values.

    An uncompressed plane is read in bands, so what counts is what the read holds in memory
    (:func:`held_pixels`), not the file's pixels; its plane may still have at most
    ``max_scan_pixels`` pixels (the time of the scan). A compressed file or HDU counts its declared
    size (:func:`check_elements`): reaching one band of it means inflating what comes before.
    """
    if not reads_in_bands(path, info):
        check_elements(info, max_elements)
        return
    plane = info.ny * info.nx
    if plane > max_scan_pixels:
        raise BudgetExceeded(
            f"FITS array too large: a plane of {info.ny}x{info.nx} pixels exceeds the limit of {max_scan_pixels}"
        )
    held = held_pixels(info, factor)
    if held > max_elements:
        raise BudgetExceeded(
            f"FITS array too large: reading {info.ny}x{info.nx} pixels at 1/{max(1, factor)} holds {held} values, "
            f"more than the limit of {max_elements}"
        )


def celestial_wcs(header: fits.Header) -> WCS | None:
    """Extract the celestial part of the header's WCS, or ``None`` when there is none (or it is broken)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(header).celestial
    except Exception as error:  # astropy raises many types for broken WCS headers
        logger.info("wcs_parse_failed", extra={"error": type(error).__name__})
        return None
    if not wcs.has_celestial or wcs.naxis != 2:
        return None
    try:
        matrix = wcs.pixel_scale_matrix
    except Exception:
        return None
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) == 0:
        return None
    return wcs


def finite_or_zero(data: np.ndarray) -> np.ndarray:
    """Replace NaN and +-Inf with 0 in place (float arrays) and return the array."""
    np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return data
