"""Temperature scaling: one number T per model, fitted on logits the model did not train on,
so that softmax(z / T) says how often the model is right (Guo et al. 2017)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of softmax(z / T) for class indices ``y``."""

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def as_two_columns(z: np.ndarray) -> np.ndarray:
    """Binary logistic regression gives one logit; softmax over [-z/2, z/2] equals sigmoid(z)."""
    return np.hstack([-z / 2.0, z / 2.0]) if z.shape[1] == 1 else z
