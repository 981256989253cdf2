"""Read the AVM packets the engine writes back into fields and a WCS (test-side only).

The engine only writes AVM (:mod:`app.processing.avm`); the tests read its packets back to check
the sky position of every pixel of a picture.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from astropy.wcs import WCS

from app.processing.avm import NS_AVM, NS_RDF


def parse_avm_xmp(xmp: str | bytes) -> dict[str, Any]:
    """Read the AVM fields of an XMP packet back: ``{"Spatial.Scale": [..], "Spatial.Rotation": .., ...}``.

    Sequences become lists of strings converted to float where possible; single values likewise.
    """
    text = xmp.decode("utf-8") if isinstance(xmp, bytes) else xmp
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    if start < 0 or end < 0:
        raise ValueError("no x:xmpmeta element in XMP packet")
    root = ET.fromstring(text[start : end + len("</x:xmpmeta>")])
    out: dict[str, Any] = {}
    for node in root.iter():
        if not node.tag.startswith(f"{{{NS_AVM}}}"):
            continue
        name = node.tag.split("}", 1)[1]
        items = [li.text or "" for li in node.iter(f"{{{NS_RDF}}}li")]
        out[name] = [_num(v) for v in items] if items else _num(node.text or "")
    return out


def _num(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def wcs_from_avm(fields: dict[str, Any]) -> WCS:
    """Rebuild a celestial WCS from parsed AVM fields (the inverse of :func:`avm_xmp`)."""
    proj = str(fields.get("Spatial.CoordsystemProjection", "TAN"))
    frame = str(fields.get("Spatial.CoordinateFrame", "ICRS"))
    wcs = WCS(naxis=2)
    if frame == "GAL":
        wcs.wcs.ctype = [f"GLON-{proj}", f"GLAT-{proj}"]
    else:
        wcs.wcs.ctype = [f"RA---{proj}", f"DEC--{proj}"]
        wcs.wcs.radesys = frame if frame in ("ICRS", "FK5", "FK4") else "ICRS"
    wcs.wcs.crval = list(fields["Spatial.ReferenceValue"])
    wcs.wcs.crpix = list(fields["Spatial.ReferencePixel"])
    if "Spatial.CDMatrix" in fields:
        wcs.wcs.cd = np.asarray(fields["Spatial.CDMatrix"], dtype=np.float64).reshape(2, 2)
    else:
        cdelt1, cdelt2 = (float(v) for v in fields["Spatial.Scale"])
        theta = math.radians(float(fields.get("Spatial.Rotation", 0.0)))
        c, s = math.cos(theta), math.sin(theta)
        wcs.wcs.cd = [[cdelt1 * c, -cdelt2 * s], [cdelt1 * s, cdelt2 * c]]
    wcs.wcs.set()
    return wcs
