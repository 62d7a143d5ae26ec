"""The per-item feature cache (the service's path): each part's rows keyed by item id and a
checksum of the item's text, so a retrain computes rows only for items that are new or whose
text changed."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from workers import defaults
from workers.features._arrays import json_array, json_list, npz, state_arrays
from workers.features.columns import release, rows_of
from workers.features.kinds import (
    EMBEDDINGS,
    PARTS,
    Progress,
    check_vectorizer,
    fit_tfidf,
    transform_tfidf,
)
from workers.features.scaling import VectorScale, pool_matrix

log = logging.getLogger(__name__)


@dataclass
class CachedPart:
    """One part's rows for a set of items, and what made them."""

    ids: list[str]
    checksums: np.ndarray
    rows: sp.csr_matrix | np.ndarray
    state: dict = field(default_factory=dict)
    fitted_rows: int = 0
    added_rows: int = 0

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The part as named arrays: what the ``.npz`` blob and the files on disk hold."""
        arrays: dict[str, np.ndarray] = {
            "ids": json_array(self.ids),
            "checksums": self.checksums.astype(np.uint32),
            "counts": np.array([self.fitted_rows, self.added_rows], dtype=np.int64),
        }
        if sp.issparse(self.rows):
            csr = sp.csr_matrix(self.rows)
            # one index type for both, so a memory-mapped matrix is used as it is, not cast
            index = np.int32 if csr.nnz < 2**31 and csr.shape[1] < 2**31 else np.int64
            arrays |= {
                "data": csr.data.astype(np.float32),
                "indices": csr.indices.astype(index),
                "indptr": csr.indptr.astype(index),
                "shape": np.array(csr.shape, dtype=np.int64),
            }
        else:
            arrays["dense"] = np.asarray(self.rows, dtype=np.float32)
        return arrays | state_arrays(self.state)

    @classmethod
    def from_arrays(cls, z) -> CachedPart:
        """The part from named arrays (an open ``.npz`` or memory-mapped files)."""
        if "dense" in z:
            rows: sp.csr_matrix | np.ndarray = z["dense"]
        else:
            shape = tuple(int(v) for v in z["shape"])
            rows = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape, copy=False)
        state = {"terms": json_list(z["terms"]), "idf": np.asarray(z["idf"])} if "terms" in z else {}
        if state:
            state["params"] = json.loads(json_list(z["params"])[0]) if "params" in z else {}
        fitted, added = (int(v) for v in z["counts"])
        return cls(json_list(z["ids"]), np.asarray(z["checksums"]), rows, state, fitted, added)

    def to_bytes(self) -> bytes:
        return npz(self.to_arrays())

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedPart:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls.from_arrays({name: z[name] for name in z.files})


@dataclass
class Unchanged:
    """A pool's ids and each part's rows, as a cache holds them for an unchanged pool."""

    ids: list[str]
    parts: list[tuple[str, CachedPart]]
    vectors: np.ndarray | None = None
    """The client vectors as uploaded (unscaled), when the pool has them."""


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

    ``load(part)`` and ``save(part, blob)`` read and write one part's serialised rows (a
    dict in the simulator and the benchmarks; Redis where no feature directory is set).
    :class:`workers.features.files.FeatureFiles` keeps them on disk instead.
    """

    def __init__(self, load: Callable[[str], bytes | None], save: Callable[[str, bytes], None]) -> None:
        self.load = load
        self.save = save
        self.checkpoints = 0
        """Partial saves of an embedding part made so far (see ``FEATURE_CHECKPOINT_SECONDS``)."""

    def read(self, part: str) -> CachedPart | None:
        """One part's stored rows, None when there are none; raises when they cannot be read."""
        blob = self.load(part)
        return CachedPart.from_bytes(blob) if blob else None

    def keep(self, part: str, cached: CachedPart) -> None:
        """Store one part's rows in place of what was there."""
        self.save(part, cached.to_bytes())

    def new_rows(self, part: str, n: int, width: int) -> np.ndarray:
        """Room for ``n`` rows of ``width`` float32 values of an embedding part, to be
        filled and then kept (here: in memory)."""
        return np.empty((n, width), dtype=np.float32)

    def kept_rows(self, part: str, rows: np.ndarray) -> np.ndarray:
        """``rows``, just kept as ``part``'s, as the cache can hand them back for less
        memory (here: as they are)."""
        return rows

    def discard_rows(self, rows: np.ndarray) -> None:
        """Let go of rows :meth:`new_rows` made that will not be kept (here: nothing to do)."""

    def stamp(self, part: str, generation: int) -> None:
        """Note that the part's rows are those of the pool at ``generation`` (see
        :meth:`unchanged`); a cache that cannot tell keeps nothing."""

    def stamp_empty(self, part: str, generation: int) -> None:
        """Note that the pool at ``generation`` has no text, so the part has no rows."""

    def keep_vectors(self, ids: list[str], vectors: np.ndarray, generation: int) -> None:
        """Keep the pool's client vectors at ``generation`` beside its rows (here: nowhere;
        Redis holds them with the items)."""

    def unchanged(
        self, generation: int, vectorizer: str, tfidf_params: dict | None = None, vectors: bool = False
    ) -> Unchanged | None:
        """Every part's rows, when each was stamped at ``generation`` under these settings,
        and with ``vectors`` the client vectors kept at it: a refresh of a pool no upload has
        changed reads neither its texts nor its vectors. None otherwise (and here)."""
        return None

    def assemble(
        self, unchanged: Unchanged, vectors: np.ndarray | None
    ) -> tuple[sp.csr_matrix | np.ndarray, CacheReport]:
        """The matrix :meth:`pool_features` gives, from rows :meth:`unchanged` found."""
        report = CacheReport()
        for part, cached in unchanged.parts:
            report.reused[part] = len(cached.ids)
            report.computed[part] = 0
            report.parts.append((part, cached.state))
        if vectors is not None:
            report.vector_scale, vectors = VectorScale.standardise(vectors)
        return pool_matrix(
            [cached.rows for _, cached in unchanged.parts], vectors, len(unchanged.ids)
        ), report

    def rows_of(
        self, unchanged: Unchanged, rows: np.ndarray, vectors: np.ndarray | None, scale: dict | None
    ) -> sp.csr_matrix | np.ndarray:
        """Rows ``rows`` of the matrix :meth:`assemble` gives, with ``vectors`` (the client
        vectors of those rows) scaled as the whole pool's were (``scale``, a
        :class:`VectorScale` as :meth:`VectorScale.to_dict` gives it): a scoring shard's
        share of the pool (``workers.shards``)."""
        if vectors is not None and scale is not None:
            vectors = VectorScale.from_dict(scale).apply(vectors)
        return pool_matrix([cached.rows for _, cached in unchanged.parts], vectors, len(rows), rows)

    def _cached(self, part: str) -> CachedPart | None:
        """One part's cached rows; None when there are none, or when what is stored cannot be
        read (then the rows are computed afresh and what was stored is overwritten)."""
        try:
            return self.read(part)
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
        generation: int | None = None,
    ) -> tuple[sp.csr_matrix | np.ndarray, CacheReport]:
        """The same matrix as :func:`pool_features`, computing only rows the cache lacks
        (a word TF-IDF cached under other ``tfidf_params`` is fitted again).

        ``progress(fraction)`` hears how far an embedding part has got on the rows it computes.
        ``generation``, the pool's (``Store.pool_generation``) as read before its items, is
        stamped on every part, for :meth:`unchanged`."""
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
                    if generation is not None:
                        self.stamp(part, generation)
        elif generation is not None:
            for part in PARTS[vectorizer]:
                self.stamp_empty(part, generation)
        if vectors is not None:
            report.vector_scale, vectors = VectorScale.standardise(vectors)
        return pool_matrix(parts, vectors, len(texts)), report

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
            self.keep(part, CachedPart(list(ids), sums, fitted[0], fitted[1], len(ids), 0))
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
        self.keep(part, fresh)
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
        """An embedding part's rows, each straight to its place in the pool's order: cached where
        kept, embedded ``EMBED_STEP_ROWS`` at a time where new, and saved every ``FEATURE_CHECKPOINT_SECONDS``
        so a job stopped on the way (its timeout, a lost worker) leaves them to the next."""
        rows = None
        step = defaults.EMBED_STEP_ROWS
        if cached is not None:
            rows = self.new_rows(part, len(ids), cached.rows.shape[1])
            for start in range(0, len(keep), step):
                rows[keep[start : start + step]] = rows_of(cached.rows, old[keep[start : start + step]])
                release([rows])
        last_save = time.monotonic()
        try:
            for start in range(0, len(new), step):
                chunk = new[start : start + step]
                told = _share(progress, start, len(chunk), len(new))
                embedded = EMBEDDINGS[part]([texts[i] for i in chunk], told)
                if rows is None:
                    rows = self.new_rows(part, len(ids), embedded.shape[1])
                rows[chunk] = embedded
                release([rows])
                more_to_do = start + step < len(new)
                if more_to_do and time.monotonic() - last_save >= defaults.FEATURE_CHECKPOINT_SECONDS:
                    self._checkpoint(part, ids, sums, rows, np.concatenate([keep, new[: start + len(chunk)]]))
                    last_save = time.monotonic()
        except BaseException:  # the job's timeout, a lost connection: the checkpoint stays
            if rows is not None:
                self.discard_rows(rows)
            raise
        if rows is None:
            rows = EMBEDDINGS[part]([])
        self.keep(part, CachedPart(list(ids), sums, rows))
        return self.kept_rows(part, rows)

    def _checkpoint(self, part: str, ids: list[str], sums: np.ndarray, rows: np.ndarray, done: np.ndarray):
        """Keep the rows ``done`` so far, so a job stopped on the way leaves them."""
        copied = self._copy_rows(part, rows, done)
        self.keep(part, CachedPart([ids[i] for i in done], sums[done], copied))
        self.discard_rows(copied)  # its file moved into place, or the save failed
        self.checkpoints += 1

    def _copy_rows(self, part: str, rows: np.ndarray, which: np.ndarray) -> np.ndarray:
        """Rows ``which`` of ``rows``, copied a step at a time into rows of the cache's own (a
        file, in a feature directory): never a million embedded rows in memory at once."""
        out = self.new_rows(part, len(which), rows.shape[1])
        step = defaults.EMBED_STEP_ROWS
        for start in range(0, len(which), step):
            out[start : start + step] = rows_of(rows, which[start : start + step])
            release([out, rows])
        return out


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
