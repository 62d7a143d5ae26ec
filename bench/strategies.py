"""Query-strategy speed, against the nearest peer implementations, on identical inputs.

For each strategy it prints the median time over ``--repeats`` runs of alrank's engine
and, in the same run, of the peers (scikit-activeml, modAL: ``pip install -e '.[bench]'``),
with the ratio, and checks that selections agree where the definitions agree.

Inputs: a pool of ``--n`` x ``--dim`` float32 features drawn from a Gaussian mixture with
one component per class (component means N(0, 0.15^2), unit noise: classes overlap, so
the model is unsure about many items, and in 256 dimensions nearly every pair of points is
about equally far apart, the hard case for geometric pruning);
a logistic regression fitted on ``--labelled`` random items gives the probabilities, and
five bootstrap replicates of it the BALD ensemble. alrank's figures are for the strategy
given those arrays; the peers predict inside their query call, so the table also gives
alrank's time including the same ``predict_proba`` calls ("with predict"), and the ratio
is taken on that like-for-like figure.

``--kinds`` times each model kind instead, on a numeric pool of ``--n`` items (64 features,
``--classes`` classes of two blobs each) with 1,000 labels: training as a retrain does (the
fit with its calibration, then the served refit), probabilities over the pool, and the
default strategy's ranking of it in the model's space (a forest's leaves:
``TreeModel.space``), and BALD's committee for the forests, beside logistic
regression, the linear model every kind is measured against. ``auto``'s retrain trains the
kind its comparison chose; the comparison itself, which runs once the ranking is out, is
timed apart.

``--scale`` adds alrank-only runs at 1,000,000 rows (time and peak memory against the
feature matrix's size) and on a sparse TF-IDF-like pool (100,000 x 50,000, ~50 non-zeros
a row, Zipf-distributed columns).

Usage: ``python bench/strategies.py [--n 100000] [--dim 256] [--classes 10] [--batch 100]
[--repeats 5] [--no-peers] [--scale] [--kinds [--only KIND,...]] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from workers import defaults
from workers.ensembles import train_ensemble
from workers.models import aligned_proba, compare_kinds, train_single_label
from workers.strategies import select

warnings.filterwarnings("ignore")


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def make_pool(n: int, dim: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = (0.15 * rng.normal(size=(classes, dim))).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = means[y]
    x += rng.standard_normal((n, dim), dtype=np.float32)
    return x, y


def make_sparse_pool(n: int, width: int, nnz_per_row: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, width + 1)
    p = 1.0 / ranks
    p /= p.sum()
    cols = rng.choice(width, size=n * nnz_per_row, p=p)
    rows = np.repeat(np.arange(n), nnz_per_row)
    vals = rng.random(n * nnz_per_row).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, width), dtype=np.float32)
    m.sum_duplicates()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m, dtype=np.float32)


class Fixture:
    """The shared inputs: pool, labelled rows, model, ensemble, their probabilities."""

    def __init__(self, n: int, dim: int, classes: int, n_labelled: int, sparse_width: int = 0) -> None:
        rng = np.random.default_rng(1)
        if sparse_width:
            self.x = make_sparse_pool(n, sparse_width, 50)
            yy = np.asarray(self.x[:, :classes].argmax(axis=1)).ravel()
            self.y = yy
        else:
            self.x, self.y = make_pool(n, dim, classes)
        self.labelled = np.sort(rng.choice(n, n_labelled, replace=False))
        self.unlabelled = np.setdiff1d(np.arange(n), self.labelled)
        self.x_lab = self.x[self.labelled]
        self.x_unl = self.x[self.unlabelled]
        y_lab = [str(v) for v in self.y[self.labelled]]
        self.model = train_single_label(self.x_lab, y_lab, 0)
        self.classes = self.model.classes
        self.t_predict, self.proba = median_time(lambda: self.model.predict_proba(self.x_unl), 3)
        self.members = train_ensemble(self.x_lab, y_lab, 5, 0.8, 0)
        self.t_predict_members, self.member_proba = median_time(
            lambda: np.stack([aligned_proba(m, self.x_unl, self.classes) for m in self.members]), 3
        )


OURS = {
    "uncertainty (margin)": ("uncertainty", {"measure": "margin"}, "predict"),
    "uncertainty (entropy)": ("uncertainty", {"measure": "entropy"}, "predict"),
    "uncertainty (least conf.)": ("uncertainty", {"measure": "least_confidence"}, "predict"),
    f"diverse uncertainty ({defaults.DIVERSE_PREFILTER}x batch)": ("diverse_uncertainty", {}, "predict"),
    "diversity (k-center)": ("diversity", {}, None),
    "badge": ("badge", {}, "predict"),
    "bald, 5 members (scoring)": ("bald", {}, "members"),
    "hybrid (0.7 unc. + 0.3 div.)": (
        "hybrid",
        {"hybrid_weights": {"uncertainty": 0.7, "diversity": 0.3}},
        "predict",
    ),
    "hybrid (70% badge/20% div./10% rnd)": (
        "hybrid",
        {"hybrid_shares": {"badge": 0.7, "diversity": 0.2, "random": 0.1}},
        "predict",
    ),
}


def run_ours(f: Fixture, name: str, batch: int, repeats: int, with_memory: bool = False) -> dict:
    strategy, params, predict = OURS[name]

    def call():
        return select(
            strategy,
            batch_size=batch,
            probabilities=f.proba,
            member_probabilities=f.member_proba,
            features=f.x_unl,
            labelled_features=f.x_lab,
            random_state=0,
            params=params,
        )

    seconds, sel = median_time(call, repeats)
    extra = {"predict": f.t_predict, "members": f.t_predict_members, None: 0.0}[predict]
    row = {"strategy": name, "seconds": seconds, "with_predict": seconds + extra, "selection": sel}
    if with_memory:
        gc.collect()
        tracemalloc.start()
        call()
        row["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return row


def run_peers(f: Fixture, batch: int, repeats: int, ours: dict) -> list[dict]:
    from modAL.batch import uncertainty_batch_sampling
    from modAL.models import ActiveLearner
    from modAL.uncertainty import margin_sampling
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import Badge, CoreSet, GreedyBALD, UncertaintySampling
    from skactiveml.utils import MISSING_LABEL

    classes = list(range(len(f.classes)))
    index = {c: i for i, c in enumerate(f.classes)}
    y = np.full(f.x.shape[0], MISSING_LABEL)
    y[f.labelled] = [index[str(v)] for v in f.y[f.labelled]]
    x = f.x

    def load_into(est: LogisticRegression, model) -> None:
        """Give a scikit-learn estimator alrank's model: softmax((Wx + b) / T) is the
        softmax of (W/T)x + b/T, so the peers score exactly the same probabilities."""
        rows = [index[c] for c in model.classes]
        coef = np.full((len(classes), x.shape[1]), 0.0)
        icpt = np.full(len(classes), -1e9)  # a class the model never saw: probability 0
        coef[rows] = model.coef / model.temperature
        icpt[rows] = model.intercept / model.temperature
        est.coef_, est.intercept_, est.classes_ = coef, icpt, np.array(classes)

    clf = SklearnClassifier(LogisticRegression(max_iter=1000), classes=classes, random_state=0)
    clf.fit(f.x_lab, y[f.labelled])
    load_into(clf.estimator_, f.model)
    members = []
    for m in f.members:
        member = SklearnClassifier(LogisticRegression(max_iter=1000), classes=classes, random_state=0)
        member.fit(f.x_lab, y[f.labelled])
        load_into(member.estimator_, m)
        members.append(member)
    learner = ActiveLearner(
        estimator=LogisticRegression(max_iter=1000), X_training=f.x_lab, y_training=y[f.labelled]
    )
    load_into(learner.estimator, f.model)

    def agree_sets(ours_idx, theirs_idx) -> str:
        a, b = set(map(int, ours_idx)), set(map(int, theirs_idx))
        return f"{len(a & b)}/{len(a)} same items"

    def to_pool(out):  # modAL answers (indices, rows) or indices, over X_unl
        idx = out[0] if isinstance(out, tuple) else out
        return [int(i) for i in np.asarray(idx).ravel()]

    peers: list[dict] = []

    def peer(name, ours_name, fn, agree, slow=False):
        seconds, out = median_time(fn, 1 if slow else repeats)
        mine = ours[ours_name]
        peers.append(
            {
                "peer": name,
                "vs": ours_name,
                "seconds": seconds,
                "ratio": seconds / mine["with_predict"],
                "agreement": agree(out, mine["selection"]),
            }
        )
        print(
            f"  {name:<42} {seconds:8.3f} s   x{seconds / mine['with_predict']:7.1f} slower than alrank"
            f"   {peers[-1]['agreement']}",
            flush=True,
        )

    unl_pos = {int(r): i for i, r in enumerate(f.unlabelled)}

    def from_skal(idx):
        return [unl_pos[int(i)] for i in idx]

    peer(
        "scikit-activeml UncertaintySampling",
        "uncertainty (margin)",
        lambda: UncertaintySampling(method="margin_sampling", random_state=0).query(
            x, y, clf=clf, fit_clf=False, batch_size=batch
        ),
        lambda out, sel: agree_sets(sel.indices, from_skal(out)),
    )
    peer(
        "modAL margin_sampling",
        "uncertainty (margin)",
        lambda: margin_sampling(learner, f.x_unl, n_instances=batch),
        lambda out, sel: agree_sets(sel.indices, to_pool(out)),
    )
    peer(
        "scikit-activeml CoreSet",
        "diversity (k-center)",
        lambda: CoreSet(random_state=0).query(x, y, batch_size=batch),
        lambda out, sel: (
            f"{agree_sets(sel.indices, from_skal(out))}, same order: {list(sel.indices) == from_skal(out)}"
        ),
        slow=True,
    )
    peer(
        "scikit-activeml Badge",
        "badge",
        lambda: Badge(random_state=0).query(x, y, clf=clf, fit_clf=False, batch_size=batch),
        lambda out, sel: (
            f"first pick (largest gradient) same: {int(sel.indices[0]) == from_skal(out)[0]}; "
            "later picks are random draws"
        ),
        slow=True,
    )
    peer(
        "scikit-activeml GreedyBALD",
        "bald, 5 members (scoring)",
        lambda: GreedyBALD(random_state=0).query(
            x, y, ensemble=members, fit_ensemble=False, batch_size=batch
        ),
        lambda out, sel: agree_sets(sel.indices, from_skal(out)),
    )
    peer(
        "modAL uncertainty_batch_sampling (ranked)",
        "hybrid (0.7 unc. + 0.3 div.)",
        lambda: uncertainty_batch_sampling(learner, f.x_unl, n_instances=batch),
        lambda out, sel: "different blend (Cardoso et al.'s alpha), no agreement expected",
        slow=True,
    )
    return peers


KINDS = ("logistic_regression", "svc", "random_forest", "extra_trees", "hist_gradient_boosting", "auto")


def kind_costs(
    n: int, dim: int, classes: int, labelled: int, batch: int, repeats: int, emit, kinds=KINDS
) -> None:
    """Training plus ranking time per model kind at ``n`` items."""
    from sklearn.datasets import make_classification

    from workers.ranking import rank_pool
    from workers.settings import AL_DEFAULTS, resolve_active_learning

    x, y = make_classification(
        n, dim, n_informative=min(dim, 12), n_classes=classes, n_clusters_per_class=2, random_state=0
    )
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    rows = np.random.default_rng(0).choice(n, labelled, replace=False)
    y_lab = [str(v) for v in y[rows]]
    schemas = [{"name": "s", "labels": sorted(set(y_lab)), "multi_label": False}]
    al = resolve_active_learning(schemas, {**AL_DEFAULTS, "classifier_name": "logistic_regression"})
    emit(
        f"### Model kinds: {n:,} x {dim} float32, {classes} classes, {labelled:,} labels, "
        f"ranking by {al['query_strategy']} (depth {defaults.BATCH_AWARE_DEPTH}); median of {repeats}"
    )
    emit()
    strategy = al["query_strategy"]
    emit("| kind | train | probabilities and space | rank | train + rank | BALD committee | state |")
    emit("|---|---|---|---|---|---|---|")
    compared = ""
    for kind in kinds:
        trained = kind
        if kind == "auto":
            pool = x[np.linspace(0, n - 1, 2048).astype(np.int64)]
            t_cmp, choice = median_time(
                lambda p=pool: compare_kinds(x[rows], y_lab, 0, None, None, p, n - labelled), repeats
            )
            trained = choice["chosen"]
            compared = (
                f"auto's comparison, once the ranking is out: {t_cmp:.2f} s; chose {trained}; "
                f"estimated retrain seconds {choice['retrain_seconds']}; too slow: {choice['too_slow']}"
            )

        def retrain(k=trained):
            model = train_single_label(x[rows], y_lab, 0, k)
            train_single_label(x[rows], y_lab, 0, k, calibrate=False)  # the served refit
            return model

        t_train, model = median_time(retrain, repeats)
        t_proba, (proba, space) = median_time(lambda m=model: m.proba_and_space(x), repeats)
        t_rank, _ = median_time(
            lambda m=model, p=proba, s=space: rank_pool(
                strategy, s, m.space(x[rows]), al, np.random.default_rng(0), p
            ),
            repeats,
        )
        committee = "refused (422)" if kind == "hist_gradient_boosting" else "bootstrap"
        if model.has_committee:
            t_comm, _ = median_time(lambda m=model: m.committee_proba(x, 5), repeats)
            committee = f"{t_comm:.2f} s"
        chose = f" ({model.kind})" if kind == "auto" else ""
        total = t_train + t_proba + t_rank
        emit(
            f"| {kind}{chose} | {t_train:.2f} s | {t_proba:.2f} s | {t_rank:.2f} s | {total:.2f} s | "
            f"{committee} | {len(model.to_bytes()) / 2**20:.1f} MiB |"
        )
    if compared:
        emit()
        emit(compared)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--labelled", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--scale", action="store_true", help="also 1M rows and a sparse TF-IDF-like pool")
    ap.add_argument("--markdown", help="append the tables to this file")
    ap.add_argument("--kinds", action="store_true", help="time each model kind instead")
    ap.add_argument("--only", default=",".join(KINDS), help="--kinds: the kinds to time")
    args = ap.parse_args()
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    print(f"cpu cores: {os.cpu_count()}; numpy {np.__version__}", flush=True)
    if args.kinds:
        kind_costs(args.n, 64, args.classes, 1000, args.batch, args.repeats, emit, args.only.split(","))
        if args.markdown:
            with open(args.markdown, "a") as out:
                out.write("\n".join(lines) + "\n")
        return
    f = Fixture(args.n, args.dim, args.classes, args.labelled)
    emit(
        f"### {args.n:,} x {args.dim} float32, {args.classes} classes, batch {args.batch}, "
        f"{args.labelled} labelled; median of {args.repeats}"
    )
    emit()
    emit(f"predict_proba: {f.t_predict * 1000:.1f} ms; 5 members: {f.t_predict_members * 1000:.1f} ms")
    emit()
    emit("| strategy | alrank | alrank with predict |")
    emit("|---|---|---|")
    ours = {}
    for name in OURS:
        row = run_ours(f, name, args.batch, args.repeats)
        ours[name] = row
        emit(f"| {name} | {row['seconds'] * 1000:.1f} ms | {row['with_predict'] * 1000:.1f} ms |")
    if not args.no_peers:
        emit()
        print("peers (same inputs, same run):", flush=True)
        peers = run_peers(f, args.batch, max(1, min(args.repeats, 3)), ours)
        emit("| peer | vs alrank | peer | ratio | agreement |")
        emit("|---|---|---|---|---|")
        for p in peers:
            emit(f"| {p['peer']} | {p['vs']} | {p['seconds']:.3f} s | {p['ratio']:.1f}x | {p['agreement']} |")
    del f
    gc.collect()

    if args.scale:
        for n in (1_000_000,):
            g = Fixture(n, args.dim, args.classes, args.labelled)
            matrix = g.x_unl.nbytes
            emit()
            emit(f"### {n:,} x {args.dim} float32 (feature matrix {matrix / 2**20:.0f} MiB); median of 3")
            emit()
            emit("| strategy | alrank | per 100k rows | peak extra memory / feature matrix |")
            emit("|---|---|---|---|")
            for name in OURS:
                row = run_ours(g, name, args.batch, 3, with_memory=True)
                emit(
                    f"| {name} | {row['seconds']:.3f} s | {row['seconds'] / (n / 100_000) * 1000:.1f} ms | "
                    f"{row['peak_bytes'] / matrix:.2f} |"
                )
            del g
            gc.collect()
        h = Fixture(100_000, 0, args.classes, args.labelled, sparse_width=50_000)
        emit()
        emit(f"### sparse 100,000 x 50,000 CSR, {h.x.nnz / h.x.shape[0]:.0f} non-zeros a row; median of 3")
        emit()
        emit("| strategy | alrank |")
        emit("|---|---|")
        for name in OURS:
            row = run_ours(h, name, args.batch, 3)
            emit(f"| {name} | {row['seconds']:.3f} s |")
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
