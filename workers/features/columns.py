"""Feature blocks joined column-wise into one CSR matrix, a block of rows at a time.

``scipy.sparse.hstack`` goes through COO: on a million rows with a 256-wide embedding it
holds 64-bit row and column indices for every value at once, several times the matrix it
returns. Here the result's arrays are sized by a first counting pass, then each part's
values are copied in place, a block of its rows at a time, so the join needs the result
plus one block.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

PASS_ROWS = 16_384
"""Rows of :class:`Columns` joined at a time by a pass over all of them (the model's, a
committee's): of a 256-wide embedding beside TF-IDF, about 35 MB."""

BLOCK_ROWS = 4096
"""Rows of a part copied at a time: of a 256-wide dense part, 4 MB of values, and the
index arrays that place them (8 bytes a value) stay near 10 MB each."""


def join_columns(parts: list) -> sp.csr_matrix:
    """``parts`` (CSR matrices and dense arrays with the same rows) side by side, as float32
    CSR with each dense part's zeros left out: what ``sp.hstack`` of their CSR forms gives."""
    n = parts[0].shape[0]
    width = sum(int(p.shape[1]) for p in parts)
    counts = np.zeros(n, dtype=np.int64)
    for p in parts:
        if sp.issparse(p):
            counts += np.diff(sp.csr_matrix(p).indptr)
        else:
            for start in range(0, n, BLOCK_ROWS):
                counts[start : start + BLOCK_ROWS] += np.count_nonzero(p[start : start + BLOCK_ROWS], axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    del counts
    index = np.int32 if indptr[-1] < 2**31 and width < 2**31 else np.int64
    indices = np.empty(int(indptr[-1]), dtype=index)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    filled = indptr[:-1].copy()  # where each row's next value goes
    offset = 0
    for p in parts:
        csr = sp.csr_matrix(p) if sp.issparse(p) else None
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            if csr is not None:
                block = csr[start:stop]
                cols, values, per_row = block.indices, block.data, np.diff(block.indptr)
            else:
                cols, values, per_row = _nonzero(np.asarray(p[start:stop]))
            first = np.zeros(len(per_row), dtype=np.int64)
            np.cumsum(per_row[:-1], out=first[1:])
            # a value's place: its row's next free slot, plus its rank within the row
            at = np.repeat(filled[start:stop] - first, per_row) + np.arange(len(values))
            indices[at] = cols + offset
            data[at] = values
            filled[start:stop] += per_row
        offset += int(p.shape[1])
    return sp.csr_matrix((data, indices, indptr.astype(index, copy=False)), shape=(n, width), copy=False)


def _nonzero(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dense block's nonzero values row by row, their columns, and how many each row has:
    its CSR form, by masks (``sp.csr_matrix`` of a dense block goes through COO, ten times
    slower)."""
    nonzero = block != 0
    columns = np.broadcast_to(np.arange(block.shape[1], dtype=np.int64), block.shape)[nonzero]
    return columns, block[nonzero], np.count_nonzero(nonzero, axis=1)


class Columns:
    """A pool's feature parts side by side, joined only for the rows asked for.

    On a million items the default features (TF-IDF and a 256-wide embedding) joined as one
    CSR matrix take about 2 GB, and the candidates' rows copied out of it as much again.
    Held as their parts instead (the embedding memory-mapped from the feature directory),
    the rows a stage needs (the labelled ones, a block of the model's pass, the strategy's
    most uncertain candidates) are joined when asked for, and only they.

    ``x[rows]`` and ``x[a:b]`` give those rows joined, as :func:`join_columns` does;
    ``x.take(rows)`` gives a view of some rows that is still not joined.
    """

    def __init__(self, parts: list, rows: np.ndarray | None = None) -> None:
        self.parts = parts
        self.rows = rows
        """The parts' rows this view holds, in its order (None: all of them)."""

    @property
    def shape(self) -> tuple[int, int]:
        n = self.parts[0].shape[0] if self.rows is None else len(self.rows)
        return n, sum(int(p.shape[1]) for p in self.parts)

    def _rows(self, key) -> np.ndarray | slice:
        if isinstance(key, slice):
            return key if self.rows is None else self.rows[key]
        picked = np.asarray(key, dtype=np.int64)
        if picked.ndim != 1:
            raise TypeError("rows of a Columns matrix are picked by a slice or a list of rows")
        return picked if self.rows is None else self.rows[picked]

    def __getitem__(self, key) -> sp.csr_matrix:
        rows = self._rows(key)
        return join_columns([rows_of(p, rows) for p in self.parts])

    def blocks(self, size: int | None = None) -> Iterator[sp.csr_matrix]:
        """The view's rows joined ``size`` (``PASS_ROWS``) at a time, in order; one empty
        block for an empty view."""
        size = size or PASS_ROWS
        n = self.shape[0]
        for start in range(0, max(n, 1), size):
            yield self[start : start + size]

    def take(self, rows) -> Columns:
        picked = self._rows(rows)
        if isinstance(picked, slice):
            picked = np.arange(self.shape[0])[picked] if self.rows is None else picked
        return Columns(self.parts, np.asarray(picked, dtype=np.int64))

    def joined(self) -> sp.csr_matrix:
        """Every row of the view, joined: what a strategy that measures the whole pool needs."""
        return self[slice(None)]

    def toarray(self) -> np.ndarray:
        return self.joined().toarray()


def take_rows(x, rows: np.ndarray):
    """Rows ``rows`` of a feature matrix: a view for :class:`Columns`, a copy otherwise."""
    return x.take(rows) if isinstance(x, Columns) else x[rows]


def by_blocks(fn, x, size: int | None = None, axis: int = 0) -> np.ndarray:
    """``fn(x)``, computed on blocks of rows when ``x`` is :class:`Columns` (so only a block
    is ever joined) and joined again along ``axis``, where ``fn`` puts the rows."""
    if not isinstance(x, Columns):
        return fn(x)
    return np.concatenate([fn(block) for block in x.blocks(size)], axis=axis)


def rows_of(part, rows: np.ndarray | slice):
    """Rows of one part. A memory-mapped dense part's rows are read from its file, one
    read a run of neighbouring rows: touching a few thousand rows scattered over a mapped
    file can map most of it into the process (the page cache hands out large folios), a
    gigabyte for a million rows of an embedding."""
    if not _whole_file(part):
        return part[rows]
    n, width = part.shape
    wanted = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
    wanted = np.where(wanted < 0, wanted + n, wanted)
    if len(wanted) and (wanted.min() < 0 or wanted.max() >= n):
        raise IndexError(f"rows out of range for a part of {n} rows")
    out = np.empty((len(wanted), width), dtype=part.dtype)
    if len(wanted) == 0:
        return out
    row_bytes = width * part.dtype.itemsize
    # runs of consecutive rows: where the next row is not the one after
    breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(wanted)]])
    flat = out.reshape(-1).view(np.uint8).data  # the rows' bytes, to read into
    with open(str(part.filename), "rb", buffering=0) as f:
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            at = part.offset + int(wanted[a]) * row_bytes
            _read_into(f.fileno(), flat[a * row_bytes : b * row_bytes], at)
    return out


def _read_into(fd: int, buffer: memoryview, offset: int) -> None:
    """Fill ``buffer`` from the file at ``offset`` (a read may return less than asked)."""
    done = 0
    while done < len(buffer):
        got = os.preadv(fd, [buffer[done:]], offset + done)
        if got <= 0:
            raise OSError(f"the feature file ended {len(buffer) - done} bytes early")
        done += got


def _whole_file(part) -> bool:
    """Whether ``part`` is a C-ordered array mapped from the whole of its file (an ``.npy``
    file's rows, as the feature directory holds them), so its rows can be read from it."""
    if not isinstance(part, np.memmap) or part.ndim != 2 or not part.flags.c_contiguous:
        return False
    try:
        return os.path.getsize(str(part.filename)) == part.offset + part.nbytes
    except (OSError, TypeError):
        return False


def release(parts: list) -> None:
    """Hand back the pages of memory-mapped parts that writing rows brought in: they stay
    in the page cache, not in this process, so filling a million rows of an embedding
    does not keep its gigabyte resident here."""
    for p in parts:
        mapped = getattr(p, "_mmap", None) if isinstance(p, np.memmap) else None
        if isinstance(mapped, mmap.mmap):
            with contextlib.suppress(OSError, ValueError):
                mapped.madvise(mmap.MADV_DONTNEED)


def columns(parts: list):
    """Parts (CSR or dense, None for one a pool lacks) as one matrix: the part itself when
    there is one, :class:`Columns` over them when there are several."""
    present = [p for p in parts if p is not None]
    if len(present) == 1:
        return present[0]
    if not any(sp.issparse(p) for p in present):
        return np.hstack(present).astype(np.float32, copy=False)
    return Columns(present)


def is_sparse(x) -> bool:
    """Whether rows of ``x`` are CSR (TF-IDF is among its parts): such rows are compared by
    angle, not distance."""
    return sp.issparse(x) or isinstance(x, Columns)
