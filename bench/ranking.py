"""The strategy step of a ranking job: from a model's probabilities to a ranking of the pool.

A ranking job orders the whole unlabelled pool. Score-based strategies sort it; the
batch-aware ones choose its first ``BATCH_AWARE_DEPTH`` items as batches would be chosen
(``diverse_uncertainty``: blocks of ``DIVERSE_BLOCK``, each a k-means over ``prefilter`` x
block candidates), which costs far more than one batch. This prints the median time of
``workers.ranking.rank_pool`` per strategy, margin sampling being the baseline in the same
run, and ``diverse_uncertainty`` at several prefilter sizes (its cost is per block: the pool's
size only enters through the top-k that picks each block's candidates).

Pools: a dense one shaped like sentence embeddings (``--n`` x 384) and one shaped like the
``tfidf+minilm`` features (a sparse TF-IDF-like part, 50,000 columns and ~50 non-zeros a
row, beside 384 dense columns, each part of unit length). A logistic regression fitted on
``--labelled`` random items gives the probabilities.

Usage: ``python bench/ranking.py [--n 100000] [--prefilters 40,100] [--repeats 3]
[--markdown FILE]``
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from unittest import mock

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from strategies import make_pool, make_sparse_pool, median_time

from workers import defaults
from workers.models import train_single_label
from workers.ranking import rank_pool

AL = {"uncertainty_measure": "margin", "hybrid_weights": None, "hybrid_shares": None}


def pools(n: int, classes: int) -> dict:
    dense, y = make_pool(n, 384, classes)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    words = make_sparse_pool(n, 50_000, 50, seed=1)
    both = sp.hstack([words, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
    return {f"{n:,} x 384 dense": (dense, y), f"{n:,} x (50,000 sparse + 384 dense)": (both, y)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--labelled", type=int, default=200)
    ap.add_argument("--prefilters", default=f"40,{defaults.DIVERSE_PREFILTER}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", help="append the table to this file")
    args = ap.parse_args()
    prefilters = sorted({int(p) for p in args.prefilters.split(",")})
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    emit(
        f"cpu cores: {os.cpu_count()}; head of {defaults.BATCH_AWARE_DEPTH:,} items, "
        f"diverse blocks of {defaults.DIVERSE_BLOCK}; median of {args.repeats}"
    )
    emit()
    emit("| pool | strategy | rank_pool | per block of the head |")
    emit("|---|---|---|---|")
    for name, (x, y) in pools(args.n, args.classes).items():
        rng = np.random.default_rng(0)
        labelled = rng.choice(x.shape[0], args.labelled, replace=False)
        model = train_single_label(x[labelled], [str(v) for v in y[labelled]], 0)
        pool = x[np.setdiff1d(np.arange(x.shape[0]), labelled)]
        fixed = {"rng": np.random.default_rng(1), "probabilities": model.predict_proba(pool)}
        runs = [("uncertainty", "uncertainty (margin)", None)]
        runs += [("diverse_uncertainty", f"diverse_uncertainty, prefilter {p}", p) for p in prefilters]
        blocks = defaults.BATCH_AWARE_DEPTH // defaults.DIVERSE_BLOCK
        for strategy, label, prefilter in runs:
            # the service's ranking takes the prefilter from defaults: time it as it runs there
            with mock.patch.object(defaults, "DIVERSE_PREFILTER", prefilter or defaults.DIVERSE_PREFILTER):
                seconds, _ = median_time(
                    partial(rank_pool, strategy, pool, x[labelled], AL, **fixed), args.repeats
                )
            per_block = f"{seconds / blocks:.3f} s" if prefilter else "-"
            emit(f"| {name} | {label} | {seconds:.3f} s | {per_block} |")
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
