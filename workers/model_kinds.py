"""The kinds of schema model and how each is built: their names (``CLASSIFIERS``), the
hyperparameters a project may set on each (``CLASSIFIER_PARAMS``) and the scikit-learn
estimator each starts from (``estimator``). Tree ensembles are built in ``workers.trees``;
``workers.models`` fits them and keeps what they learned."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB, MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from workers import defaults
from workers.exceptions import InvalidInput
from workers.trees import TREE_KINDS, TREE_PARAMS

CLASSIFIERS: tuple[str, ...] = (
    "logistic_regression",
    "linear_svm",
    "complement_nb",
    "multinomial_nb",
    "svc",
    *TREE_KINDS,
    "auto",
)
"""Schema models a project or a simulation may choose: linear (naive Bayes in log space),
linear on an RBF kernel's map (``svc``), tree ensembles (``workers.trees``), or ``auto``:
the best of a few by cross-validation on the labels (``workers.model_choice``)."""

SVC_COMPONENTS = 300
"""Training rows ``svc``'s kernel map is built on (all of them below that): the map's
width. Kernel values against 300 rows approximate an RBF SVM closely on pools of the
shared sets' size and cost 300 columns of logistic regression."""

NAIVE_BAYES = ("complement_nb", "multinomial_nb")
"""The naive Bayes models: they count features, so they need non-negative ones (TF-IDF)
and keep every column."""


def logreg(random_state: int) -> LogisticRegression:
    return LogisticRegression(
        C=defaults.LINEAR_C, class_weight=defaults.CLASS_WEIGHT, max_iter=1000, random_state=random_state
    )


CLASSIFIER_PARAMS: dict[str, tuple[str, ...]] = {
    "logistic_regression": ("C", "max_iter", "tol", "class_weight"),
    "linear_svm": ("C", "max_iter", "tol", "class_weight"),
    "complement_nb": ("alpha", "norm"),
    "multinomial_nb": ("alpha", "fit_prior"),
    "svc": ("C", "gamma", "class_weight", "max_iter", "tol"),
    **TREE_PARAMS,
    "auto": ("candidates",),
}
"""The hyperparameters a project may set on each classifier (``classifier_params``, what
Potato calls ``classifier_kwargs``); the others are alrank's to choose."""


def estimator(classifier: str, random_state: int, params: dict | None = None):
    if classifier == "logistic_regression":
        est = logreg(random_state)
    elif classifier == "linear_svm":
        # liblinear's default 1,000 iterations fall short at C=10 on some whole pools
        est = LinearSVC(
            C=defaults.LINEAR_C,
            class_weight=defaults.CLASS_WEIGHT,
            max_iter=10_000,
            random_state=random_state,
        )
    elif classifier == "complement_nb":
        est = ComplementNB()
    elif classifier == "multinomial_nb":
        est = MultinomialNB()
    elif classifier == "svc":
        return kernel_pipeline(random_state, params)
    else:
        raise InvalidInput(f"unknown classifier {classifier!r}; use one of {list(CLASSIFIERS)}")
    return est.set_params(**params) if params else est


def kernel_pipeline(random_state: int, params: dict | None) -> Pipeline:
    """The Nystroem map of an RBF kernel, then logistic regression on it (``svc``). ``gamma``
    may be a number, "scale" or "auto", as scikit-learn's SVC reads them; they are worked
    out from the training rows when the pipeline is fitted (``_fit``)."""
    params = dict(params or {})
    gamma = params.pop("gamma", "scale")
    linear = LogisticRegression(
        C=1.0, class_weight=defaults.CLASS_WEIGHT, max_iter=2000, random_state=random_state
    ).set_params(**params)
    kernel = Nystroem(kernel="rbf", gamma=gamma, n_components=SVC_COMPONENTS, random_state=random_state)
    return Pipeline([("kernel", kernel), ("linear", linear)])


def scale_gamma(x) -> float:
    """SVC's gamma="scale": 1 / (columns x the variance of every value)."""
    if sp.issparse(x):
        mean = float(x.mean())
        var = float(x.multiply(x).mean()) - mean**2
    else:
        var = float(np.asarray(x).var())
    return 1.0 / (x.shape[1] * var) if var > 0 else 1.0
