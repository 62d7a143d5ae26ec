"""A refresh's ranking (``workers.refresh``): the model's pass over the candidates
(split among free workers for a large pool, ``workers.shards``), the strategy's order, and
its publication: the head of the order and the random list, with the model's state."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rq import Queue

from workers import defaults
from workers.ensembles import train_ensemble
from workers.features import Featurizer
from workers.features.columns import by_blocks, take_rows
from workers.features.files import feature_root, project_dir
from workers.models import (
    Model,
    aligned_proba,
    predictions,
)
from workers.ranking import Ranking, balanced, balances, batch_aware_depth, rank_pool, strategy_params
from workers.shards import model_pass, whole_pass
from workers.snapshot import Pool, Report, Snapshot, TrainingSet
from workers.store import RankingEntry, Store
from workers.strategies import needs_ensemble
from workers.training import ModelVersion


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
    xc = take_rows(x, labelled.candidates)
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
    for other models, bootstrap replicas trained on what the served model learns from."""
    members = snap.al["bald_params"]["n_estimators"]
    if model.has_committee:
        return by_blocks(lambda rows: model.committee_proba(rows, members), xc, axis=1)
    rows, targets = labelled.served(snap.al["train_on_eval"])
    replicas = train_ensemble(
        x[np.array(rows)],
        targets,
        members,
        snap.al["bald_params"]["bootstrap_fraction"],
        snap.seed,
        model.kind,
        snap.al["classifier_params"] if model.kind == snap.al["classifier_name"] else None,
    )
    return np.stack(
        [by_blocks(lambda rows, member=m: aligned_proba(member, rows, model.classes), xc) for m in replicas]
    )


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
