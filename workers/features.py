"""Pool features: TF-IDF fitted on the pool's own texts, client vectors as given.

Nothing is downloaded: the vocabulary and IDF weights come from the pool itself, which is
unsupervised and so free to fit on every item, labelled or not.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from workers import defaults


def text_features(texts: list[str]) -> sp.csr_matrix | None:
    """TF-IDF of word unigrams and bigrams; None when the pool has no words at all."""
    if not any(t.strip() for t in texts):
        return None
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        ngram_range=(1, 2),
        min_df=2 if len(texts) >= 1000 else 1,
        max_features=defaults.TFIDF_MAX_FEATURES,
        dtype=np.float32,
    )
    try:
        return sp.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # every document empty after tokenising, or pruned by min_df
        return None


def pool_features(texts: list[str], vectors: np.ndarray | None):
    """The feature matrix of a pool: CSR when text is involved, dense float32 otherwise.

    ``vectors`` has one row per item (zeros where an item has none). Items with neither
    text nor vector get an all-zero row.
    """
    n = len(texts)
    tfidf = text_features(texts)
    if vectors is not None and tfidf is not None:
        return sp.hstack([tfidf, sp.csr_matrix(vectors)], format="csr", dtype=np.float32)
    if tfidf is not None:
        return tfidf
    if vectors is not None:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return np.zeros((n, 1), dtype=np.float32)
