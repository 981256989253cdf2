"""Write ``app/processing/colormap_data.py``: matplotlib's 256-entry tables of the engine's colormaps.

Run once, by hand, where matplotlib is installed (the engine does not depend on it; the generated
module is committed and read at run time without matplotlib):

    .venv/bin/python scripts/make_colormaps.py            # writes the module
    .venv/bin/python scripts/make_colormaps.py --check    # exit 1 when the module differs

Each table is matplotlib's 256-entry float table (``colormap(range(256))``, alpha dropped) times 255,
rounded to the nearest integer. (``bytes=True`` truncates instead, which turns gray's 32/255 into 31
and so on: it differs from the rounded table by at most 1.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib as mpl
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "app" / "processing" / "colormap_data.py"
#: The engine's colormaps (``app.processing.colormaps.COLORMAP_NAMES``), in that order.
NAMES = ("gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet")
BYTES_PER_LINE = 48  # 16 colours: 96 hex digits a line

HEADER = '''"""The 256-entry RGB tables of the engine's colormaps (generated: do not edit).

Written by ``scripts/make_colormaps.py`` from matplotlib {version}: each table is matplotlib's
256-entry table ``colormap(range(256))`` without alpha, times 255 and rounded, as hex (two digits a
channel, R G B for each of the 256 entries). viridis, inferno, magma and plasma are the CC0 (public domain) maps of
Nathaniel J. Smith, Stefan van der Walt and Eric Firing; gray, hot, cool, rainbow and jet are
matplotlib's definitions of the classic maps. The engine does not import matplotlib.
"""

from __future__ import annotations

#: ``name -> 768 bytes as hex`` (256 entries of R, G, B).
TABLES_HEX: dict[str, str] = {{
'''


def table(name: str) -> np.ndarray:
    """Return matplotlib's 256-entry table of colormap ``name`` as ``256 x 3`` uint8 (rounded)."""
    cmap = mpl.colormaps[name].resampled(256)
    rgb = np.asarray(cmap(np.arange(256)), dtype=np.float64)[:, :3]
    return np.asarray(np.round(rgb * 255.0), dtype=np.uint8)


def render() -> str:
    """Return the text of the data module."""
    out = [HEADER.format(version=mpl.__version__)]
    for name in NAMES:
        raw = table(name).tobytes().hex()
        step = BYTES_PER_LINE * 2
        out.append(f'    "{name}": (\n')
        out.extend(f'        "{raw[i : i + step]}"\n' for i in range(0, len(raw), step))
        out.append("    ),\n")
    out.append("}\n")
    return "".join(out)


def main(argv: list[str]) -> int:
    """Write the module, or with ``--check`` compare it with what matplotlib gives."""
    text = render()
    if "--check" in argv:
        same = TARGET.exists() and TARGET.read_text() == text
        print("up to date" if same else f"{TARGET} differs from matplotlib {mpl.__version__}")
        return 0 if same else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
