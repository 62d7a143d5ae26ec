"""Pool features, computed offline: nothing is downloaded, ever.

- ``tfidf``: TF-IDF of word unigrams and bigrams, fitted on the pool's own texts
  (unsupervised, so free to fit on every item, labelled or not);
- ``tfidf_char``: the same plus character 2-5-grams within word boundaries, for short or
  noisy texts where words alone are sparse;
- ``wordllama``: a dense 256-d sentence embedding from the model the ``wordllama``
  package ships in its wheel (``l2_supercat_256``);
- ``tfidf+wordllama``: both, side by side.

Client vectors are used as given, beside the text features.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from workers import defaults
from workers.exceptions import InvalidInput

VECTORIZERS: tuple[str, ...] = ("tfidf", "tfidf_char", "wordllama", "tfidf+wordllama")
"""Text feature kinds a project or a simulation may choose."""


def _tfidf(texts: list[str], **kwargs) -> sp.csr_matrix | None:
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        min_df=2 if len(texts) >= 1000 else 1,
        max_features=defaults.TFIDF_MAX_FEATURES,
        dtype=np.float32,
        **kwargs,
    )
    try:
        return sp.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # every document empty after tokenising, or pruned by min_df
        return None


def text_features(texts: list[str], vectorizer: str = "tfidf"):
    """Features of the pool's texts; None when the pool has no words at all."""
    if vectorizer not in VECTORIZERS:
        raise InvalidInput(f"unknown vectorizer {vectorizer!r}; use one of {list(VECTORIZERS)}")
    if not any(t.strip() for t in texts):
        return None
    parts = []
    if vectorizer.startswith("tfidf"):
        words = _tfidf(texts, ngram_range=(1, 2))
        if words is not None:
            parts.append(words)
        if vectorizer == "tfidf_char":
            chars = _tfidf(texts, analyzer="char_wb", ngram_range=(2, 5))
            if chars is not None:
                parts.append(chars)
    if vectorizer.endswith("wordllama"):
        parts.append(sentence_embeddings(texts))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # each part's rows have unit length, so the parts weigh the same in a linear model
    return sp.hstack([sp.csr_matrix(p) for p in parts], format="csr", dtype=np.float32)


@lru_cache(maxsize=1)
def _wordllama():
    import wordllama
    from wordllama import WordLlama

    # The wheel ships the tokenizer under wordllama/tokenizers/, but the loader looks for
    # it under <cache_dir>/tokenizers/ (and would try to download it): pointing cache_dir
    # at the package itself makes it load offline.
    return WordLlama.load(dim=256, cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def sentence_embeddings(texts: list[str]) -> np.ndarray:
    """L2-normalised 256-d embeddings (wordllama ``l2_supercat_256``), float32."""
    emb = np.asarray(_wordllama().embed(texts, norm=True), dtype=np.float32)
    return emb


def pool_features(texts: list[str], vectors: np.ndarray | None, vectorizer: str = "tfidf"):
    """The feature matrix of a pool: CSR when TF-IDF is involved, dense float32 otherwise.

    ``vectors`` has one row per item (zeros where an item has none). Items with neither
    text nor vector get an all-zero row.
    """
    n = len(texts)
    text = text_features(texts, vectorizer)
    if vectors is not None and text is not None:
        if sp.issparse(text):
            return sp.hstack([text, sp.csr_matrix(vectors)], format="csr", dtype=np.float32)
        return np.hstack([text, vectors]).astype(np.float32)
    if text is not None:
        return text
    if vectors is not None:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return np.zeros((n, 1), dtype=np.float32)
