"""Feature kinds and their parts: TF-IDF fitted on the pool, sentence embeddings, side by
side; and the one-pass matrix of a pool (the simulator's path, no cache)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from workers import defaults, minilm
from workers.exceptions import InvalidInput
from workers.features.columns import join_columns
from workers.features.scaling import VectorScale, with_vectors

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)

VECTORIZERS: tuple[str, ...] = (
    "tfidf",
    "tfidf_char",
    "wordllama",
    "tfidf+wordllama",
    "tfidf_char+wordllama",
    "minilm",
    "tfidf+minilm",
)
"""Text feature kinds a project or a simulation may choose."""

PARTS: dict[str, tuple[str, ...]] = {
    "tfidf": ("words",),
    "tfidf_char": ("words", "chars"),
    "wordllama": ("wordllama",),
    "tfidf+wordllama": ("words", "wordllama"),
    "tfidf_char+wordllama": ("words", "chars", "wordllama"),
    "minilm": ("minilm",),
    "tfidf+minilm": ("words", "minilm"),
}
"""The parts each feature kind is made of, side by side in this order."""

_TFIDF_ARGS: dict[str, dict] = {
    "words": {"ngram_range": (1, 2)},
    "chars": {"analyzer": "char_wb", "ngram_range": (2, 5)},
}


def check_vectorizer(vectorizer: str) -> None:
    """Raise :class:`InvalidInput` unless ``vectorizer`` is known and can run here: the
    ``minilm`` kinds need their optional weights installed."""
    if vectorizer not in VECTORIZERS:
        raise InvalidInput(f"unknown vectorizer {vectorizer!r}; use one of {list(VECTORIZERS)}")
    if "minilm" in PARTS[vectorizer] and not minilm.available():
        raise InvalidInput(f"vectorizer {vectorizer!r} is not installed here: {minilm.INSTALL_HINT}")


# --- the parts ----------------------------------------------------------------------------


TFIDF_PARAMS: tuple[str, ...] = (
    "max_features",
    "min_df",
    "max_df",
    "ngram_range",
    "stop_words",
    "lowercase",
    "sublinear_tf",
)
"""The word TF-IDF's settings a project may change (``vectorizer_params``, what Potato calls
``vectorizer_kwargs``)."""


def _tfidf(part: str, params: dict | None = None, **kwargs) -> TfidfVectorizer:
    args = {"sublinear_tf": True, **_TFIDF_ARGS[part], **kwargs, **(params or {})}
    if "ngram_range" in args:
        args["ngram_range"] = tuple(args["ngram_range"])
    return TfidfVectorizer(dtype=np.float32, **args)


def fit_tfidf(part: str, texts: list[str], params: dict | None = None) -> tuple[sp.csr_matrix, dict] | None:
    """Fit a TF-IDF part on ``texts``: its rows and its state (vocabulary, IDF weights and
    the project's ``params`` for the word part).

    None when every text is empty after tokenising (or pruned by ``min_df``)."""
    params = params if part == "words" else None
    vectorizer = _tfidf(
        part,
        params,
        min_df=2 if len(texts) >= 1000 else 1,
        max_features=defaults.TFIDF_MAX_FEATURES,
    )
    try:
        rows = sp.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:
        return None
    terms = [""] * len(vectorizer.vocabulary_)
    for term, j in vectorizer.vocabulary_.items():
        terms[j] = term
    return rows, {"terms": terms, "idf": vectorizer.idf_, "params": params or {}}


def transform_tfidf(part: str, state: dict, texts: list[str]) -> sp.csr_matrix:
    """Rows of new texts under a fitted TF-IDF part's vocabulary and IDF weights."""
    analyzer = {
        k: v
        for k, v in (state.get("params") or {}).items()
        if k in ("ngram_range", "lowercase", "sublinear_tf")
    }
    vectorizer = _tfidf(part, analyzer, vocabulary={t: j for j, t in enumerate(state["terms"])})
    vectorizer.idf_ = state["idf"]
    return sp.csr_matrix(vectorizer.transform(texts))


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
    if not texts:
        return np.zeros((0, 256), dtype=np.float32)
    return np.asarray(_wordllama().embed(texts, norm=True), dtype=np.float32)


Progress = Callable[[float], None]
"""progress(fraction): how much of a slow part (MiniLM) is computed."""


def _minilm_embeddings(texts: list[str], progress: Progress | None = None) -> np.ndarray:
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0] / len(texts))

    return minilm.load().encode(texts, step)


EMBEDDINGS: dict[str, Callable[..., np.ndarray]] = {
    "wordllama": lambda texts, progress=None: sentence_embeddings(texts),  # seconds, even for 100k
    "minilm": _minilm_embeddings,
}
"""The dense parts: ``embed(texts, progress=None)`` gives one unit-length row per text.
Unlike TF-IDF they are not fitted on the pool, so a row once computed stays valid while its
text is unchanged."""


# --- one pass, no cache (the simulator's path) ----------------------------------------------


def text_features(
    texts: list[str],
    vectorizer: str = "tfidf",
    progress: Progress | None = None,
    tfidf_params: dict | None = None,
):
    """Features of the pool's texts; None when the pool has no words at all.

    ``progress(fraction)`` hears how far an embedding part has got (MiniLM on long texts
    takes minutes); TF-IDF is quick and reports nothing."""
    check_vectorizer(vectorizer)
    if not any(t.strip() for t in texts):
        return None
    parts = []
    for part in PARTS[vectorizer]:
        if part in EMBEDDINGS:
            parts.append(EMBEDDINGS[part](texts, progress))
        else:
            fitted = fit_tfidf(part, texts, tfidf_params)
            if fitted is not None:
                parts.append(fitted[0])
    return side_by_side(parts)


def side_by_side(parts: list):
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # each part's rows have unit length, so the parts weigh the same in a linear model
    return join_columns(parts)


def pool_features(
    texts: list[str], vectors: np.ndarray | None, vectorizer: str = "tfidf", progress: Progress | None = None
):
    """The feature matrix of a pool: CSR when TF-IDF is involved, dense float32 otherwise.

    ``vectors`` has one row per item (zeros where an item has none). Items with neither
    text nor vector get an all-zero row; vectors are scaled as :class:`VectorScale` says.
    ``progress`` as for :func:`text_features`.
    """
    if vectors is not None:
        _, vectors = VectorScale.standardise(vectors)
    return with_vectors(text_features(texts, vectorizer, progress), vectors, len(texts))
