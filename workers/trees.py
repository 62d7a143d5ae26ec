"""Tree ensembles as schema models: random forests, extra trees, histogram gradient boosting.

Numeric pools (measurements, counts, one-hot categories) often have class boundaries no
linear model draws; tree ensembles learn them from a few hundred labels and need no feature
scaling. A :class:`TreeModel` holds the fitted scikit-learn estimator and the temperature
its probabilities are calibrated with (fitted on cross-validated log-probabilities, as the
linear models' logits are).

A forest is its own committee: ``committee_proba`` splits its trees into a few sub-forests
whose disagreement BALD scores (query by committee with the KL disagreement measure, which
equals BALD's mutual information). Gradient boosting builds one sequence of trees, not a
committee, so BALD does not serve it.

The state is stored with ``skops.io``, which rebuilds an estimator from its arrays and
refuses any type outside an allowlist (``TRUSTED``): unlike pickle, loading a model never
runs code. The trees' class-probability arrays are mostly zeros, so the file is compressed.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import skops.io as sio
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.utils import check_array
from skops.io.exceptions import UntrustedTypesFoundException

from workers.exceptions import InvalidInput

FORESTS = ("random_forest", "extra_trees")
TREE_KINDS = (*FORESTS, "hist_gradient_boosting")

TREE_PARAMS: dict[str, tuple[str, ...]] = {
    **{
        kind: (
            "n_estimators",
            "max_depth",
            "min_samples_split",
            "min_samples_leaf",
            "max_features",
            "criterion",
            "class_weight",
        )
        for kind in FORESTS
    },
    "hist_gradient_boosting": (
        "learning_rate",
        "max_iter",
        "max_depth",
        "max_leaf_nodes",
        "min_samples_leaf",
        "l2_regularization",
        "class_weight",
    ),
}
"""The hyperparameters a project may set on each tree kind (scikit-learn's names)."""

PROBA_FLOOR = 1e-4
"""The least probability a tree model's calibration reads: a fully grown forest gives many
exact zeros, whose logarithm no temperature could scale."""

SPACE_DIM = 64
"""Width of a forest's leaf space (``TreeModel.space``)."""

SPACE_TREES = 32
"""Trees of a forest its leaf space is built from: the space costs trees x width adds per
item, and 32 trees already tell near items from far ones."""

WALK_ROWS = 16_384
"""Rows a forest's trees are walked over at a time (:func:`forest_walk`)."""

TRUSTED = ["sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
"""The types beyond skops' own defaults a stored tree model may contain."""


def tree_estimator(kind: str, random_state: int, params: dict | None = None):
    """The scikit-learn estimator for ``kind``, with alrank's defaults under ``params``.
    One thread: a worker runs one job at a time, and more workers use more cores."""
    if kind == "random_forest":
        est: Any = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=random_state)
    elif kind == "extra_trees":
        est = ExtraTreesClassifier(n_estimators=100, n_jobs=1, random_state=random_state)
    elif kind == "hist_gradient_boosting":
        # early stopping by default only from 10,000 rows; a schema's labels are fewer
        est = HistGradientBoostingClassifier(early_stopping=False, random_state=random_state)
    else:
        raise InvalidInput(f"unknown tree model {kind!r}; use one of {list(TREE_KINDS)}")
    return est.set_params(**params) if params else est


def fit_tree(kind: str, random_state: int, params: dict | None, x, y):
    if kind == "hist_gradient_boosting" and sp.issparse(x):
        raise InvalidInput(
            "hist_gradient_boosting needs dense features (client vectors or embeddings); "
            "TF-IDF text features are sparse: use extra_trees, random_forest or logistic_regression"
        )
    return tree_estimator(kind, random_state, params).fit(x, y)


def tree_logits(est, x) -> np.ndarray:
    """Log-probabilities, floored: what the temperature divides."""
    return floored_log(est.predict_proba(x))


def floored_log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(proba, PROBA_FLOOR))


def forest_walk(
    forest, x, space_trees: int, proba: bool = True, space: np.ndarray | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The forest's class probabilities (with ``proba``) and its leaf space
    (:meth:`TreeModel.space`, summed into ``space`` when given) from one walk of each tree:
    a tree's leaves give both its class fractions and its leaf vectors, so the first
    ``space_trees`` trees are not walked twice. The probabilities are the forest's
    ``predict_proba``: the mean of its trees' leaf fractions. Rows are walked ``WALK_ROWS``
    at a time, so what each tree adds stays in the processor's cache (a fifth faster at a
    million rows than all rows at once)."""
    x = check_array(x, dtype=np.float32, accept_sparse="csr")
    trees = forest.estimators_ if proba else forest.estimators_[:space_trees]
    rng = np.random.default_rng(0)
    codes = [
        rng.standard_normal((t.tree_.node_count, SPACE_DIM), dtype=np.float32) for t in trees[:space_trees]
    ]
    if space is None:
        space = np.zeros((x.shape[0], SPACE_DIM), dtype=np.float32)
    else:
        space[:] = 0
    total = np.zeros((x.shape[0], forest.n_classes_)) if proba else None
    for start in range(0, x.shape[0], WALK_ROWS):
        rows = slice(start, start + WALK_ROWS)
        for t, tree in enumerate(trees):
            leaves = tree.apply(x[rows], check_input=False)
            if total is not None:
                total[rows] += tree.tree_.value[leaves, 0, :]
            if t < len(codes):
                space[rows] += codes[t][leaves]
    space /= np.sqrt(len(codes))
    return (None if total is None else total / len(trees)), space


@dataclass
class TreeModel:
    """A fitted tree ensemble over ``classes``; probabilities via softmax(log p / T)."""

    classes: list[str]
    estimator: Any
    kind: str
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    multi_label: bool = False

    def predict_proba(self, x) -> np.ndarray:
        return self._softmax(tree_logits(self.estimator, x))

    def _softmax(self, z: np.ndarray) -> np.ndarray:
        z = z / self.temperature
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def proba_and_space(self, x, space: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``predict_proba(x)`` and ``space(x)``; boosting's space is its log-probabilities,
        so its trees are walked once for both."""
        if self.has_committee:
            proba, space = forest_walk(self.estimator, x, SPACE_TREES, space=space)
            assert proba is not None
            return self._softmax(floored_log(proba)), space
        z = tree_logits(self.estimator, x)
        return self._softmax(z), z.astype(np.float32)

    @property
    def has_committee(self) -> bool:
        return self.kind in FORESTS

    def committee_proba(self, x, members: int) -> np.ndarray:
        """(members, items, classes): the class probabilities of ``members`` sub-forests,
        the trees dealt out to them in turn. Each sub-forest averages its trees as the
        forest does, so the committee's mean is the forest's own probability."""
        if not self.has_committee:
            raise InvalidInput(f"{self.kind} has no committee of its own")
        trees = self.estimator.estimators_
        members = max(2, min(members, len(trees)))
        out = np.zeros((members, x.shape[0], len(self.classes)))
        for t, tree in enumerate(trees):
            out[t % members] += tree.predict_proba(x)
        out /= np.bincount(np.arange(len(trees)) % members)[:, None, None]
        return out

    def space(self, x) -> np.ndarray:
        """The space diversity and BADGE measure distances in for this model: a forest's
        leaves, or for boosting its log-probabilities.

        A forest's view of two items is which leaf each tree puts them in (items sharing
        most leaves are the forest's near neighbours, Breiman's proximity). Each (tree,
        leaf) gets a fixed random vector of ``SPACE_DIM`` numbers and an item is the sum
        of its leaves' vectors over sqrt(trees), over the first ``SPACE_TREES`` trees:
        inner products then estimate the share of those trees that put two items in one
        leaf (a random projection of the leaf one-hot matrix). Feature distances would
        instead be ruled by whichever standardised column is widest, such as a rare one-hot
        category, which no tree needs to split on."""
        if not self.has_committee:
            return tree_logits(self.estimator, x).astype(np.float32)
        return forest_walk(self.estimator, x, SPACE_TREES, proba=False)[1]

    def to_bytes(self) -> bytes:
        blob = sio.dumps(self.estimator, compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        buf = io.BytesIO()
        np.savez(
            buf,
            classes=np.array(self.classes, dtype=np.str_),
            kind=np.array(self.kind),
            temperature=np.array(self.temperature),
            estimator=np.frombuffer(blob, dtype=np.uint8),
        )
        return buf.getvalue()

    @classmethod
    def from_arrays(cls, z) -> TreeModel:
        try:
            # skops audits every type before it builds anything: one parse, not two
            estimator = sio.loads(z["estimator"].tobytes(), trusted=TRUSTED)
        except UntrustedTypesFoundException as e:
            found = str(e).splitlines()[0]
            raise InvalidInput(f"a stored tree model holds types alrank does not load: {found}") from e
        return cls(
            classes=[str(c) for c in z["classes"]],
            estimator=estimator,
            kind=str(z["kind"]),
            temperature=float(z["temperature"]),
        )
