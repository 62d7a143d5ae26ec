"""Bringing a schema's ranking up to date, in named stages.

``refresh`` runs them in order, each taking and giving a small dataclass:

1. ``snapshot``: the project, its settings and the fingerprint of what the ranking will be
   built from (pool generation, label revision, settings revision). A ranking with the same
   fingerprint is already published: nothing to do.
2. ``load_pool`` and ``pool_features``: item ids, texts and vectors; their features, from
   the feature cache. When no upload has changed the pool since the cache's rows were
   stamped, the ids come with the rows and no text is read.
3. ``training_set``: each labelled item's aggregated label, which items are done (labelled by
   enough annotators), and which labels train the model and which measure it (the random
   evaluation sample).
4. ``train``: the model and its version's metadata (evaluation, stop-set agreement).
5. ``score``: probabilities for the unlabelled items and the strategy's order.
6. ``publish``: the model's state, then the ranking, then the version is listed, so a
   version is never visible before the ranking that uses it.

Once the ranking is out, the labels are assessed (``assess_labels``: agreement, label
issues, the review and overlap queues; ``workers.quality``), then the version's gain over
random is estimated when due.

Every random choice is seeded from the fingerprint, so a rerun on the same inputs gives the
same ranking.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rq import Queue

from workers import defaults
from workers.aggregation import resolve
from workers.evaluation import evaluation, predict_labels
from workers.exceptions import NotTrainable
from workers.features import CacheReport, FeatureCache, Featurizer
from workers.features.cache import Unchanged
from workers.features.files import feature_cache, feature_root, project_dir
from workers.gain import gain_over_random
from workers.model_choice import AUTO_CANDIDATES
from workers.models import (
    Model,
    aligned_proba,
    load_model,
    predictions,
    train_ensemble,
    train_multi_label,
    train_single_label,
)
from workers.quality import assess
from workers.ranking import Ranking, balanced, balances, batch_aware_depth, rank_pool, strategy_params
from workers.settings import active_learning, active_schemas, find_schema
from workers.shards import model_pass, whole_pass
from workers.stopping import agreement_with_support, stop_set
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
    """The evaluation sample and the items handed out as part of it: never ranked, and
    measured on once labelled."""
    random_ids: set[str] = field(default_factory=set)
    """Items last handed out as a uniform draw (the exploration share)."""
    label_times: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per labelled item, when each annotator's label was set: ties go to the latest."""


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


@dataclass
class Scores:
    """The ranking of the candidates and the model's probabilities for them."""

    ranking: Ranking
    probabilities: np.ndarray | None
    shards: dict = field(default_factory=lambda: {"shards": 1})
    """How the model's pass over the pool was split (``workers.shards``)."""


Shards = Callable[["ModelVersion", Any, np.ndarray], tuple[np.ndarray, Any, dict]]
"""shards(trained, xc, candidates): the model's probabilities and space for the candidates'
rows ``xc``, and how the pass was split (``workers.shards.model_pass``)."""


def sharded_pass(
    store: Store, queue: Queue, snap: Snapshot, vector_scale, vector_dim: int | None, tell: Report
) -> Shards:
    """The model's pass over the pool, split among the free workers on ``queue``: each
    builds its rows from the feature directory as this job's are built."""
    root = feature_root()
    spec = {
        "project": snap.name,
        "directory": str(project_dir(root, snap.project)) if root is not None else None,
        "generation": snap.fingerprint["pool"],
        "vectorizer": snap.al["vectorizer_name"],
        "vectorizer_params": snap.al["vectorizer_params"],
        "vector_dim": vector_dim,
        "vector_scale": vector_scale.to_dict() if vector_scale is not None else None,
    }

    def run(trained: ModelVersion, xc, candidates: np.ndarray) -> tuple[np.ndarray, Any, dict]:
        return model_pass(
            store.redis,
            queue,
            spec,
            trained.state,
            trained.model,
            xc,
            candidates,
            lambda done, count: tell("scoring", 0.6 + 0.05 * done / count),
        )

    return run


def snapshot(store: Store, project_name: str, schema_name: str) -> Snapshot:
    project = store.get_project(project_name)
    fingerprint = {
        "pool": store.pool_generation(project_name),
        "labels": store.label_revision(project_name, schema_name),
        "settings": project["settings_rev"],
    }
    schema = find_schema(project, schema_name)
    return Snapshot(project, schema, active_learning(project), fingerprint, seed_of(fingerprint))


def seed_of(fingerprint: dict) -> int:
    """The seed of every random choice a refresh makes, from what its ranking is built from."""
    return int(hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:8], 16)


def load_pool(store: Store, snap: Snapshot, known: Unchanged | None = None) -> Pool:
    """The pool's items, labels and draws. With ``known`` (a feature cache's rows of the
    pool as it is now) the items' texts and vectors are not read."""
    vectors = None
    if known is not None:
        ids, texts, vectors = known.ids, [], known.vectors
    else:
        # in id order: Redis hands a hash out in an order of its own, which a restart or a
        # rehash changes, and the ranking's random choices depend on the rows' order
        docs = sorted(store.iter_items(snap.name), key=lambda pair: pair[0])
        ids = [item_id for item_id, _ in docs]
        texts = [doc.get("text") or "" for _, doc in docs]
        del docs
    if vectors is None:
        vectors = store.load_vectors(snap.name, ids, snap.project.get("vector_dim"))
    return Pool(
        ids,
        texts,
        vectors,
        store.load_labels(snap.name, snap.schema["name"]),
        store.eval_items(snap.name, snap.schema["name"])
        | set(store.eval_sample(snap.name, snap.schema["name"])),
        store.random_draws(snap.name, snap.schema["name"]),
        store.load_label_times(snap.name, snap.schema["name"]),
    )


def pool_features(
    cache: FeatureCache, snap: Snapshot, pool: Pool, report: Report, generation: int | None = None
) -> tuple[Any, CacheReport]:
    return cache.pool_features(
        pool.ids,
        pool.texts,
        pool.vectors,
        snap.al["vectorizer_name"],
        lambda f: report("features", 0.2 + 0.2 * f),
        snap.al["vectorizer_params"],
        generation,
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
        pool.label_times,
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
    # the evaluation sample is never ranked: active learning must not choose its items
    sampled = np.array([i in pool.eval_ids for i in pool.ids], dtype=bool)
    return TrainingSet(rows, targets, train, held_out, np.flatnonzero(~done & ~sampled))


def eval_sample_draw(snap: Snapshot, pool: Pool, rng: np.random.Generator) -> list[str]:
    """Items to add to the evaluation sample: a uniform draw from the unlabelled pool that
    brings it to ``eval_size`` (at most ``EVAL_MAX_POOL_SHARE`` of the pool). The first
    refresh draws the whole sample, before anything is ranked; later ones only top it up
    when ``eval_size`` grows or the pool does."""
    if snap.al["eval_fraction"] <= 0:
        return []
    target = min(int(snap.al["eval_size"]), int(defaults.EVAL_MAX_POOL_SHARE * len(pool.ids)))
    have = sum(1 for i in pool.ids if i in pool.eval_ids)
    if have >= target:
        return []
    eligible = [i for i in pool.ids if i not in pool.eval_ids and i not in pool.labels]
    picked = rng.choice(len(eligible), size=min(target - have, len(eligible)), replace=False)
    return [eligible[k] for k in picked]


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
    index = {item_id: i for i, item_id in enumerate(pool.ids)}
    stop_ids = stop_set(pool.ids, snap.schema["name"])
    stop_preds = dict(zip(stop_ids, predict_labels(model, x[[index[i] for i in stop_ids]]), strict=True))
    old_preds = (
        store.stop_predictions(snap.name, snap.schema["name"], previous["version"]) if previous else None
    )
    found = agreement_with_support(old_preds, stop_preds, seed=snap.seed)
    meta["stop_kappa"], meta["stop_kappa_interval"], meta["stop_kappa_support"] = found or (None, None, None)
    meta["version"] = store.next_model_version(snap.name, snap.schema["name"])
    trained.meta, trained.stop_predictions = meta, stop_preds
    return trained


def score(
    snap: Snapshot,
    labelled: TrainingSet,
    trained: ModelVersion | None,
    x,
    rng: np.random.Generator,
    report: Report,
    leased: int = 0,
    shards: Shards | None = None,
) -> Scores:
    """Rank the candidates. ``shards`` splits the model's pass over them among free
    workers (``workers.shards``); without it the pass runs here."""
    xc = x[labelled.candidates]
    strategy = snap.al["query_strategy"] if snap.active else "random"
    model = trained.model if trained is not None else None
    proba = space = None
    split: dict = {"shards": 1}
    if trained is not None:
        if shards is not None:
            proba, space, split = shards(trained, xc, labelled.candidates)
        else:
            proba, space, split = whole_pass(trained.model, xc)
    member_proba = None
    multi = snap.schema["multi_label"]
    if model is not None and not multi and needs_ensemble(strategy, strategy_params(snap.al, xc)):
        report("training ensemble", 0.65)
        member_proba = committee(snap, labelled, x, xc, model)
    labelled_x = x[np.array(labelled.rows)] if labelled.rows else None
    if model is not None:
        # distances in the model's own space: a linear model's features, a forest's leaves
        xc = space
        labelled_x = model.space(labelled_x) if labelled_x is not None else None
    depth = batch_aware_depth(snap.al, leased)
    ranking = rank_pool(strategy, xc, labelled_x, snap.al, rng, proba, member_proba, multi, depth)
    if model is not None and proba is not None and balances(snap.al, strategy, multi):
        ranking = balanced(ranking, model.classes, labelled.targets, proba, depth)
    return Scores(ranking, proba, split)


def committee(snap: Snapshot, labelled: TrainingSet, x, xc, model: Model) -> np.ndarray:
    """(members, candidates, classes): the committee BALD scores. A forest's own sub-forests;
    for other models, bootstrap replicas trained on what the model learns from (evaluation
    items stay out)."""
    members = snap.al["bald_params"]["n_estimators"]
    if model.has_committee:
        return model.committee_proba(xc, members)
    replicas = train_ensemble(
        x[np.array(labelled.train_rows)],
        labelled.train_targets,
        members,
        snap.al["bald_params"]["bootstrap_fraction"],
        snap.seed,
        model.kind,
        snap.al["classifier_params"] if model.kind == snap.al["classifier_name"] else None,
    )
    return np.stack([aligned_proba(m, xc, model.classes) for m in replicas])


def explore_order(rng: np.random.Generator, candidates: int) -> np.ndarray:
    """The ranking's random list (exploration and evaluation draws walk it): positions of
    the candidates in random order, at most ``EXPLORE_DEPTH``."""
    return rng.permutation(candidates)[: defaults.EXPLORE_DEPTH]


def head_size(al: dict, annotators: int, leased: int) -> int:
    """How many of the ranked items a ranking publishes: what ``GET /next`` can hand out
    before the next ranking replaces it, ``RANKING_HEAD_MARGIN`` times over, and never
    fewer than ``RANKING_HEAD_MIN``.

    Between two rankings the annotators label about ``update_frequency`` items each (the
    next retrain is triggered by ``update_frequency`` labels from everyone, but runs while
    they go on labelling), and hold ``leased`` items; skipped and lapsed items come back
    into the head through the ranking's returned set. Items past the head are served from
    the random list, then drawn at random, until the next ranking."""
    wanted = defaults.RANKING_HEAD_MARGIN * (al["update_frequency"] * max(annotators, 1) + leased)
    return max(defaults.RANKING_HEAD_MIN, wanted)


def publish(
    store: Store,
    snap: Snapshot,
    pool: Pool,
    labelled: TrainingSet,
    trained: ModelVersion | None,
    scores: Scores,
    rng: np.random.Generator,
    featurizer: Featurizer | None = None,
    leased: int = 0,
) -> str:
    """Publish the ranking with its model version; returns the ranking id. ``featurizer``
    (the feature parts the model was trained on) is kept with the model, for predictions on
    items outside the pool.

    Only the head of the order is published (:func:`head_size`), with the random list: a
    pool of a million items publishes tens of thousands of entries, not a million."""
    candidates = labelled.candidates
    full = scores.ranking.order
    annotators = len(store.activity(snap.name, snap.schema["name"]))
    order = full[: head_size(snap.al, annotators, leased)]
    explore = explore_order(rng, len(candidates))
    preds = conf = None
    if trained is not None and scores.probabilities is not None:
        preds, conf = predictions(trained.model, scores.probabilities)
    rank = np.empty(len(full), dtype=np.int64)
    rank[full] = np.arange(1, len(full) + 1)
    entries = {
        pool.ids[candidates[c]]: RankingEntry(
            float(scores.ranking.scores[c]),
            int(rank[c]),
            preds[c] if preds is not None else None,
            float(conf[c]) if conf is not None else None,
        )
        for c in np.unique(np.concatenate([order, explore]))
    }
    meta = {
        "strategy": scores.ranking.strategy,
        "model_version": trained.version if trained is not None else None,
        "fingerprint": snap.fingerprint,
        "pool_size": len(pool.ids),
        "ranked": len(full),
        "head": len(order),
        "labelled": len(labelled.rows),
        "labelled_items": len(pool.labels),  # with any label, for the metrics' lag
        # names this model's state among every project's, for processes that keep it loaded
        "model_token": uuid.uuid4().hex if trained is not None else None,
    }
    schema = snap.schema["name"]
    if trained is not None:
        # the model's state first: a ranking that names a version can always load it
        if featurizer is not None:
            store.save_featurizer(snap.name, schema, trained.version, featurizer.to_bytes())
        store.save_model_state(snap.name, schema, trained.version, trained.state)
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
    queue: Queue | None = None,
) -> dict:
    """Train (when the schema has enough labels) and publish a ranking of its unlabelled pool.
    With ``queue`` (the job's), a large pool's scoring is shared with the free workers on it."""
    started = time.perf_counter()
    stages: dict[str, float] = {}
    heard = report or (lambda stage, fraction: None)
    at = [("snapshot", started)]  # the stage under way and when it began

    def tell(stage: str, fraction: float) -> None:
        # each stage's seconds, for the job's result; sub-stage reports count to their stage
        name, since = at[0]
        if stage != name:
            now = time.perf_counter()
            stages[name] = round(stages.get(name, 0.0) + now - since, 3)
            at[0] = (stage, now)
        heard(stage, fraction)

    with ExitStack() as held:
        # one refresh of a schema at a time, from its snapshot to its publication
        held.enter_context(store.refresh_lock(project_name, schema_name))
        snap = snapshot(store, project_name, schema_name)
        current = store.ranking_meta(project_name, schema_name)
        if current is not None and current.get("fingerprint") == snap.fingerprint:
            return {
                "status": "up_to_date",
                "ranking_id": current["ranking_id"],
                "model_version": current["model_version"],
            }
        rng = np.random.default_rng(snap.seed)

        tell("loading", 0.05)
        cache = cache or feature_cache(store, project_name)
        generation = snap.fingerprint["pool"]
        # no upload since the rows were stamped: the pool's ids come with them, no text is read
        has_vectors = bool(snap.project.get("vector_dim"))
        known = cache.unchanged(
            generation, snap.al["vectorizer_name"], snap.al["vectorizer_params"], has_vectors
        )
        pool = load_pool(store, snap, known)
        tell("features", 0.2)
        if known is not None:
            x, cache_report = cache.assemble(known, pool.vectors)
        else:
            if pool.vectors is not None:
                cache.keep_vectors(pool.ids, pool.vectors, generation)
            x, cache_report = pool_features(cache, snap, pool, tell, generation)
        drawn = eval_sample_draw(snap, pool, rng)
        store.extend_eval_sample(project_name, schema_name, drawn)
        pool.eval_ids |= set(drawn)
        labelled = training_set(snap, pool)
        tell("training", 0.4)
        trained = train(store, snap, pool, labelled, x)
        tell("scoring", 0.6)
        leased = store.counts(snap.project, schema_name)["leased"]
        vector_dim = pool.vectors.shape[1] if pool.vectors is not None else None
        shards = None
        if queue is not None:
            shards = sharded_pass(store, queue, snap, cache_report.vector_scale, vector_dim, tell)
        scores = score(snap, labelled, trained, x, rng, tell, leased, shards)
        tell("publishing", 0.8)
        featurizer = Featurizer(cache_report.parts, vector_dim, cache_report.vector_scale)
        rid = publish(store, snap, pool, labelled, trained, scores, rng, featurizer, leased)
        # within the lock: a refresh's queues never overwrite a newer refresh's
        tell("quality", 0.85)
        assess_labels(store, snap, pool, labelled, x, trained)
        held.close()  # the gain needs no lock: the next refresh may start
    if trained is not None and gain_due(store, snap, len(labelled.train)):
        tell("gain", 0.9)
        estimate_gain(store, snap, pool, labelled, x, trained)
    tell("done", 1.0)
    return {
        "status": "published",
        "ranking_id": rid,
        "strategy": scores.ranking.strategy,
        "model_version": trained.version if trained is not None else None,
        "ranked": len(scores.ranking.order),
        "features": {
            "reused": cache_report.reused,
            "computed": cache_report.computed,
            "texts_read": known is None,  # False: the pool was unchanged, its rows known
        },
        "scoring": scores.shards,
        "seconds": round(time.perf_counter() - started, 3),
        "stage_seconds": stages,
    }


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
