"""The schema model: a linear model with temperature-calibrated probabilities.

Model state is plain numpy arrays (coefficients, intercepts, class names, temperature)
stored as an ``.npz`` read with ``allow_pickle=False``: loading a model never runs code.
``svc`` is an RBF kernel machine approximated the Nystroem way (Williams & Seeger 2001):
the features are mapped onto kernel values against some training rows, and a linear model
learns on the map; its state is those rows, the map's normalisation and the linear model.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.model_selection import StratifiedKFold

from workers import defaults
from workers.calibration import as_two_columns, fit_temperature
from workers.exceptions import InvalidInput, NotTrainable
from workers.model_choice import choose, compare
from workers.model_kinds import (
    CLASSIFIER_PARAMS,
    NAIVE_BAYES,
    SVC_COMPONENTS,
    estimator,
    scale_gamma,
)
from workers.trees import TREE_KINDS, TreeModel, fit_tree, tree_logits


@dataclass
class LinearModel:
    """A linear classifier's learned state; probabilities via softmax (or sigmoid) of z / T."""

    classes: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    multi_label: bool = False
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    kind: str = "logistic_regression"

    @property
    def has_committee(self) -> bool:
        """Whether the model is a committee of its own (a forest); a linear model is not:
        BALD trains bootstrap replicas of it (``train_ensemble``)."""
        return False

    def committee_proba(self, x, members: int) -> np.ndarray:
        raise InvalidInput(f"{self.kind} has no committee of its own; train bootstrap replicas")

    def space(self, x):
        """The space diversity and BADGE measure distances in: a linear model's own
        features (its weights are a direction in them)."""
        return x

    def proba_and_space(self, x, space: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """The probabilities, and the space distances are measured in: the rows themselves
        (``space``, where a model with a space of its own would write it, is not used)."""
        return self.predict_proba(x), x

    def decision(self, x) -> np.ndarray:
        z = x @ self.coef.T
        return np.asarray(z, dtype=np.float64) + self.intercept

    def predict_proba(self, x) -> np.ndarray:
        z = self.decision(x)
        z /= self.temperature
        if self.multi_label:
            return expit(z, out=z)
        # softmax in place: this runs over the whole pool at every retrain
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def arrays(self) -> dict[str, Any]:
        """The state, as the arrays stored."""
        return {
            "classes": np.array(self.classes, dtype=np.str_),
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float64),
            "multi_label": np.array(self.multi_label),
            "temperature": np.array(self.temperature),
            "kind": np.array(self.kind),
        }

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **self.arrays())
        return buf.getvalue()

    @classmethod
    def from_arrays(cls, z) -> LinearModel:
        """A stored linear or kernel model (a kernel model is a linear model on its map)."""
        linear = LinearModel(
            classes=[str(c) for c in z["classes"]],
            coef=z["coef"],
            intercept=z["intercept"],
            multi_label=bool(z["multi_label"]),
            temperature=float(z["temperature"]),
            # states stored before model kinds were recorded are linear
            kind=str(z["kind"]) if "kind" in z else "logistic_regression",
        )
        if "kernel_rows" not in z:
            return linear
        gamma = float(z["kernel_gamma"])
        return KernelModel.around(linear, z["kernel_rows"], z["kernel_normalization"], gamma)


Model = LinearModel | TreeModel
"""A schema model of any kind: ``predict_proba``, ``classes``, ``temperature``, ``kind``."""


def load_model(data: bytes) -> Model:
    """A stored model of any kind, as ``to_bytes`` wrote it."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        if "estimator" in z:
            return TreeModel.from_arrays(z)
        return LinearModel.from_arrays(z)


KERNEL_CHUNK = 8192
"""Rows mapped onto the kernel at a time: a pool of a million against 300 training rows
would otherwise hold 2.4 GB of kernel values at once."""


@dataclass
class KernelModel(LinearModel):
    """A linear model on the Nystroem map of an RBF kernel: phi(x) = k(x, rows) @ N.T."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    normalization: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    gamma: float = 1.0

    @classmethod
    def around(cls, linear: LinearModel, rows, normalization, gamma: float) -> KernelModel:
        return cls(
            linear.classes,
            linear.coef,
            linear.intercept,
            linear.multi_label,
            linear.temperature,
            linear.metrics,
            linear.kind,
            rows=np.asarray(rows, dtype=np.float32),
            normalization=np.asarray(normalization, dtype=np.float64),
            gamma=gamma,
        )

    def transform(self, x) -> np.ndarray:
        from sklearn.metrics.pairwise import rbf_kernel

        out = np.empty((x.shape[0], self.normalization.shape[0]))
        for start in range(0, x.shape[0], KERNEL_CHUNK):
            block = x[start : start + KERNEL_CHUNK]
            out[start : start + block.shape[0]] = (
                rbf_kernel(block, self.rows, gamma=self.gamma) @ self.normalization.T
            )
        return out

    def decision(self, x) -> np.ndarray:
        return super().decision(self.transform(x))

    def arrays(self) -> dict[str, Any]:
        return {
            **super().arrays(),
            "kernel_rows": self.rows,
            "kernel_normalization": self.normalization,
            "kernel_gamma": np.array(self.gamma),
        }


def _fit(classifier: str, random_state: int, params: dict | None, x, y):
    with warnings.catch_warnings():
        # many classes among the first labels are a classification all the same
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        return _fit_kind(classifier, random_state, params, x, y)


def _fit_kind(classifier: str, random_state: int, params: dict | None, x, y):
    if classifier in TREE_KINDS:
        return fit_tree(classifier, random_state, params, x, y)
    est = estimator(classifier, random_state, params)
    if classifier == "svc":
        kernel = est.named_steps["kernel"]
        if kernel.gamma == "scale":
            kernel.set_params(gamma=scale_gamma(x))
        elif kernel.gamma == "auto":
            kernel.set_params(gamma=1.0 / x.shape[1])
        kernel.set_params(n_components=min(SVC_COMPONENTS, x.shape[0]))
    return est.fit(x, y)


def _linear_state(est, classifier: str) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) whose x @ coef.T + intercept are the estimator's logits."""
    if classifier == "complement_nb":
        return est.feature_log_prob_, np.zeros(est.feature_log_prob_.shape[0])
    if classifier == "multinomial_nb":
        # its joint log-likelihood, x @ log P(feature | class) + log P(class), is linear in x
        return est.feature_log_prob_, est.class_log_prior_
    if classifier == "svc":
        return est.named_steps["linear"].coef_, est.named_steps["linear"].intercept_
    return est.coef_, est.intercept_


def _logits(est, classifier: str, x) -> np.ndarray:
    if classifier in TREE_KINDS:
        return tree_logits(est, x)
    if classifier in NAIVE_BAYES:
        return est.predict_log_proba(x)
    z = est.decision_function(x)
    return z.reshape(z.shape[0], -1)


def _calibration_logits(est, classifier: str, x) -> np.ndarray:
    """Logits with a column per class, as the temperature is fitted on."""
    return as_two_columns(_logits(est, classifier, x))


def train_single_label(
    x,
    y: list[str],
    random_state: int = 0,
    classifier: str = "logistic_regression",
    params: dict | None = None,
    calibrate: bool = True,
) -> Model:
    """A model of kind ``classifier`` over the classes present in ``y``, its probabilities
    calibrated by a temperature fitted on cross-validated logits once every class has a few
    labels (unless ``calibrate`` is off). ``params`` sets the classifier's hyperparameters;
    ``auto`` first chooses the kind by cross-validation (``workers.model_choice``)."""
    classes = sorted(set(y))
    if len(classes) < 2:
        raise NotTrainable("training needs labels of at least two classes")
    index = {c: i for i, c in enumerate(classes)}
    yi = np.array([index[v] for v in y])
    choice = held_out = None
    if classifier == "auto":
        given, incumbent = (params or {}).get("candidates"), (params or {}).get("incumbent")
        classifier, choice, held_out = choose(
            x, yi, random_state, _fit, _calibration_logits, given, incumbent
        )
        params = None
    if classifier in NAIVE_BAYES and _has_negative(x):
        raise InvalidInput(
            f"{classifier} needs non-negative features (TF-IDF); "
            "use logistic_regression or linear_svm with embeddings or vectors"
        )
    n_features = x.shape[1]
    x, columns = _compact(x, classifier)
    est = _fit(classifier, random_state, params, x, yi)
    model = _model(est, classifier, classes, columns, n_features)
    if choice is not None:
        model.metrics["model_choice"] = choice

    counts = np.bincount(yi, minlength=len(classes))
    if calibrate and held_out is not None:
        # the comparison's out-of-fold logits: no need to fit the folds again
        model.temperature = fit_temperature(held_out, yi)
        model.metrics["cv_accuracy"] = float((held_out.argmax(axis=1) == yi).mean())
    elif calibrate and counts.min() >= defaults.CALIBRATION_MIN_PER_CLASS:
        folds = StratifiedKFold(
            n_splits=min(defaults.CALIBRATION_FOLDS, int(counts.min())),
            shuffle=True,
            random_state=random_state,
        )
        z = np.zeros((len(yi), 0))
        for train, held in folds.split(np.zeros(len(yi)), yi):
            fold = _fit(classifier, random_state, params, x[train], yi[train])
            zf = _calibration_logits(fold, classifier, x[held])
            if z.shape[1] == 0:
                z = np.zeros((len(yi), zf.shape[1]))
            z[held] = zf
        model.temperature = fit_temperature(z, yi)
        model.metrics["cv_accuracy"] = float((z.argmax(axis=1) == yi).mean())
    return model


def compare_kinds(
    x, y: list[str], random_state: int, given, incumbent, pool, pool_size: int, drawn=None
) -> dict:
    """``auto``'s comparison of kinds (``workers.model_choice.compare``): its record."""
    return compare(x, y, random_state, _fit, _calibration_logits, given, incumbent, pool, pool_size, drawn)


def _model(est, classifier: str, classes: list[str], columns: np.ndarray | None, n_features: int) -> Model:
    """The fitted estimator as the model alrank keeps: trees as they are, linear models as
    their weights (on the kernel's map for ``svc``)."""
    if classifier in TREE_KINDS:
        return TreeModel(classes, est, classifier)
    coef, intercept = _linear_state(est, classifier)
    coef = _expand(coef, columns, n_features)
    if coef.shape[0] == 1:
        coef = np.vstack([-coef / 2.0, coef / 2.0])
        intercept = np.array([-intercept[0] / 2.0, intercept[0] / 2.0])
    model = LinearModel(
        classes, np.asarray(coef, dtype=np.float32), np.asarray(intercept, dtype=np.float64), kind=classifier
    )
    if classifier == "svc":
        kernel = est.named_steps["kernel"]
        rows = kernel.components_.toarray() if sp.issparse(kernel.components_) else kernel.components_
        model = KernelModel.around(model, rows, kernel.normalization_, float(kernel.gamma))
    return model


def _compact(x, classifier: str):
    """The labelled rows restricted to the columns where any of them is non-zero.

    With an L2 penalty, a column that is zero in every training row gets a zero weight at
    the optimum, so dropping it changes nothing but the solver's work: a TF-IDF pool has
    tens of thousands of columns, a few hundred labelled texts touch a few thousand.
    (Naive Bayes smooths every column, and an RBF kernel measures distances over every
    column, so they keep them all; trees ignore empty columns by themselves.)
    """
    if not sp.issparse(x) or classifier in (*NAIVE_BAYES, "svc", *TREE_KINDS):
        return x, None
    x = sp.csr_matrix(x)
    columns = np.unique(x.indices)
    if len(columns) == x.shape[1]:
        return x, None
    return x[:, columns], columns


def _expand(coef: np.ndarray, columns: np.ndarray | None, n_features: int) -> np.ndarray:
    if columns is None:
        return coef
    full = np.zeros((coef.shape[0], n_features), dtype=coef.dtype)
    full[:, columns] = coef
    return full


def _has_negative(x) -> bool:
    data = x.data if sp.issparse(x) else np.asarray(x)
    return bool(data.size) and float(data.min()) < 0


def train_multi_label(
    x, y: list[list[str]], labels: list[str], random_state: int = 0, params: dict | None = None
) -> LinearModel:
    """One logistic regression per label; a label seen with one value only gets its prevalence.
    Of ``params``, the ones logistic regression takes apply (multi-label schemas are linear)."""
    allowed = CLASSIFIER_PARAMS["logistic_regression"]
    linear_params = {k: v for k, v in (params or {}).items() if k in allowed}
    n_features = x.shape[1]
    coef = np.zeros((len(labels), n_features), dtype=np.float32)
    intercept = np.zeros(len(labels))
    trained = 0
    x, columns = _compact(x, "logistic_regression")
    for j, label in enumerate(labels):
        t = np.array([label in v for v in y], dtype=int)
        if 0 < t.sum() < len(t):
            clf = estimator("logistic_regression", random_state, linear_params).fit(x, t)
            coef[j] = _expand(clf.coef_, columns, n_features)[0]
            intercept[j] = clf.intercept_[0]
            trained += 1
        else:
            prevalence = np.clip(t.mean(), 1e-3, 1 - 1e-3)
            intercept[j] = np.log(prevalence / (1 - prevalence))
    if trained == 0:
        raise NotTrainable("training needs at least one label seen both present and absent")
    return LinearModel(list(labels), coef, intercept, multi_label=True)


def predictions(model: Model, proba: np.ndarray) -> tuple[list, np.ndarray]:
    """Pre-annotations: the predicted label(s) of each row and the model's confidence in it."""
    if model.multi_label:
        chosen = proba >= 0.5
        preds = [[model.classes[j] for j in np.flatnonzero(row)] for row in chosen]
        conf = np.where(chosen, proba, 1.0 - proba).min(axis=1, initial=1.0)
        return preds, conf
    top = proba.argmax(axis=1)
    return [model.classes[j] for j in top], proba[np.arange(len(top)), top]


def aligned_proba(model: Model, x, classes: list[str]) -> np.ndarray:
    """The model's probabilities on the full class list (0 for classes it never saw)."""
    proba = model.predict_proba(x)
    out = np.zeros((proba.shape[0], len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes):
        out[:, index[c]] = proba[:, j]
    return out
