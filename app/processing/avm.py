"""AVM 1.2 (Astronomy Visualization Metadata) XMP from a celestial WCS, for PNG and JPEG outputs.

Usage for any rendered image::

    wcs_out = display_wcs(wcs, (ny, nx), (out_height, out_width))   # scale to the output size
    xmp = avm_xmp(wcs_out, (out_height, out_width), metadata={"target_name": "M16"})
    png = encoding.encode_png(rgb, xmp=xmp)                          # or encode_jpeg(..., xmp=xmp)

Conventions. AVM counts pixels like FITS: ``Spatial.ReferencePixel`` is 1-based with the origin at
the bottom-left of the image *as displayed*. Our renderers flip the FITS array vertically (row 0 of
the PNG is the top row of the sky image, i.e. ``origin="lower"``), so the displayed image has the
FITS orientation and the WCS only needs scaling to the output size. For an image written without
the flip, pass ``flipped=False`` to :func:`display_wcs`.

Scale and rotation come from the full linear transform (CD, or PC x CDELT) as in the FITS CROTA2
convention: ``Scale = [-|cdelt1|, |cdelt2|]`` and ``Rotation`` is the angle of the image's Y axis
east of north; images with mirrored parity also carry ``Spatial.CDMatrix``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from astropy.wcs import WCS

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_AVM = "http://www.communicatingastronomy.org/avm/1.0/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_XML = "http://www.w3.org/XML/1998/namespace"
AVM_VERSION = "1.2"

#: Metadata keys accepted from callers and the AVM field each one fills.
METADATA_FIELDS: dict[str, str] = {
    "target_name": "Subject.Name",
    "facility": "Facility",
    "instrument": "Instrument",
    "filter": "Spectral.Bandpass",
    "spectral_band": "Spectral.Band",
}

_FRAMES = {"ICRS": "ICRS", "FK5": "FK5", "FK4": "FK4", "GALACTIC": "GAL", "ECLIPTIC": "ECL"}

for _prefix, _uri in (("x", NS_X), ("rdf", NS_RDF), ("avm", NS_AVM), ("dc", NS_DC)):
    ET.register_namespace(_prefix, _uri)


def linear_matrix(wcs: WCS) -> np.ndarray:
    """Return the 2x2 CD matrix (degrees per pixel) of a celestial WCS, whether it uses CD or PC + CDELT."""
    return np.asarray(wcs.pixel_scale_matrix, dtype=np.float64)


def scale_and_rotation(cd: np.ndarray) -> tuple[float, float, float]:
    """``(cdelt1, cdelt2, rotation_deg)`` of a CD matrix in the CROTA2 convention.

    ``cdelt1`` is negative for the usual sky parity (east to the left); rotation is in ``(-180, 180]``.
    """
    cd11, cd12, cd21, cd22 = float(cd[0, 0]), float(cd[0, 1]), float(cd[1, 0]), float(cd[1, 1])
    cdelt1 = math.hypot(cd11, cd21)
    cdelt2 = math.hypot(cd12, cd22)
    det = cd11 * cd22 - cd12 * cd21
    if det < 0:
        cdelt1 = -cdelt1
        rotation = math.degrees(math.atan2(-cd12, cd22))
    else:
        # mirrored parity: keep the Y-axis angle, CDMatrix carries the exact transform
        rotation = math.degrees(math.atan2(cd12, cd22))
    return cdelt1, cdelt2, rotation


def display_wcs(wcs: WCS, in_shape: tuple[int, int], out_shape: tuple[int, int], *, flipped: bool = True) -> WCS:
    """Copy the celestial ``wcs`` of an ``in_shape`` (ny, nx) image, rescaled to ``out_shape``.

    Parameters
    ----------
    wcs
        Celestial WCS of the full-resolution plane.
    in_shape
        ``(ny, nx)`` of that plane.
    out_shape
        ``(height, width)`` of the rendered image.
    flipped
        ``True`` (default) when the rendered image shows the FITS array with row 0 at the bottom
        (``origin="lower"``); ``False`` when FITS row 0 is the image's top row.
    """
    ny, nx = in_shape
    height, width = out_shape
    sx, sy = width / nx, height / ny
    out = wcs.celestial.deepcopy()
    cd = linear_matrix(wcs)
    crpix = np.asarray(out.wcs.crpix, dtype=np.float64)
    new_crpix = [(crpix[0] - 0.5) * sx + 0.5, (crpix[1] - 0.5) * sy + 0.5]
    new_cd = cd / np.array([sx, sy])[np.newaxis, :]
    if not flipped:
        new_crpix[1] = height + 1 - new_crpix[1]
        new_cd[:, 1] = -new_cd[:, 1]
    out.wcs.crpix = new_crpix
    if out.wcs.has_cd():
        out.wcs.cd = new_cd
    else:  # PC form: a unit CDELT and the whole linear transform in PC
        out.wcs.cdelt = [1.0, 1.0]
        out.wcs.pc = new_cd
    out.wcs.set()
    return out


def _seq(parent: ET.Element, tag: str, values: list[Any], kind: str = "Seq") -> None:
    node = ET.SubElement(parent, f"{{{NS_AVM}}}{tag}")
    container = ET.SubElement(node, f"{{{NS_RDF}}}{kind}")
    for value in values:
        ET.SubElement(container, f"{{{NS_RDF}}}li").text = _fmt(value)


def _text(parent: ET.Element, tag: str, value: Any, ns: str = NS_AVM) -> None:
    ET.SubElement(parent, f"{{{ns}}}{tag}").text = _fmt(value)


def _alt(parent: ET.Element, tag: str, value: str, ns: str = NS_DC) -> None:
    node = ET.SubElement(parent, f"{{{ns}}}{tag}")
    alt = ET.SubElement(node, f"{{{NS_RDF}}}Alt")
    li = ET.SubElement(alt, f"{{{NS_RDF}}}li")
    li.set(f"{{{NS_XML}}}lang", "x-default")
    li.text = value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def _frame(wcs: WCS) -> str:
    ctype = str(wcs.wcs.ctype[0]).upper()
    if ctype.startswith("GLON"):
        return "GAL"
    if ctype.startswith("ELON"):
        return "ECL"
    radesys = str(wcs.wcs.radesys or "ICRS").upper()
    return _FRAMES.get(radesys, "ICRS")


def avm_xmp(wcs: WCS, shape: tuple[int, int], *, metadata: dict[str, Any] | None = None) -> str:
    """Build an XMP packet with AVM 1.2 spatial metadata (and optional descriptive fields).

    Parameters
    ----------
    wcs
        Celestial WCS of the image *as rendered* (use :func:`display_wcs` to scale it).
    shape
        ``(height, width)`` of the rendered image.
    metadata
        Optional keys ``target_name, facility, instrument, filter, spectral_band, description``
        (and ``title``); unknown keys and empty values are ignored.
    """
    celestial = wcs.celestial
    if celestial.naxis != 2:
        raise ValueError("WCS has no celestial axes")
    height, width = shape
    cd = linear_matrix(celestial)
    cdelt1, cdelt2, rotation = scale_and_rotation(cd)
    projection = str(celestial.wcs.ctype[0])[-3:].strip("-") or "TAN"
    equinox = celestial.wcs.equinox
    root = ET.Element(f"{{{NS_X}}}xmpmeta")
    rdf = ET.SubElement(root, f"{{{NS_RDF}}}RDF")
    desc = ET.SubElement(rdf, f"{{{NS_RDF}}}Description")
    desc.set(f"{{{NS_RDF}}}about", "")
    _text(desc, "MetadataVersion", AVM_VERSION)
    _text(desc, "Spatial.CoordinateFrame", _frame(celestial))
    _text(desc, "Spatial.Equinox", "J2000" if not np.isfinite(equinox) else repr(float(equinox)))
    _seq(desc, "Spatial.ReferenceValue", [float(v) for v in celestial.wcs.crval])
    _seq(desc, "Spatial.ReferenceDimension", [int(width), int(height)])
    _seq(desc, "Spatial.ReferencePixel", [float(v) for v in celestial.wcs.crpix])
    _seq(desc, "Spatial.Scale", [cdelt1, cdelt2])
    _text(desc, "Spatial.Rotation", float(rotation))
    _text(desc, "Spatial.CoordsystemProjection", projection)
    _text(desc, "Spatial.Quality", "Full")
    if np.linalg.det(cd) > 0:
        _seq(desc, "Spatial.CDMatrix", [float(v) for v in cd.reshape(-1)])
    meta = {k: v for k, v in (metadata or {}).items() if isinstance(v, str | int | float) and str(v).strip()}
    for key, field in METADATA_FIELDS.items():
        if key in meta:
            _seq(desc, field, [str(meta[key])], kind="Bag" if field == "Subject.Name" else "Seq")
    if "title" in meta:
        _alt(desc, "title", str(meta["title"]))
    if "description" in meta:
        _alt(desc, "description", str(meta["description"]))
    body = ET.tostring(root, encoding="unicode")
    return f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n<?xpacket end="w"?>'
