"""Make ``docs/composite.png``, the README's picture, through the engine's real composite endpoint.

The data are real: the three-filter HST CANDELS GOODS-N cutout (ACS F606W, F814W, F850LP; 100 x 100
pixels at 30 mas) that astroquery ships in its test data. The script splits it into three FITS files
in a temporary storage root, starts the engine app in-process (``main.create_app`` behind FastAPI's
TestClient, thread executor) and posts one ``/composite/generate-nchannel`` request with the three
filters coloured blue, green and red by wavelength, the engine's automatic stretch (``"auto"``: black
level, white level and asinh softening picked from each channel's sky noise and dynamic range) and
a 600 x 600 PNG output.

Usage: ``.venv/bin/python scripts/make_readme_picture.py [output.png]``
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from main import create_app  # noqa: E402
from tests.support.engine_settings import make_settings  # noqa: E402
from tests.support.real_data import FILTERS, extract_candels_cutout  # noqa: E402
from tests.support.request_bodies import channel, request_body  # noqa: E402

#: Hue of each filter, by wavelength: bluest blue, middle green, reddest red.
HUES = {"f606w": 240.0, "f814w": 120.0, "f850lp": 0.0}
SIZE = 600
MAX_BYTES = 400 * 1024


def composite_request() -> dict[str, object]:
    """The composite request, as the backend would send it (every key present)."""
    channels = [
        channel([f"{name}.fits"], hue=HUES[name], stretch="auto", label=name.upper(), wavelength_um=wavelength)
        for name, wavelength in FILTERS.items()
    ]
    return request_body(channels, width=SIZE, height=SIZE)


def make_picture(out: Path) -> int:
    """Render the composite to ``out``; returns its size in bytes."""
    with tempfile.TemporaryDirectory(prefix="readme-picture-") as tmp:
        root = Path(tmp) / "data"
        extract_candels_cutout(root)
        settings = make_settings(root, Path(tmp), LOG_LEVEL="WARNING")
        with TestClient(create_app(settings)) as client:
            response = client.post("/composite/generate-nchannel", json=composite_request())
    if response.status_code != 200:
        raise SystemExit(f"composite failed: HTTP {response.status_code}: {response.text}")
    content = recompress(response.content)
    if len(content) > MAX_BYTES:
        raise SystemExit(f"picture is {len(content)} bytes, more than {MAX_BYTES}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    return len(content)


def recompress(png: bytes) -> bytes:
    """The engine's PNG re-saved losslessly at the strongest zlib level (same pixels, same AVM XMP).

    The engine writes PNGs with a fast compression level; a file kept in the repository is worth the
    extra seconds.
    """
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        info = PngImagePlugin.PngInfo()
        xmp = image.info.get("XML:com.adobe.xmp")
        if xmp:
            info.add_itxt("XML:com.adobe.xmp", xmp)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=9, optimize=True, pnginfo=info)
    return buffer.getvalue()


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "composite.png"
    size = make_picture(out)
    print(f"wrote {out} ({size} bytes, {SIZE}x{SIZE})")


if __name__ == "__main__":
    main(sys.argv)
