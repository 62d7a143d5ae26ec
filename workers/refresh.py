"""Bringing a schema's ranking up to date, in named stages.

``refresh`` runs them in order, each taking and giving a small dataclass:

1. ``snapshot``: the project, its settings and the fingerprint of what the ranking will be
   built from (pool generation, label revision, settings revision). A ranking with the same
   fingerprint is already published: nothing to do.
2. ``load_pool`` and ``pool_features``: item ids, texts and vectors; their features, from
   the feature cache.
3. ``training_set``: each labelled item's aggregated label, which items are done (labelled by
   enough annotators), and which labels train the model and which measure it (the random
   evaluation sample).
4. ``train``: the model and its version's metadata (evaluation, stop-set agreement).
5. ``score``: probabilities for the unlabelled items and the strategy's order.
6. ``publish``: the model's state, then the ranking, then the version is listed, so a
   version is never visible before the ranking that uses it.

Every random choice is seeded from the fingerprint, so a rerun on the same inputs gives the
same ranking.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers import defaults
from workers.aggregation import resolve
from workers.evaluation import evaluate_on, predict_labels
from workers.exceptions import NotTrainable
from workers.features import CacheReport, FeatureCache
from workers.models import (
    LinearModel,
    aligned_proba,
    predictions,
    train_ensemble,
    train_multi_label,
    train_single_label,
)
from workers.ranking import Ranking, batch_aware_depth, rank_pool, strategy_params
from workers.settings import active_learning, active_schemas, find_schema
from workers.stopping import agreement, stop_set
from workers.store import RankingEntry, Store
from workers.strategies import needs_ensemble

Report = Callable[[str, float], None]
"""report(stage, fraction): how far a refresh has got."""


@dataclass
class Snapshot:
    """The project and schema a refresh works on, and what its ranking is built from."""

    project: dict
    schema: dict
    al: dict
    fingerprint: dict
    seed: int

    @property
    def name(self) -> str:
        return self.project["name"]

    @property
    def active(self) -> bool:
        """Whether active learning ranks this schema (otherwise: random order)."""
        return self.schema["name"] in active_schemas(self.project)


@dataclass
class Pool:
    """The items of the project, in the order of their feature rows."""

    ids: list[str]
    texts: list[str]
    vectors: np.ndarray | None
    labels: dict[str, dict[str, Any]]
    """Per labelled item, each annotator's label."""
    eval_ids: set[str]
    """Items handed out as part of the random evaluation sample."""


@dataclass
class TrainingSet:
    """Labelled rows with their aggregated labels; which train the model, which measure it."""

    rows: list[int]
    targets: list
    train: list[int]
    """Positions in ``rows`` the model trains on."""
    held_out: list[int]
    """Positions in ``rows`` of labelled evaluation items, measured on."""
    candidates: np.ndarray
    """Pool rows still to be ranked (not labelled by enough annotators)."""

    @property
    def train_rows(self) -> list[int]:
        return [self.rows[k] for k in self.train]

    @property
    def train_targets(self) -> list:
        return [self.targets[k] for k in self.train]


@dataclass
class ModelVersion:
    """A trained model, its version number and what is recorded with it."""

    model: LinearModel
    meta: dict
    stop_predictions: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.meta["version"])


@dataclass
class Scores:
    """The ranking of the candidates and the model's probabilities for them."""

    ranking: Ranking
    probabilities: np.ndarray | None


def snapshot(store: Store, project_name: str, schema_name: str) -> Snapshot:
    project = store.get_project(project_name)
    fingerprint = {
        "pool": store.pool_generation(project_name),
        "labels": store.label_revision(project_name, schema_name),
        "settings": project["settings_rev"],
    }
    seed = int(hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:8], 16)
    return Snapshot(project, find_schema(project, schema_name), active_learning(project), fingerprint, seed)


def load_pool(store: Store, snap: Snapshot) -> Pool:
    ids: list[str] = []
    texts: list[str] = []
    for item_id, doc in store.iter_items(snap.name):
        ids.append(item_id)
        texts.append(doc.get("text") or "")
    return Pool(
        ids,
        texts,
        store.load_vectors(snap.name, ids, snap.project.get("vector_dim")),
        store.load_labels(snap.name, snap.schema["name"]),
        store.eval_items(snap.name, snap.schema["name"]),
    )


def pool_features(cache: FeatureCache, snap: Snapshot, pool: Pool, report: Report) -> tuple[Any, CacheReport]:
    return cache.pool_features(
        pool.ids,
        pool.texts,
        pool.vectors,
        snap.al["vectorizer_name"],
        lambda f: report("features", 0.2 + 0.2 * f),
        snap.al["vectorizer_params"],
    )


def training_set(snap: Snapshot, pool: Pool) -> TrainingSet:
    index = {item_id: i for i, item_id in enumerate(pool.ids)}
    needed = snap.al["min_annotations_per_instance"]
    rows, targets, done = [], [], np.zeros(len(pool.ids), dtype=bool)
    resolved = resolve(
        pool.labels,
        snap.schema["labels"],
        snap.schema["multi_label"],
        snap.al["resolution_strategy"],
        snap.seed,
    )
    for item_id, by_annotator in pool.labels.items():
        row = index.get(item_id)
        if row is None or not by_annotator:
            continue
        done[row] = len(by_annotator) >= needed
        if resolved[item_id] is None:  # the annotators disagree and the strategy takes no side
            continue
        rows.append(row)
        targets.append(resolved[item_id])
    # the random evaluation sample: measured on, and trained on only if the project says so
    held_out = [k for k, r in enumerate(rows) if pool.ids[r] in pool.eval_ids]
    train = [
        k for k in range(len(rows)) if snap.al["train_on_eval"] or pool.ids[rows[k]] not in pool.eval_ids
    ]
    return TrainingSet(rows, targets, train, held_out, np.flatnonzero(~done))


def train(store: Store, snap: Snapshot, pool: Pool, labelled: TrainingSet, x) -> ModelVersion | None:
    """A new model version, or None while the schema has too few labels (or one class)."""
    if not snap.active or len(labelled.train) < snap.al["min_instances_for_training"]:
        return None
    multi = snap.schema["multi_label"]
    started = time.perf_counter()
    xl = x[np.array(labelled.train_rows)]
    try:
        if multi:
            model = train_multi_label(
                xl, labelled.train_targets, snap.schema["labels"], snap.seed, snap.al["classifier_params"]
            )
        else:
            model = train_single_label(
                xl,
                labelled.train_targets,
                snap.seed,
                snap.al["classifier_name"],
                snap.al["classifier_params"],
                snap.al["calibrate_probabilities"],
            )
    except NotTrainable:
        return None
    held_rows = [labelled.rows[k] for k in labelled.held_out]
    meta = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_size": len(labelled.train),
        "class_counts": dict(Counter(v for t in labelled.train_targets for v in (t if multi else [t]))),
        "train_seconds": round(time.perf_counter() - started, 3),
        "temperature": model.temperature,
        "metrics": model.metrics,
        "classes": model.classes,
        "evaluation": evaluate_on(
            model,
            x[np.array(held_rows, dtype=np.int64)],
            [labelled.targets[k] for k in labelled.held_out],
            multi,
        ),
    }
    index = {item_id: i for i, item_id in enumerate(pool.ids)}
    stop_ids = stop_set(pool.ids, snap.schema["name"])
    stop_preds = dict(zip(stop_ids, predict_labels(model, x[[index[i] for i in stop_ids]]), strict=True))
    previous = store.latest_model(snap.name, snap.schema["name"])
    old_preds = (
        store.stop_predictions(snap.name, snap.schema["name"], previous["version"]) if previous else None
    )
    meta["stop_kappa"] = agreement(old_preds, stop_preds)
    meta["version"] = store.next_model_version(snap.name, snap.schema["name"])
    return ModelVersion(model, meta, stop_preds)


def score(
    snap: Snapshot,
    labelled: TrainingSet,
    trained: ModelVersion | None,
    x,
    rng: np.random.Generator,
    report: Report,
    leased: int = 0,
) -> Scores:
    xc = x[labelled.candidates]
    strategy = snap.al["query_strategy"] if snap.active else "random"
    model = trained.model if trained is not None else None
    proba = model.predict_proba(xc) if model is not None else None
    member_proba = None
    multi = snap.schema["multi_label"]
    if model is not None and not multi and needs_ensemble(strategy, strategy_params(snap.al, xc)):
        report("training ensemble", 0.65)
        # the ensemble learns from what the model learns from: evaluation items stay out
        members = train_ensemble(
            x[np.array(labelled.train_rows)],
            labelled.train_targets,
            snap.al["bald_params"]["n_estimators"],
            snap.al["bald_params"]["bootstrap_fraction"],
            snap.seed,
            snap.al["classifier_name"],
            snap.al["classifier_params"],
        )
        member_proba = np.stack([aligned_proba(m, xc, model.classes) for m in members])
    labelled_x = x[np.array(labelled.rows)] if labelled.rows else None
    depth = batch_aware_depth(snap.al, leased)
    ranking = rank_pool(strategy, xc, labelled_x, snap.al, rng, proba, member_proba, multi, depth)
    return Scores(ranking, proba)


def publish(
    store: Store,
    snap: Snapshot,
    pool: Pool,
    labelled: TrainingSet,
    trained: ModelVersion | None,
    scores: Scores,
    rng: np.random.Generator,
) -> str:
    """Publish the ranking with its model version; returns the ranking id."""
    order, candidates = scores.ranking.order, labelled.candidates
    preds = conf = None
    if trained is not None and scores.probabilities is not None:
        preds, conf = predictions(trained.model, scores.probabilities)
    entries = {
        pool.ids[candidates[c]]: RankingEntry(
            float(scores.ranking.scores[c]),
            rank + 1,
            preds[c] if preds is not None else None,
            float(conf[c]) if conf is not None else None,
        )
        for rank, c in enumerate(order)
    }
    explore = rng.permutation(len(candidates))[: defaults.EXPLORE_DEPTH]
    meta = {
        "strategy": scores.ranking.strategy,
        "model_version": trained.version if trained is not None else None,
        "fingerprint": snap.fingerprint,
        "pool_size": len(pool.ids),
        "ranked": len(order),
        "labelled": len(labelled.rows),
    }
    schema = snap.schema["name"]
    if trained is not None:
        # the model's state first: a ranking that names a version can always load it
        store.save_model_state(snap.name, schema, trained.version, trained.model.to_bytes())
    rid = store.publish_ranking(
        snap.name,
        schema,
        [pool.ids[candidates[c]] for c in order],
        [pool.ids[candidates[c]] for c in explore],
        entries,
        meta,
    )
    if trained is not None:
        # listed only now, so a client polling GET .../models never sees a version that
        # GET .../next does not serve yet
        store.add_model(snap.name, schema, trained.meta)
        store.save_stop_predictions(snap.name, schema, trained.version, trained.stop_predictions)
    return rid


def refresh(
    store: Store,
    project_name: str,
    schema_name: str,
    report: Report | None = None,
    cache: FeatureCache | None = None,
) -> dict:
    """Train (when the schema has enough labels) and publish a ranking of its unlabelled pool."""
    report = report or (lambda stage, fraction: None)
    started = time.perf_counter()
    snap = snapshot(store, project_name, schema_name)
    current = store.ranking_meta(project_name, schema_name)
    if current is not None and current.get("fingerprint") == snap.fingerprint:
        return {
            "status": "up_to_date",
            "ranking_id": current["ranking_id"],
            "model_version": current["model_version"],
        }
    rng = np.random.default_rng(snap.seed)

    report("loading", 0.05)
    pool = load_pool(store, snap)
    report("features", 0.2)
    cache = cache or feature_cache(store, project_name)
    x, cache_report = pool_features(cache, snap, pool, report)
    labelled = training_set(snap, pool)
    report("training", 0.4)
    trained = train(store, snap, pool, labelled, x)
    report("scoring", 0.6)
    leased = store.counts(snap.project, schema_name)["leased"]
    scores = score(snap, labelled, trained, x, rng, report, leased)
    report("publishing", 0.8)
    rid = publish(store, snap, pool, labelled, trained, scores, rng)
    report("done", 1.0)
    return {
        "status": "published",
        "ranking_id": rid,
        "strategy": scores.ranking.strategy,
        "model_version": trained.version if trained is not None else None,
        "ranked": len(scores.ranking.order),
        "features": {"reused": cache_report.reused, "computed": cache_report.computed},
        "seconds": round(time.perf_counter() - started, 3),
    }


def feature_cache(store: Store, project_name: str) -> FeatureCache:
    """The project's feature rows, kept in Redis between refreshes."""
    return FeatureCache(
        lambda part: store.feature_rows(project_name, part),
        lambda part, blob: store.save_feature_rows(project_name, part, blob),
    )
