"""The numpy MiniLM encoder reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from app.semantic.encoder import EMBEDDING_DIM, MiniLMEncoder


def test_matches_sentence_transformers(encoder: MiniLMEncoder, reference: tuple[list[str], np.ndarray]) -> None:
    texts, expected = reference
    vectors = encoder.encode(texts)
    assert vectors.shape == (len(texts), EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    cosines = np.sum(vectors * expected, axis=1)
    assert cosines.min() >= 0.999, dict(zip(texts, cosines.tolist(), strict=True))
    assert_allclose(vectors, expected, atol=1e-4)


def test_batching_and_padding_do_not_change_vectors(
    encoder: MiniLMEncoder, reference: tuple[list[str], np.ndarray]
) -> None:
    texts, _ = reference
    together = encoder.encode(texts, batch_size=64)
    one_by_one = encoder.encode(texts, batch_size=1)
    assert_allclose(together, one_by_one, atol=2e-5)


def test_unit_norm_and_truncation(encoder: MiniLMEncoder) -> None:
    assert encoder.max_seq_length == 256
    words = "nebula " * 600  # far past 256 tokens
    vectors = encoder.encode([words, words + "galaxy " * 50, ""])
    assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # only the first 256 tokens count, so text past them changes nothing
    assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_empty_input(encoder: MiniLMEncoder) -> None:
    assert encoder.encode([]).shape == (0, EMBEDDING_DIM)
