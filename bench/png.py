"""Benchmark: PNG encoding of a composite-sized RGB image, our writer vs Pillow.

Why ``app.processing.encoding`` writes PNG itself: Pillow's encoder chooses a filter for every row
by trying all five (it has no option to turn this off), which costs more than the deflate at a fast
level. The image is what a composite looks like: a 2048 x 2048 RGB frame with black letterbox bars,
a smooth sky with noise and stars, in 8 bits.

* **ours**: :func:`app.processing.encoding.encode_png` (``Up`` filter by numpy, ISA-L deflate level 1);
* **Pillow**: ``Image.save(format="PNG", compress_level=1)``, the fastest zlib level, as before;
* **Pillow level 6**: Pillow's default, for reference.

Both files are decoded by Pillow and compared with the input (lossless). Reports the best of
``--repeat`` runs and the file sizes. Run: ``.venv/bin/python bench/png.py [--size 2048]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from app.processing.encoding import encode_png


def composite_like(size: int) -> np.ndarray:
    """A letterboxed RGB sky: smooth gradient, noise, a few thousand stars, 8 bits."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    sky = 40 + 30 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.05)
    image = np.empty((size, size, 3), dtype=np.float32)
    for k, tint in enumerate((1.0, 0.9, 1.2)):
        image[..., k] = sky * tint + rng.normal(0, 4, (size, size))
    ys, xs = rng.integers(0, size, (2, size * 2))
    image[ys, xs] = 255
    image[: size // 10] = 0  # letterbox bars
    image[-size // 10 :] = 0
    return np.clip(image, 0, 255).astype(np.uint8)


def pillow(level: int) -> Callable[[np.ndarray], bytes]:
    def encode(pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=level)
        return buffer.getvalue()

    return encode


def best(fn: Callable[[np.ndarray], bytes], pixels: np.ndarray, repeat: int) -> tuple[float, bytes]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        data = fn(pixels)
        times.append(time.perf_counter() - start)
    return min(times), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pixels = composite_like(args.size)
    sides = {"ours": encode_png, "pillow level 1": pillow(1), "pillow level 6": pillow(6)}
    results = {name: best(fn, pixels, args.repeat) for name, fn in sides.items()}
    for name, (_, data) in results.items():
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        if not np.array_equal(decoded, pixels):
            raise SystemExit(f"{name}: the decoded PNG differs from the input")
    print(f"image: {args.size} x {args.size} RGB, {pixels.nbytes / 1e6:.1f} MB raw")
    for name, (seconds, data) in results.items():
        print(f"{name:15s} {1000 * seconds:7.1f} ms  {len(data) / 1e6:6.2f} MB")
    ours, base = results["ours"][0], results["pillow level 1"][0]
    print(f"speed-up: {base / ours:.1f}x Pillow at level 1, lossless")


if __name__ == "__main__":
    main()
