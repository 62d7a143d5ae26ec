"""A refresh's model (``workers.refresh``): trained on the training labels, stored as
it is served, measured on the evaluation sample and the stop set; then, once its ranking is
out, the labels assessed with the same kind of model and the gain over random estimated."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers import defaults
from workers.evaluation import evaluation, predict_labels
from workers.exceptions import NotTrainable
from workers.gain import gain_over_random
from workers.model_choice import AUTO_CANDIDATES
from workers.models import (
    Model,
    aligned_proba,
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

    @property
    def version(self) -> int:
        return int(self.meta["version"])

    @classmethod
    def stored(cls, fitted: Model, meta: dict, stop_predictions: dict[str, Any]) -> ModelVersion:
        """A version of ``fitted`` as it is stored (a linear model's weights in float32), so
        the ranking, the evaluation and ``/predict`` use one model, and scoring shards on
        other workers load the same one."""
        state = fitted.to_bytes()
        model = load_model(state)
        model.metrics = fitted.metrics
        return cls(model, meta, stop_predictions, state)


def fit(snap: Snapshot, labelled: TrainingSet, x, previous: dict | None = None) -> Model | None:
    """The schema's model on its training labels; None while it has too few (or one class).
    ``previous`` is the last version's metrics: under ``auto``, its choice of model kind
    stands until the training labels have grown by ``AUTO_GROWTH``."""
    if not snap.active or len(labelled.train) < snap.al["min_instances_for_training"]:
        return None
    xl, targets = x[np.array(labelled.train_rows)], labelled.train_targets
    kept = (previous or {}).get("model_choice") if snap.al["classifier_name"] == "auto" else None
    if kept and len(labelled.train) < kept["labels"] * (1 + defaults.AUTO_GROWTH):
        model = fit_rows(snap, xl, targets, kind=kept["chosen"])
        if model is not None:
            model.metrics["model_choice"] = {**kept, "compared": False}
        return model
    incumbent = kept["chosen"] if kept and kept.get("labels") else None
    return fit_rows(snap, xl, targets, incumbent=incumbent)


def fit_rows(
    snap: Snapshot,
    xl,
    targets: list,
    calibrate: bool | None = None,
    kind: str | None = None,
    incumbent: str | None = None,
) -> Model | None:
    """The schema's kind of model (or ``kind``) on rows ``xl`` with labels ``targets``; None
    when they cannot train one (one class). Under ``auto``, ``incumbent`` is the kind chosen
    last, which another must beat to replace."""
    kind = kind or snap.al["classifier_name"]
    params = snap.al["classifier_params"] if kind == snap.al["classifier_name"] else None
    if kind == "auto" and incumbent:
        params = {**(params or {}), "incumbent": incumbent}
    if kind == "auto" and needs_ensemble(snap.al["query_strategy"], snap.al):
        # BALD needs a committee: gradient boosting has none
        given = (params or {}).get("candidates") or AUTO_CANDIDATES
        params = {**(params or {}), "candidates": [k for k in given if k != "hist_gradient_boosting"]}
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
    """The gain over random of ``model``, the one served (``workers.gain``), from the
    training labels the exploration share drew and the labelled evaluation sample."""
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


def estimate_gain(
    store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x, trained: ModelVersion
) -> None:
    """The gain over random of a version whose ranking is published already: the estimate
    never holds a ranking up."""
    started = time.perf_counter()
    found = gain(snap, pool, labelled, x, trained.model)
    seconds = round(time.perf_counter() - started, 3)
    store.save_gain(snap.name, snap.schema["name"], trained.version, found, seconds)


def train(store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x) -> ModelVersion | None:
    """A new model version, or None while the schema has too few labels (or one class)."""
    multi = snap.schema["multi_label"]
    started = time.perf_counter()
    previous = store.latest_model(snap.name, snap.schema["name"])
    fitted = fit(snap, labelled, x, (previous or {}).get("metrics"))
    if fitted is None:
        return None
    trained = ModelVersion.stored(fitted, {}, {})
    model = trained.model
    held_rows = [labelled.rows[k] for k in labelled.held_out]
    truth = [labelled.targets[k] for k in labelled.held_out]
    served_pred = predict_labels(model, x[np.array(held_rows, dtype=np.int64)])
    meta = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_size": len(labelled.train),
        "class_counts": dict(Counter(v for t in labelled.train_targets for v in (t if multi else [t]))),
        "train_seconds": round(time.perf_counter() - started, 3),
        "classifier": model.kind,
        "temperature": model.temperature,
        "metrics": model.metrics,
        "classes": model.classes,
        "evaluation": evaluation(served_pred, truth, multi),
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
