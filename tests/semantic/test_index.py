"""The on-disk vector index: exact search, replacement, persistence, crash tolerance, concurrency."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from app.semantic import index as index_module
from app.semantic.index import VectorIndex

DIM = 8


def _unit(rng: np.random.Generator, rows: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_top_k_and_min_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 500)
    ids = [f"f{i}" for i in range(500)]
    index = VectorIndex(tmp_path, dim=DIM)
    assert index.upsert(ids, [f"text {i}" for i in range(500)], vectors) == 500
    query = vectors[123]
    hits = index.search(query, top_k=10, min_score=-1.0)
    expected = np.argsort(-(vectors @ query))[:10]
    assert [h.file_id for h in hits] == [ids[i] for i in expected]
    assert hits[0].file_id == "f123"
    assert hits[0].text == "text 123"
    assert hits[0].score == pytest.approx(1.0, abs=1e-6)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # min_score filters, top_k larger than the index returns everything that passes
    above = index.search(query, top_k=1000, min_score=0.5)
    assert all(h.score >= 0.5 for h in above)
    assert len(above) == int(np.sum(vectors @ query >= 0.5))


def test_reembedding_replaces_and_survives_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a, b = _unit(rng, 2)
    index = VectorIndex(tmp_path, dim=DIM)
    index.upsert(["x", "y"], ["old x", "y"], np.stack([a, b]))
    assert index.upsert(["x"], ["new x"], b[None, :]) == 2
    reopened = VectorIndex(tmp_path, dim=DIM)
    assert reopened.count() == 2
    hits = reopened.search(b, top_k=2, min_score=0.99)
    assert {h.file_id for h in hits} == {"x", "y"}
    assert {h.text for h in hits} == {"new x", "y"}


def test_single_upsert_appends_without_rewriting_the_snapshot(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(tmp_path, dim=DIM)
    index.upsert([f"f{i}" for i in range(50)], ["t"] * 50, _unit(rng, 50))
    index.compact()
    snapshot = (tmp_path / index_module.SNAPSHOT_NAME).stat()
    assert (tmp_path / index_module.LOG_NAME).stat().st_size == 0
    index.upsert(["new"], ["t"], _unit(rng, 1))
    after = (tmp_path / index_module.SNAPSHOT_NAME).stat()
    assert (after.st_ino, after.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)
    assert (tmp_path / index_module.LOG_NAME).stat().st_size > 0
    assert VectorIndex(tmp_path, dim=DIM).count() == 51


def test_log_is_compacted_when_it_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "COMPACT_MIN_ENTRIES", 10)
    rng = np.random.default_rng(4)
    index = VectorIndex(tmp_path, dim=DIM)
    vectors = _unit(rng, 30)
    for i in range(30):
        index.upsert([f"f{i}"], [f"t{i}"], vectors[i : i + 1])
    assert (tmp_path / index_module.SNAPSHOT_NAME).exists()
    assert (tmp_path / index_module.LOG_NAME).stat().st_size < 30 * (DIM * 4 + 16)
    reopened = VectorIndex(tmp_path, dim=DIM)
    assert reopened.count() == 30
    assert reopened.search(vectors[17], top_k=1, min_score=0.0)[0].file_id == "f17"


def test_torn_log_record_is_ignored_then_cut_off(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = VectorIndex(tmp_path, dim=DIM)
    index.upsert(["a"], ["a"], _unit(rng, 1))
    log = tmp_path / index_module.LOG_NAME
    good_size = log.stat().st_size
    index.upsert(["b"], ["b"], _unit(rng, 1))
    with log.open("r+b") as fh:  # a crash in the middle of the second append
        fh.truncate(good_size + 20)
    reader = VectorIndex(tmp_path, dim=DIM)
    assert reader.count() == 1
    reader.upsert(["c"], ["c"], _unit(rng, 1))
    fresh = VectorIndex(tmp_path, dim=DIM)
    assert fresh.count() == 2
    assert {h.file_id for h in fresh.search(_unit(rng, 1)[0], top_k=5, min_score=-1.0)} == {"a", "c"}


def test_other_process_writes_are_seen(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    reader = VectorIndex(tmp_path, dim=DIM)
    assert reader.count() == 0
    writer = VectorIndex(tmp_path, dim=DIM)
    writer.upsert(["a", "b"], ["a", "b"], _unit(rng, 2))
    assert reader.count() == 2
    writer.compact()
    writer.upsert(["c"], ["c"], _unit(rng, 1))
    assert reader.count() == 3


def _write_many(directory: str, prefix: str, rows: int, seed: int) -> None:
    index_module.COMPACT_MIN_ENTRIES = 50  # compactions race with the other process's appends too
    rng = np.random.default_rng(seed)
    index = VectorIndex(Path(directory), dim=DIM)
    for start in range(0, rows, 10):
        ids = [f"{prefix}{i}" for i in range(start, start + 10)]
        index.upsert(ids, ids, _unit(rng, 10))


def test_concurrent_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), p, 300, s)) for p, s in (("a", 1), ("b", 2))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    index = VectorIndex(tmp_path, dim=DIM)
    assert index.count() == 600
    ids = {h.file_id for h in index.search(_unit(np.random.default_rng(0), 1)[0], top_k=600, min_score=-1.0)}
    assert ids == {f"a{i}" for i in range(300)} | {f"b{i}" for i in range(300)}


def test_corrupt_snapshot_raises(tmp_path: Path) -> None:
    (tmp_path / index_module.SNAPSHOT_NAME).write_bytes(b"not an index")
    with pytest.raises(index_module.IndexCorruptError):
        VectorIndex(tmp_path, dim=DIM).count()


def test_repeated_file_id_in_one_call_keeps_the_last(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    a, b = _unit(rng, 2)
    index = VectorIndex(tmp_path, dim=DIM)
    assert index.upsert(["x", "x"], ["first", "second"], np.stack([a, b])) == 1
    for reader in (index, VectorIndex(tmp_path, dim=DIM)):
        hit = reader.search(b, top_k=5, min_score=-1.0)
        assert len(hit) == 1
        assert hit[0].text == "second"
        assert hit[0].score == pytest.approx(1.0, abs=1e-6)
