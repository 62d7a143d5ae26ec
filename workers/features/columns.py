"""Feature blocks joined column-wise into one CSR matrix, a block of rows at a time.

``scipy.sparse.hstack`` goes through COO: on a million rows with a 256-wide embedding it
holds 64-bit row and column indices for every value at once, several times the matrix it
returns. Here the result's arrays are sized by a first counting pass, then each part's
values are copied in place, a block of its rows at a time, so the join needs the result
plus one block.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BLOCK_ROWS = 16_384
"""Rows of a part copied at a time: of a 256-wide dense part, 16 MB of values."""


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
            block = csr[start:stop] if csr is not None else sp.csr_matrix(np.asarray(p[start:stop]))
            per_row = np.diff(block.indptr)
            # a value's place: its row's next free slot, plus its rank within the row
            at = np.repeat(filled[start:stop] - block.indptr[:-1], per_row) + np.arange(block.nnz)
            indices[at] = block.indices + offset
            data[at] = block.data
            filled[start:stop] += per_row
        offset += int(p.shape[1])
    return sp.csr_matrix((data, indices, indptr.astype(index, copy=False)), shape=(n, width), copy=False)
