"""The gain over random, live: how many labels random labelling would have needed to reach
the accuracy the served model has now.

The exploration share hands out uniform draws from the pool, so its labels are a random
sample; models trained on growing parts of it, and measured on the evaluation sample, trace
the learning curve that random labelling gives on this pool. The curve is fitted with an
inverse power law, ``accuracy(n) = a - b n^-c`` (the usual shape of learning curves:
Figueroa et al. 2012, "Predicting sample size required for classification performance"),
and read backwards at the served model's accuracy: the model at N labels is as accurate as
random labelling would be at about M labels.

The interval is a bootstrap: the evaluation items are resampled (they carry most of the
noise) and so are the random orders the curve's models were trained in; the curve is fitted
again on each resample. Once the served model has more labels than the exploration share has
drawn, M is an extrapolation of the curve, and the record says so.

An extrapolation depends on the curve's shape as much as on its points: a power law levels
off, and read far past its points it tends to put M too high, which would claim savings
that are not there. So the curve is also fitted as a logarithm, ``accuracy(n) = a + b ln n``,
which never levels off and puts M lower. M is the geometric mean of the two readings, and
the interval spans both bootstraps (the lower of their 2.5th percentiles to the higher of
their 97.5th): a verdict stands only where both shapes agree on it.

The fit is exact least squares for ``a`` and ``b`` at each ``c`` of a grid, the best ``c``
kept, which vectorises over the bootstrap's resamples (no iterative optimiser to fail).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workers import defaults

EXPONENTS = np.linspace(0.05, 2.0, 40)
"""The grid of the power law's exponent ``c``."""

Fit = Callable[[np.ndarray, list], Callable[[np.ndarray], list] | None]
"""Trains the schema's kind of model on rows of features and their labels; returns its
predict function, or None when the rows cannot train one (a single class)."""


def curve_sizes(n_random: int, smallest: int) -> list[int]:
    """Training sizes along the random labels: geometric from ``smallest`` to all of them."""
    sizes = np.unique(np.geomspace(smallest, n_random, defaults.GAIN_POINTS).round().astype(int))
    return [int(s) for s in sizes if s >= 2]


def random_curve(
    fit: Fit,
    x_random: np.ndarray,
    y_random: list,
    x_eval: np.ndarray,
    truth: list,
    sizes: list[int],
    seed: int,
    multi_label: bool = False,
) -> np.ndarray:
    """Whether each evaluation item is right, for models on the first ``s`` of the uniform
    draws in ``GAIN_ORDERS`` random orders: a bool array (orders, sizes, evaluation items).

    The evaluation items are uniform draws too, so they train the curve's models as well,
    cross-fitted: in ``GAIN_FOLDS`` folds, each fold of the evaluation sample is measured by
    models trained on the exploration share's labels and the other folds. The curve then
    reaches past the exploration share's labels alone, and no item measures a model that
    saw it."""
    from workers.evaluation import correctness

    rng = np.random.default_rng(seed)
    n_eval = len(truth)
    folds = rng.permutation(n_eval) % defaults.GAIN_FOLDS
    out = np.zeros((defaults.GAIN_ORDERS, len(sizes), n_eval), dtype=bool)
    for f in range(defaults.GAIN_FOLDS):
        test = np.flatnonzero(folds == f)
        rest = np.flatnonzero(folds != f)
        xs = _stack(x_random, x_eval[rest])
        ys = [*y_random, *(truth[r] for r in rest)]
        fold_truth = [truth[t] for t in test]
        for k in range(defaults.GAIN_ORDERS):
            order = rng.permutation(len(ys))
            for j, s in enumerate(sizes):
                rows = order[:s]
                targets = [ys[r] for r in rows]
                predict = fit(xs[rows], targets)
                # one class so far: a model of it predicts that class
                pred = [targets[0]] * len(test) if predict is None else predict(x_eval[test])
                out[k, j, test] = correctness(pred, fold_truth, multi_label)
    return out


def _stack(a, b):
    import scipy.sparse as sp

    return sp.vstack([a, b]).tocsr() if sp.issparse(a) else np.vstack([a, b])


def fit_power_law(sizes: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``(a, b, c)`` of ``a - b n^-c`` fitted to each row of ``acc`` (accuracy at ``sizes``),
    with ``0 <= a <= 1`` and ``b >= 0`` (accuracy does not fall with more labels)."""
    acc = np.atleast_2d(acc)
    best = np.full((acc.shape[0], 3), np.nan)
    best_sse = np.full(acc.shape[0], np.inf)
    mean = acc.mean(axis=1)
    for c in EXPONENTS:
        u = sizes ** (-c)
        du = u - u.mean()
        b = -(acc - mean[:, None]) @ du / (du @ du)
        b = np.maximum(b, 0.0)
        a = mean + b * u.mean()
        over = a > 1.0
        if over.any():  # pin the asymptote at 1 and refit the slope
            b[over] = np.maximum(((1.0 - acc[over]) @ u) / (u @ u), 0.0)
            a[over] = 1.0
        sse = ((acc - (a[:, None] - b[:, None] * u)) ** 2).sum(axis=1)
        better = sse < best_sse
        best[better] = np.column_stack([a, b, np.full_like(a, c)])[better]
        best_sse[better] = sse[better]
    return best


def fit_log_law(sizes: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``(a, b)`` of ``a + b ln n`` fitted to each row of ``acc``, with ``b >= 0``."""
    acc = np.atleast_2d(acc)
    u = np.log(sizes)
    du = u - u.mean()
    b = np.maximum((acc - acc.mean(axis=1)[:, None]) @ du / (du @ du), 0.0)
    a = acc.mean(axis=1) - b * u.mean()
    return np.column_stack([a, b])


def labels_for_log(target: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Labels at which each fitted logarithm reaches ``target`` (inf: a flat one below it)."""
    a, b = params[:, 0], params[:, 1]
    out = np.where(target <= a, 0.0, np.inf)
    grow = b > 0
    with np.errstate(over="ignore"):
        out[grow] = np.exp(np.minimum((target[grow] - a[grow]) / b[grow], 700.0))
    return out


def read_back(target: np.ndarray, curves: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels at which each curve reaches its target, read as a power law and as a
    logarithm; either way no more than the first measured size that reaches it."""
    measured = reached_at(target, curves, n)
    power = np.minimum(labels_for(target, fit_power_law(n, curves)), measured)
    log = np.minimum(labels_for_log(target, fit_log_law(n, curves)), measured)
    return power, log


def labels_for(target: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Labels at which each fitted curve reaches ``target`` (inf: never, below its
    asymptote; 0: at once)."""
    a, b, c = params[:, 0], params[:, 1], params[:, 2]
    out = np.full(len(a), np.inf)
    gap = a - target
    reach = gap > 0
    flat = reach & (b <= 0)
    out[flat] = 0.0
    grow = reach & (b > 0)
    out[grow] = (b[grow] / gap[grow]) ** (1.0 / c[grow])
    return out


def reached_at(target: np.ndarray, curves: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The first measured size whose accuracy reaches each target (inf where none does):
    random labelling needs at most that many labels, whatever the fitted curve says. This
    matters at the ceiling, where a served model at 100% meets a curve whose fit stays a
    hair below it."""
    hit = curves >= target[:, None] - 1e-12
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return np.where(first >= 0, sizes[np.maximum(first, 0)], np.inf)


def with_discordant_pair(served_right: np.ndarray, random_right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation items with one pseudo-item more each way: one the served model gets
    right and every model of the curve wrong, one the other way round.

    The served model and the curve's models are compared on the same items, so only the
    items they disagree on tell them apart. Near the ceiling (SMS spam at 98%) a small
    evaluation sample may hold none: the bootstrap then resamples identical columns and
    finds no uncertainty at all, and a model on 10 random labels looks as good as one on
    300. A pseudo-count on each discordant cell is the usual remedy for matched
    proportions (Agresti & Min 2005); it leaves a balanced comparison where it was and
    widens the interval most where disagreements are fewest."""
    served = np.concatenate([served_right.astype(bool), [True, False]])
    pair = np.zeros((*random_right.shape[:2], 2), dtype=bool)
    pair[:, :, 1] = True
    return served, np.concatenate([random_right.astype(bool), pair], axis=2)


def estimate(
    served_right: np.ndarray,
    random_right: np.ndarray,
    sizes: list[int],
    labels: int,
    seed: int,
    n_random: int,
) -> dict:
    """The gain record: served model right or wrong per evaluation item, the random curve's
    models likewise (``random_curve``), the curve's sizes, the served model's labels and the
    exploration share's."""
    cap = defaults.GAIN_MAX_EXTRAPOLATION * sizes[-1]
    n = np.asarray(sizes, dtype=float)
    accuracy, n_items = float(served_right.mean()), served_right.shape[0]
    curve = random_right.mean(axis=(0, 2))
    served_right, random_right = with_discordant_pair(served_right, random_right)
    power, log = read_back(np.array([served_right.mean()]), random_right.mean(axis=(0, 2))[None, :], n)
    point = float(np.sqrt(max(power[0], 1.0) * max(log[0], 1.0)))
    rng = np.random.default_rng(seed)
    rounds, n_eval, orders = defaults.GAIN_BOOTSTRAP_ROUNDS, served_right.shape[0], random_right.shape[0]
    items = rng.integers(0, n_eval, size=(rounds, n_eval))
    picks = rng.integers(0, orders, size=(rounds, orders))
    per_item = random_right.astype(float)  # (orders, sizes, items)
    boot_curves = np.stack([per_item[picks[r]][:, :, items[r]].mean(axis=(0, 2)) for r in range(rounds)])
    boot_targets = served_right[items].mean(axis=1)
    boot_power, boot_log = (np.minimum(b, cap * 10) for b in read_back(boot_targets, boot_curves, n))
    lo = min(np.percentile(boot_power, 2.5), np.percentile(boot_log, 2.5))
    hi = max(np.percentile(boot_power, 97.5), np.percentile(boot_log, 97.5))
    return record(labels, n_random, n_items, accuracy, point, float(lo), float(hi), cap, sizes, curve)


def record(
    labels: int,
    n_random: int,
    n_eval: int,
    accuracy: float,
    point: float,
    lo: float,
    hi: float,
    cap: float,
    sizes: list[int],
    curve: np.ndarray,
) -> dict:
    def shown(v: float) -> int | None:
        return None if v > cap else round(v)

    m, low, high = shown(point), shown(lo), shown(hi)

    def said(v: int | None, about: str = "about ") -> str:
        return f"{about}{v:,}" if v is not None else f"more than {int(cap):,}"

    span = f"95% interval {said(low, '')} to {said(high, '')}"
    if lo > labels:
        verdict = "saving"
        saved = f"about {m - labels:,}" if m is not None else f"over {int(cap) - labels:,}"
        statement = (
            f"The model at {labels:,} labels is as accurate as random labelling would be at "
            f"{said(m)} labels ({span}): active learning is saving {saved} labels."
        )
    elif hi < labels:
        verdict = "not_helping"
        statement = (
            f"Random labelling would have reached this model's accuracy with {said(m)} labels "
            f"({span}), fewer than its {labels:,}: active learning is not helping here yet."
        )
    else:
        verdict = "undecided"
        statement = (
            f"The model at {labels:,} labels is as accurate as random labelling would be at "
            f"{said(m)} labels, but the {span} includes {labels:,}: not yet distinguishable "
            "from random labelling."
        )
    return {
        "status": "estimated",
        "verdict": verdict,
        "statement": statement,
        "labels": labels,
        "equivalent_random_labels": m,
        "interval": [low, high],
        "labels_saved": m - labels if m is not None else None,
        "labels_saved_interval": [
            low - labels if low is not None else None,
            high - labels if high is not None else None,
        ],
        "accuracy": accuracy,
        "random_labels": n_random,
        "evaluation_size": n_eval,
        "extrapolated": m is None or m > sizes[-1],
        "cap": int(cap),
        "random_curve": [{"labels": s, "accuracy": float(a)} for s, a in zip(sizes, curve, strict=True)],
        "method": "random labelling's curve from models on the exploration share's uniform draws, "
        "measured on the evaluation sample, read back as an inverse power law and as a logarithm "
        "(M: their geometric mean); 95% bootstrap interval over evaluation items and random "
        "orders, spanning both",
    }


def too_early(reason: str, **figures) -> dict:
    return {"status": "too_early", "verdict": "too_early", "statement": reason, **figures}


def gain_over_random(
    fit: Fit,
    x_random: np.ndarray,
    y_random: list,
    x_eval: np.ndarray,
    truth: list,
    served_pred: list,
    labels: int,
    seed: int,
    smallest: int,
    multi_label: bool = False,
) -> dict:
    """The whole estimate, from the random labels' features and labels, the evaluation
    sample's, and the served model's predictions on it."""
    from workers.evaluation import correctness

    n_random, n_eval = len(y_random), len(truth)
    if n_eval < defaults.GAIN_MIN_EVALUATION or n_random < defaults.GAIN_MIN_RANDOM_LABELS:
        return too_early(
            f"The gain over random needs {defaults.GAIN_MIN_EVALUATION} evaluation labels and "
            f"{defaults.GAIN_MIN_RANDOM_LABELS} labels from the exploration share; there are "
            f"{n_eval} and {n_random}.",
            evaluation_size=n_eval,
            random_labels=n_random,
            labels=labels,
        )
    # every fold's models can train on this many uniform draws
    reach = n_random + n_eval - int(np.ceil(n_eval / defaults.GAIN_FOLDS))
    sizes = curve_sizes(reach, min(smallest, n_random))
    right = random_curve(fit, x_random, y_random, x_eval, truth, sizes, seed, multi_label)
    served = correctness(served_pred, truth, multi_label)
    return estimate(served, right, sizes, labels, seed, n_random)
