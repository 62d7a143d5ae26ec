"""A refresh's model (``workers.refresh``): trained on the training labels and measured on
the evaluation sample, then (with ``train_on_eval``) fitted again with the labelled
evaluation items too, stored as it is served and compared with the last on the stop set;
once its ranking is out, the labels are assessed with the same kind of model and the gain
over random estimated."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers import defaults
from workers.evaluation import evaluation, predict_labels
from workers.exceptions import NotTrainable
from workers.features.columns import is_sparse
from workers.gain import gain_over_random
from workers.model_choice import AUTO_CANDIDATES
from workers.models import (
    Model,
    aligned_proba,
    compare_kinds,
    load_model,
    train_multi_label,
    train_single_label,
)
from workers.quality import assess
from workers.snapshot import Pool, Snapshot, TrainingSet
from workers.stopping import agreement_with_support, stop_rows
from workers.store import Store
from workers.strategies import needs_ensemble


@dataclass
class ModelVersion:
    """A trained model, its version number and what is recorded with it."""

    model: Model
    meta: dict
    stop_predictions: dict[str, Any]
    state: bytes
    """The model as stored: what ``/predict``, the ranking and scoring shards all use."""
    measured: Model | None = None
    """The fit without the evaluation sample, which every figure measured on it comes from
    (``model`` itself when the served model did not learn from the sample)."""

    @property
    def version(self) -> int:
        return int(self.meta["version"])

    @property
    def measured_model(self) -> Model:
        return self.measured if self.measured is not None else self.model

    @classmethod
    def stored(
        cls, fitted: Model, meta: dict, stop_predictions: dict[str, Any], measured: Model | None = None
    ) -> ModelVersion:
        """A version of ``fitted`` as it is stored (a linear model's weights in float32), so
        the ranking, the evaluation and ``/predict`` use one model, and scoring shards on
        other workers load the same one; ``measured``, the fit without the evaluation sample
        when ``fitted`` learnt from it, as it would be stored."""
        state = fitted.to_bytes()
        model = load_model(state)
        model.metrics = fitted.metrics
        if measured is not None and measured is not fitted:
            measured_model = load_model(measured.to_bytes())
            measured_model.metrics = measured.metrics
            return cls(model, meta, stop_predictions, state, measured_model)
        return cls(model, meta, stop_predictions, state)


def fit_version(
    snap: Snapshot, labelled: TrainingSet, x, choice: dict | None = None
) -> tuple[Model, Model] | None:
    """(served, measured): the schema's model on its training labels, measured on the
    evaluation sample, and the model served, which with ``train_on_eval`` is the same kind
    fitted again on the labelled evaluation items too, so that no label paid for is left out
    of what annotators and ``/predict`` get. It keeps the measured fit's calibration and
    metrics (no second comparison of kinds, no second cross-validation). None while the
    schema has too few labels (or one class)."""
    measured = fit(snap, labelled, x, choice)
    if measured is None or not snap.al["train_on_eval"] or not labelled.held_out:
        return None if measured is None else (measured, measured)
    rows, targets = labelled.served(True)
    served = fit_rows(snap, x[np.array(rows, dtype=np.int64)], targets, calibrate=False, kind=measured.kind)
    if served is None:
        return measured, measured
    if not snap.schema["multi_label"]:
        served.temperature = measured.temperature
    served.metrics = measured.metrics
    return served, measured


def fit(snap: Snapshot, labelled: TrainingSet, x, choice: dict | None = None) -> Model | None:
    """The schema's model on its training labels; None while it has too few (or one class).
    Under ``auto`` on dense features the kind is the one ``choice`` names: the last
    comparison (``compare``), which runs once a ranking is out, so that comparing never
    holds one up; until one has run, the first candidate (logistic regression)."""
    if not snap.active or len(labelled.train) < snap.al["min_instances_for_training"]:
        return None
    xl, targets = x[np.array(labelled.train_rows)], labelled.train_targets
    if not compares(snap, x):
        return fit_rows(snap, xl, targets)
    kinds = auto_kinds(snap)
    if not choice or choice.get("chosen") not in kinds:
        choice = {"chosen": kinds[0], "reason": "no comparison yet", "labels": 0}
    # the comparison's out-of-fold logits calibrated the kind it chose: no folds to fit again
    temperature = choice.get("temperature") if snap.al["calibrate_probabilities"] else None
    calibrate = None if temperature is None else False
    model = fit_rows(snap, xl, targets, calibrate=calibrate, kind=choice["chosen"])
    if model is not None and temperature is not None:
        model.temperature = float(temperature)
        model.metrics["cv_accuracy"] = choice["cv_accuracy"][choice["chosen"]]
    if model is not None:
        model.metrics["model_choice"] = choice
    return model


def compares(snap: Snapshot, x) -> bool:
    """Whether the schema's kind is ``auto``'s to choose by comparison: single-label, on
    dense features (on TF-IDF it is logistic regression, with nothing compared)."""
    return snap.al["classifier_name"] == "auto" and not snap.schema["multi_label"] and not is_sparse(x)


def auto_kinds(snap: Snapshot) -> list[str]:
    """The kinds ``auto`` compares for the schema, the fallback first: the project's
    ``candidates`` or ``AUTO_CANDIDATES``, less gradient boosting where BALD needs a
    committee (boosting has none)."""
    given = (snap.al["classifier_params"] or {}).get("candidates") or AUTO_CANDIDATES
    if needs_ensemble(snap.al["query_strategy"], snap.al):
        return [k for k in given if k != "hist_gradient_boosting"]
    return list(given)


def compare_due(snap: Snapshot, labelled: TrainingSet, x, choice: dict | None) -> bool:
    """Whether ``auto`` compares the kinds again after this refresh: when none has been
    compared on these settings, or the training labels have grown by ``AUTO_GROWTH`` since."""
    if not compares(snap, x) or len(labelled.train) < defaults.AUTO_MIN_LABELS:
        return False
    made_on = (choice or {}).get("labels", 0)
    stale = (choice or {}).get("chosen") not in auto_kinds(snap)
    return stale or not made_on or len(labelled.train) >= made_on * (1 + defaults.AUTO_GROWTH)


def compare(snap: Snapshot, pool: Pool, labelled: TrainingSet, x, choice: dict | None) -> dict:
    """``auto``'s comparison of the kinds on the training labels (``workers.models``), the
    kind serving (``choice``) as the incumbent, scored on the labels the exploration share
    drew, each kind's retrain timed on a sample of the pool still to rank: the choice the
    next retrains train. Where no comparison can be made (a class with too few labels),
    the kind serving stays."""
    kinds = auto_kinds(snap)
    incumbent = (choice or {}).get("chosen") if (choice or {}).get("labels") else None
    rows = labelled.candidates if len(labelled.candidates) else np.array(labelled.train_rows)
    sample = rows[np.linspace(0, len(rows) - 1, min(len(rows), AUTO_POOL_SAMPLE)).astype(np.int64)]
    drawn = np.array([pool.ids[r] in pool.random_ids for r in labelled.train_rows], dtype=bool)
    record = compare_kinds(
        x[np.array(labelled.train_rows)],
        labelled.train_targets,
        snap.seed,
        kinds,
        incumbent if incumbent in kinds else None,
        x[sample],
        len(labelled.candidates),
        drawn,
    )
    if choice is not None and incumbent and not record.get("labels"):
        return choice
    return record


AUTO_POOL_SAMPLE = 2048
"""Pool rows each kind's pass is timed on, when ``auto`` estimates its retrain."""


def fit_rows(
    snap: Snapshot,
    xl,
    targets: list,
    calibrate: bool | None = None,
    kind: str | None = None,
) -> Model | None:
    """The schema's kind of model (or ``kind``) on rows ``xl`` with labels ``targets``; None
    when they cannot train one (one class). ``auto`` here is text features' logistic
    regression (``fit`` trains the kind a comparison chose on dense ones), among the kinds
    ``auto_kinds`` allows."""
    kind = kind or snap.al["classifier_name"]
    params = snap.al["classifier_params"] if kind == snap.al["classifier_name"] else None
    if kind == "auto":
        params = {**(params or {}), "candidates": auto_kinds(snap)}
    try:
        if snap.schema["multi_label"]:
            return train_multi_label(
                xl, targets, snap.schema["labels"], snap.seed, snap.al["classifier_params"]
            )
        return train_single_label(
            xl,
            targets,
            snap.seed,
            kind,
            params,
            snap.al["calibrate_probabilities"] if calibrate is None else calibrate,
        )
    except NotTrainable:
        return None


def gain(snap: Snapshot, pool: Pool, labelled: TrainingSet, x, model: Model) -> dict:
    """The gain over random of ``model``, the served version's fit without the evaluation
    sample (``workers.gain``), from the training labels the exploration share drew and the
    labelled evaluation sample."""
    drawn = [k for k in labelled.train if pool.ids[labelled.rows[k]] in pool.random_ids]
    served_kind = model.kind
    held_rows = np.array([labelled.rows[k] for k in labelled.held_out], dtype=np.int64)

    def fit_predict(xl, targets):
        # accuracy needs no calibrated confidence: the argmax is the same; the served
        # kind, so ``auto`` compares no kinds for each of the dozens of models
        fitted = fit_rows(snap, xl, targets, calibrate=False, kind=served_kind)
        return None if fitted is None else (lambda xe: predict_labels(fitted, xe))

    return gain_over_random(
        fit_predict,
        x[np.array([labelled.rows[k] for k in drawn], dtype=np.int64)],
        [labelled.targets[k] for k in drawn],
        x[held_rows],
        [labelled.targets[k] for k in labelled.held_out],
        predict_labels(model, x[held_rows]),
        len(labelled.train),
        snap.seed,
        snap.al["min_instances_for_training"],
        snap.schema["multi_label"],
    )


def gain_due(store: Store, snap: Snapshot, training_size: int) -> bool:
    """Whether a new version estimates the gain over random: once its training labels have
    grown by ``GAIN_GROWTH`` since the last estimate (each trains dozens of models)."""
    estimated = [
        g["labels"]
        for g, _ in store.gains(snap.name, snap.schema["name"]).values()
        if g["status"] == "estimated"
    ]
    return not estimated or training_size >= max(estimated) * (1 + defaults.GAIN_GROWTH)


def compare_if_due(
    store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x, trained: ModelVersion
) -> None:
    """``auto``'s comparison of the kinds, once a version's ranking is published, when one
    is due: the retrains after it train the kind it chooses."""
    choice = trained.model.metrics.get("model_choice")
    if compare_due(snap, labelled, x, choice):
        found = compare(snap, pool, labelled, x, choice)
        if found is not choice:
            store.save_model_choice(snap.name, snap.schema["name"], found)


def estimate_gain(
    store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x, trained: ModelVersion
) -> None:
    """The gain over random of a version whose ranking is published already: the estimate
    never holds a ranking up."""
    started = time.perf_counter()
    found = gain(snap, pool, labelled, x, trained.measured_model)
    seconds = round(time.perf_counter() - started, 3)
    store.save_gain(snap.name, snap.schema["name"], trained.version, found, seconds)


def train(store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x) -> ModelVersion | None:
    """A new model version, or None while the schema has too few labels (or one class)."""
    multi = snap.schema["multi_label"]
    started = time.perf_counter()
    previous = store.latest_model(snap.name, snap.schema["name"])
    choice = store.model_choice(snap.name, snap.schema["name"])
    fitted = fit_version(snap, labelled, x, choice)
    if fitted is None:
        return None
    served, measured = fitted
    trained = ModelVersion.stored(served, {}, {}, measured)
    model = trained.model
    held_rows = [labelled.rows[k] for k in labelled.held_out]
    truth = [labelled.targets[k] for k in labelled.held_out]
    measured_pred = predict_labels(trained.measured_model, x[np.array(held_rows, dtype=np.int64)])
    served_targets = labelled.served(trained.measured is not None)[1]
    meta = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_size": len(labelled.train),
        "served_training_size": len(served_targets),
        "class_counts": dict(Counter(v for t in served_targets for v in (t if multi else [t]))),
        "train_seconds": round(time.perf_counter() - started, 3),
        "classifier": model.kind,
        "temperature": model.temperature,
        "metrics": model.metrics,
        "classes": model.classes,
        "evaluation": evaluation(measured_pred, truth, multi),
    }
    rows = stop_rows(pool.ids, snap.schema["name"])
    stop_ids = [pool.ids[r] for r in rows]
    stop_preds = dict(zip(stop_ids, predict_labels(model, x[rows]), strict=True))
    old_preds = (
        store.stop_predictions(snap.name, snap.schema["name"], previous["version"]) if previous else None
    )
    found = agreement_with_support(old_preds, stop_preds, seed=snap.seed)
    meta["stop_kappa"], meta["stop_kappa_interval"], meta["stop_kappa_support"] = found or (None, None, None)
    meta["version"] = store.next_model_version(snap.name, snap.schema["name"])
    trained.meta, trained.stop_predictions = meta, stop_preds
    return trained


def assess_labels(
    store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x, trained: ModelVersion | None
) -> None:
    """Agreement, label issues and the review and overlap queues (``workers.quality``), once
    the ranking is out: a label issue is checked with the served kind of model."""
    fit_predict = None
    if trained is not None:
        kind, classes = trained.model.kind, snap.schema["labels"]

        def fit_predict(xl, targets):
            fitted = fit_rows(snap, xl, targets, calibrate=False, kind=kind)
            return None if fitted is None else (lambda xe: aligned_proba(fitted, xe, classes))

    rows = np.array(labelled.rows, dtype=np.int64)
    assess(
        store,
        snap.name,
        snap.schema,
        snap.al,
        pool.labels,
        pool.label_times,
        (x[rows], [pool.ids[r] for r in rows], labelled.targets),
        fit_predict,
        trained.version if trained is not None else None,
        snap.seed,
    )
