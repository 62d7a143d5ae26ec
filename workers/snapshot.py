"""A refresh's inputs (``workers.refresh``): the snapshot of a schema's project and
settings with the fingerprint its ranking is built from, the pool with its labels and
draws, its features from the cache, and the training set (each labelled item's aggregated
label, which items are done, which labels train and which measure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers import defaults
from workers.aggregation import resolve
from workers.features import CacheReport, FeatureCache
from workers.features.cache import Unchanged
from workers.settings import active_learning, active_schemas, find_schema
from workers.store import Store

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

    def served(self, with_eval: bool) -> tuple[list[int], list]:
        """Rows and labels the served model learns from: the training labels and, with
        ``with_eval`` (``train_on_eval``), the labelled evaluation items."""
        keep = self.train + (self.held_out if with_eval else [])
        return [self.rows[k] for k in keep], [self.targets[k] for k in keep]


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
    texts: list[str] = []
    if known is not None:
        ids, vectors = known.ids, known.vectors
    else:
        ids, texts = id_ordered_texts(store, snap.name)
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


def id_ordered_texts(store: Store, project: str) -> tuple[list[str], list[str]]:
    """Every item's id and text, in id order: Redis hands a hash out in an order of its own,
    which a restart or a rehash changes, and the ranking's random choices depend on the
    rows' order. Only ids and texts are kept: a million items' documents would hold a
    gigabyte."""
    ids: list[str] = []
    texts: list[str] = []
    for item_id, doc in store.iter_items(project):
        ids.append(item_id)
        texts.append(doc.get("text") or "")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return [ids[k] for k in order], [texts[k] for k in order]


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
    # the random evaluation sample: measured on, never trained on by the measured fit
    # (``workers.training.fit_version`` serves a fit with it when the project says so)
    held_out = [k for k, r in enumerate(rows) if pool.ids[r] in pool.eval_ids]
    train = [k for k in range(len(rows)) if pool.ids[rows[k]] not in pool.eval_ids]
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


def read_pool(
    store: Store, snap: Snapshot, cache: FeatureCache, report: Report
) -> tuple[Pool, Any, CacheReport, bool]:
    """The pool and its feature matrix, and whether its texts were read. While no upload has
    changed the pool since its rows were stamped, its ids and vectors come with the rows and
    no text is read; otherwise everything is read, the vectors kept beside the rows, and
    the rows the cache lacks computed."""
    generation = snap.fingerprint["pool"]
    has_vectors = bool(snap.project.get("vector_dim"))
    known = cache.unchanged(generation, snap.al["vectorizer_name"], snap.al["vectorizer_params"], has_vectors)
    pool = load_pool(store, snap, known)
    report("features", 0.2)
    if known is not None:
        x, cache_report = cache.assemble(known, pool.vectors)
        return pool, x, cache_report, False
    if pool.vectors is not None:
        cache.keep_vectors(pool.ids, pool.vectors, generation)
    x, cache_report = pool_features(cache, snap, pool, report, generation)
    return pool, x, cache_report, True
