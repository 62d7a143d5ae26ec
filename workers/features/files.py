"""A project's cached feature rows on disk, read back by memory-mapping.

Each part (``words``, ``wordllama``, ...) is a directory of plain ``.npy`` files, one per
array of :meth:`CachedPart.to_arrays` (a TF-IDF part's CSR ``data``, ``indices`` and
``indptr``; an embedding's ``dense`` rows; the items' ids and text checksums), and the file
``{part}.current`` names the directory in use. A save writes a new directory and swaps the
name in one rename: a reader sees the old rows or the new, never a mix, and a job killed
half-way through a save leaves the old rows in use. Reading maps the files copy-on-write:
nothing is decoded, the rows a retrain touches are paged in, and nothing a job changes in
memory reaches the file.

The directory is ``ALRANK_FEATURE_DIR`` (``alrank serve`` sets it to ``D/features`` of its
data dir). Workers on several machines need it on a volume they all mount; without it set,
the rows are kept in Redis beside the project, as ``.npz`` blobs. Rows a project kept in
Redis are moved here the first time a job reads them.

Why ``.npy`` and memory maps, not Parquet or Lance: the rows are matrices that scikit-learn
takes as they are (CSR arrays, a dense float32 block), read whole by every retrain; a
columnar table format would add a decoding step and a dependency for no query it answers
better. ``bench/feature_store.py`` measures the save and the read against the Redis blobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from redis.exceptions import RedisError

from workers import defaults
from workers.features.cache import CachedPart, FeatureCache, Unchanged
from workers.features.kinds import PARTS

if TYPE_CHECKING:
    from workers.store import Store

log = logging.getLogger(__name__)

VECTORS = "vectors"
"""The part that keeps a pool's client vectors, as uploaded."""

SCRATCH = ".rows."
"""How the name of a file of rows still being computed begins."""

EMPTY = "none"
"""A stamp's version for a part of a pool with no text: no rows, and none needed."""


def feature_root() -> Path | None:
    """Where projects' feature rows live on disk; None keeps them in Redis."""
    value = os.environ.get(defaults.FEATURE_DIR_ENV, "").strip()
    return Path(value) if value else None


def project_dir(root: Path, project: dict) -> Path:
    """A project's directory: its name and a checksum of when it was made, so a project
    deleted and made again under the same name never reads the old one's rows."""
    created = str(project.get("created_at", ""))
    return root / f"{project['name']}-{zlib.crc32(created.encode()):08x}"


def forget(project: dict) -> None:
    """Delete a project's rows on disk (when a directory is set); a job reading them keeps
    its mapped copy until it ends."""
    root = feature_root()
    if root is not None:
        shutil.rmtree(project_dir(root, project), ignore_errors=True)


class FeatureFiles(FeatureCache):
    """:class:`FeatureCache` with each part's rows in ``directory``.

    ``legacy`` is (load, drop) of rows kept the old way (Redis blobs): read once, written
    here, then dropped there."""

    def __init__(
        self,
        directory: Path,
        legacy: tuple[Callable[[str], bytes | None], Callable[[str], None]] | None = None,
    ) -> None:
        super().__init__(legacy[0] if legacy else (lambda part: None), lambda part, blob: None)
        self.directory = directory
        self.legacy = legacy
        self._scratch: dict[str, tuple[int, int]] = {}
        """Files of rows :meth:`new_rows` made and no save has moved yet, with their shape."""

    def _pointer(self, part: str) -> Path:
        return self.directory / f"{part}.current"

    def _version(self, part: str) -> str | None:
        try:
            return self._pointer(part).read_text(encoding="ascii").strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read(self, part: str) -> CachedPart | None:
        version = self._version(part)
        if version is None:
            return self._migrate(part)
        folder = self.directory / f"{part}.{version}"
        files = sorted(folder.glob("*.npy"))
        if not files:
            raise OSError(f"{folder} holds no arrays")
        return CachedPart.from_arrays({f.stem: _map(f) for f in files})

    def keep(self, part: str, cached: CachedPart) -> None:
        """Save the part's rows; a directory that cannot be written (full, read-only) costs
        the next job the rows' computation, never this job its ranking."""
        try:
            self._write(part, cached)
        except OSError as exc:
            log.warning("could not save the %s features in %s: %s", part, self.directory, exc)

    def new_rows(self, part: str, n: int, width: int) -> np.ndarray:
        """Room for an embedding's rows in a file of this directory, memory-mapped: filled a
        step at a time, its pages go back to the page cache as they are written, and
        keeping the rows moves the file into place rather than copying it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _sweep_scratch(self.directory)
            path = self.directory / f"{SCRATCH}{part}.{uuid.uuid4().hex[:16]}.npy"
            rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, width))
        except OSError as exc:
            log.warning(
                "no room for the %s features in %s (%s); computing them in memory", part, self.directory, exc
            )
            return super().new_rows(part, n, width)
        self._scratch[str(rows.filename)] = (n, width)
        return rows

    def kept_rows(self, part: str, rows: np.ndarray) -> np.ndarray:
        """The rows just written, memory-mapped from their file: a million rows of an
        embedding then cost this process the pages it reads, not a gigabyte held."""
        try:
            mapped = self.read(part)
        except (OSError, ValueError, KeyError):
            return rows
        if mapped is None or mapped.rows.shape != rows.shape:
            return rows  # not written (the directory refused it): keep what was computed
        return mapped.rows

    def discard_rows(self, rows: np.ndarray) -> None:
        """Remove the file of rows :meth:`new_rows` made for a job that stopped before
        keeping them (a million embedded rows are 1.5 GB of disk)."""
        scratch = self._scratch_of(rows)
        if scratch is not None:
            del self._scratch[scratch]
            with contextlib.suppress(OSError):
                os.unlink(scratch)

    def _scratch_of(self, rows) -> str | None:
        """The file of rows :meth:`new_rows` made, when ``rows`` is the whole of them."""
        name = getattr(rows, "filename", None) if isinstance(rows, np.memmap) else None
        path = str(name) if name is not None else None
        if path is None or self._scratch.get(path) != rows.shape:
            return None
        return path

    def _write(self, part: str, cached: CachedPart) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        version = uuid.uuid4().hex[:16]
        folder = self.directory / f"{part}.{version}"
        folder.mkdir()
        try:
            scratch = self._scratch_of(cached.rows)
            for name, array in cached.to_arrays().items():
                if name == "dense" and scratch is not None:
                    cached.rows.flush()  # type: ignore[union-attr]
                    os.replace(scratch, folder / "dense.npy")  # already an .npy file: moved
                    del self._scratch[scratch]
                else:
                    np.save(folder / f"{name}.npy", array, allow_pickle=False)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        previous = self._version(part)
        staged = self.directory / f".{part}.current.{version}"
        staged.write_text(version, encoding="ascii")
        os.replace(staged, self._pointer(part))
        if previous is not None and previous != version:
            shutil.rmtree(self.directory / f"{part}.{previous}", ignore_errors=True)

    def stamp(self, part: str, generation: int) -> None:
        version = self._version(part)
        if version is not None:
            self._write_stamp(part, f"{version} {generation}")

    def stamp_empty(self, part: str, generation: int) -> None:
        self._write_stamp(part, f"{EMPTY} {generation}")

    def keep_vectors(self, ids: list[str], vectors: np.ndarray, generation: int) -> None:
        """The vectors as a part of their own (``vectors``), so a refresh of an unchanged
        pool reads them here and not item by item from Redis."""
        self.keep(VECTORS, CachedPart(ids, np.zeros(len(ids), dtype=np.uint32), vectors))
        self.stamp(VECTORS, generation)

    def unchanged(
        self, generation: int, vectorizer: str, tfidf_params: dict | None = None, vectors: bool = False
    ) -> Unchanged | None:
        parts = []
        for part in (*PARTS[vectorizer], *((VECTORS,) if vectors else ())):
            stamped = self._stamped(part, generation)
            if stamped == EMPTY and part != VECTORS:
                continue  # the pool has no text
            if stamped is None:
                return None
            try:
                cached = self.read(part)
            except (ValueError, KeyError, OSError, EOFError):
                return None
            if cached is None or (
                part == "words" and (cached.state.get("params") or {}) != (tfidf_params or {})
            ):
                return None
            parts.append((part, cached))
        if not parts or any(cached.ids != parts[0][1].ids for _, cached in parts[1:]):
            return None
        ids = parts[0][1].ids
        kept = parts.pop()[1].rows if vectors else None
        return Unchanged(ids, parts, kept)

    def _stamped(self, part: str, generation: int) -> str | None:
        """The part's version (or ``EMPTY``) when it is stamped at ``generation``."""
        try:
            version, stamped = (self.directory / f"{part}.stamp").read_text(encoding="ascii").split()
        except (OSError, ValueError):
            return None
        if int(stamped) != generation or version not in (EMPTY, self._version(part)):
            return None
        return version

    def _write_stamp(self, part: str, text: str) -> None:
        staged = self.directory / f".{part}.stamp.{uuid.uuid4().hex[:16]}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            staged.write_text(text, encoding="ascii")
            os.replace(staged, self.directory / f"{part}.stamp")
        except OSError as exc:
            log.warning("could not stamp the %s features in %s: %s", part, self.directory, exc)

    def _migrate(self, part: str) -> CachedPart | None:
        """Rows kept in Redis by an older layout, moved here; None when there are none."""
        if self.legacy is None:
            return None
        load, drop = self.legacy
        blob = load(part)
        if not blob:
            return None
        cached = CachedPart.from_bytes(blob)
        self.keep(part, cached)
        drop(part)
        log.info("moved the cached %s features of %s out of Redis", part, self.directory.name)
        return cached


def _sweep_scratch(directory: Path) -> None:
    """Remove the rows a dead job was filling (older than any job may run)."""
    stale = time.time() - defaults.JOB_TIMEOUT
    for old in directory.glob(f"{SCRATCH}*.npy"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < stale:
                old.unlink()


def _map(path: Path) -> np.ndarray:
    """The array in ``path``, memory-mapped copy-on-write (read whole when it is empty,
    which cannot be mapped)."""
    try:
        return np.load(path, mmap_mode="c", allow_pickle=False)
    except ValueError:
        return np.load(path, allow_pickle=False)


def feature_cache(store: Store, project_name: str) -> FeatureCache:
    """The project's feature rows, kept between refreshes: in the feature directory when
    one is set (``workers.features.files``), otherwise in Redis beside the project."""
    root = feature_root()

    def load(part: str) -> bytes | None:
        return store.feature_rows(project_name, part)

    if root is not None:
        return FeatureFiles(
            project_dir(root, store.get_project(project_name)),
            (load, lambda part: store.drop_feature_rows(project_name, part)),
        )

    def keep(part: str, blob: bytes) -> None:
        # a value past Redis's limit (512 MB: a dense part of about 500,000 items) is
        # refused with the connection: the next job computes the rows again
        try:
            store.save_feature_rows(project_name, part, blob)
        except RedisError as exc:
            log.warning(
                "could not keep the %s features of %s in Redis (%.0f MB): %s; %s keeps them on disk",
                part,
                project_name,
                len(blob) / 2**20,
                exc,
                defaults.FEATURE_DIR_ENV,
            )

    return FeatureCache(load, keep)
