"""The served loop, replayed: what a team labelling through the service gets.

A replay does what the service and one annotation tool do together, through the service's
own code:

- the pool is uploaded (in ``uploads`` requests) and the cold start ranks it: ``refresh``'s
  stages (features, training set, model, scores, the random list), seeded as the service
  seeds them, from the pool's generation, the label revision and the settings revision;
- the tool asks for a batch, filled as ``GET /next`` fills it: the evaluation share walks
  the evaluation sample (drawn by the first refresh), the exploration share
  (``workers.batches.share``) the ranking's random list, the rest comes from the ranking's
  order;
- it labels every item it was handed, in one request; the retrain rule
  (``labels_call_for_retrain``) decides whether a new ranking is made;
- it asks again once that ranking is served (people take longer to label a batch than a
  retrain takes: ``bench/freshness.py``).

After each retrain, the serving model is measured on the test split, with the features the
prediction endpoint gives items outside the pool. The service reads its pool in id order,
and so does the replay: ``bench/served_loop.py`` drives a running service the same way over
HTTP and gets the same batches and the same accuracies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from workers.batches import share
from workers.features import FeatureCache, Featurizer
from workers.models import Model, predictions
from workers.queueing import labels_call_for_retrain
from workers.scoring import explore_order, score
from workers.settings import active_learning, resolve_active_learning
from workers.snapshot import Pool, Snapshot, eval_sample_draw, pool_features, seed_of, training_set
from workers.training import ModelVersion, compare, compare_due, fit_version, gain

SCHEMA = "label"
ANNOTATOR = "replay"
SETTINGS_REVISION = 1
"""A new project's settings revision."""


@dataclass
class ServedPool:
    """A replay's pool: item ids, texts or vectors, and each item's true label."""

    ids: list[str]
    texts: list[str]
    vectors: np.ndarray | None
    truth: dict[str, str]

    def __post_init__(self) -> None:
        # the service reads its pool in id order
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        self.ids = [self.ids[i] for i in order]
        self.texts = [self.texts[i] for i in order]
        if self.vectors is not None:
            self.vectors = self.vectors[order]


@dataclass
class ServedPoint:
    """The serving model after a retrain, measured on the test split."""

    labels: int
    accuracy: float
    macro_f1: float
    model_version: int
    labelled_ids: list[str]
    eval_ids: list[str] = field(default_factory=list)
    """Labelled items of the evaluation sample."""
    random_ids: list[str] = field(default_factory=list)
    """Labelled items handed out as uniform draws (the exploration share)."""
    gain: dict | None = None
    """The gain over random the service would report for this model (when asked for)."""
    measured_accuracy: float | None = None
    """Test accuracy of the version's fit without the evaluation sample, which the gain is
    estimated for (when gains are asked for)."""


@dataclass
class Project:
    """What the service holds for one project while the replay runs."""

    doc: dict
    generation: int
    revision: int = 0
    since: int = 0
    asked: int = 0
    models: int = 0
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_ids: set[str] = field(default_factory=set)
    eval_sample: list[str] = field(default_factory=list)
    random_ids: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)
    explore: list[str] = field(default_factory=list)
    heads: dict[str, int] = field(default_factory=lambda: {"order": 0, "explore": 0})
    model: Model | None = None
    featurizer: Featurizer | None = None
    choice: dict | None = None
    """``auto``'s last comparison of model kinds, which the retrains after it train."""
    trained_on: tuple | None = None
    """The last refresh that trained a model: its snapshot, pool, training set, features and
    the fit measured on the evaluation sample."""

    @property
    def al(self) -> dict:
        return active_learning(self.doc)


def project_doc(labels: list[str], al: dict, vectors: bool = False) -> dict:
    """The project a replay stands for, as the service stores it (the first upload with
    vectors records their length in the project: one more settings revision)."""
    schemas = [{"name": SCHEMA, "labels": labels, "multi_label": False}]
    return {
        "name": "replay",
        "schemas": schemas,
        "active_learning": resolve_active_learning(schemas, al),
        "settings_rev": SETTINGS_REVISION + int(vectors),
    }


def refresh(project: Project, pool: ServedPool, cache: FeatureCache) -> None:
    """The refresh job, on the replay's state: a new ranking, and a new model when the
    labels allow one."""
    doc = project.doc
    fingerprint = {"pool": project.generation, "labels": project.revision, "settings": doc["settings_rev"]}
    snap = Snapshot(doc, doc["schemas"][0], active_learning(doc), fingerprint, seed_of(fingerprint))
    rng = np.random.default_rng(snap.seed)
    state = Pool(pool.ids, pool.texts, pool.vectors, project.labels, project.eval_ids, project.random_ids)
    x, report = pool_features(cache, snap, state, lambda stage, fraction: None)
    drawn = eval_sample_draw(snap, state, rng)
    project.eval_sample += drawn
    project.eval_ids |= set(drawn)
    labelled = training_set(snap, state)
    # the last model's metrics: under auto, its choice of kind stands as in the service
    fitted = fit_version(snap, labelled, x, project.choice)
    trained = model = None
    if fitted is not None:
        project.models += 1
        trained = ModelVersion.stored(fitted[0], {"version": project.models}, {}, fitted[1])
        model = trained.model
    scores = score(snap, labelled, trained, x, rng, lambda stage, fraction: None, 0)
    candidates = labelled.candidates
    project.order = [pool.ids[candidates[c]] for c in scores.ranking.order]
    project.explore = [pool.ids[candidates[c]] for c in explore_order(rng, len(candidates))]
    project.heads = {"order": 0, "explore": 0, "sample": 0}
    if model is not None:
        project.model = model
        dim = pool.vectors.shape[1] if pool.vectors is not None else None
        project.featurizer = Featurizer(report.parts, dim, report.vector_scale)
        assert trained is not None
        project.trained_on = (snap, state, labelled, x, trained.measured_model)
        # as the service does once the ranking is out
        if compare_due(snap, labelled, x, model.metrics.get("model_choice")):
            project.choice = compare(snap, state, labelled, x, model.metrics.get("model_choice"))


def served_gain(project: Project) -> dict:
    """The gain over random of the serving model, as the service's refresh computes it."""
    assert project.model is not None and project.trained_on is not None
    snap, state, labelled, x, measured = project.trained_on
    return gain(snap, state, labelled, x, measured)


def next_batch(project: Project, size: int) -> list[tuple[str, str]]:
    """``GET /next`` for the replay's one annotator, who holds no lease: (item, source)."""
    al = project.al
    n_explore = share(project.asked, size, al["random_sample_percent"])
    n_eval = share(project.asked, size, al["eval_fraction"])
    project.asked += size
    needed = al["min_annotations_per_instance"]
    out: list[tuple[str, str]] = []
    chosen: set[str] = set()

    def walk(name: str, want: int, source: str) -> None:
        items = {"order": project.order, "explore": project.explore, "sample": project.eval_sample}[name]
        head, got = project.heads.get(name, 0), 0
        while got < want and head < len(items):
            item = items[head]
            head += 1
            by_annotator = project.labels.get(item, {})
            if len(by_annotator) < needed and ANNOTATOR not in by_annotator:
                if item not in chosen:
                    chosen.add(item)
                    out.append((item, source))
                    if source == "random":
                        project.random_ids.add(item)
                    elif source == "ranking":
                        project.random_ids.discard(item)
                    got += 1
        # the evaluation sample is walked from its first item still to label, each time
        project.heads[name] = head if name != "sample" else 0

    walk("sample", min(n_eval, size), "evaluation")
    walk("explore", min(n_explore, size - len(out)), "random")
    walk("order", size - len(out), "ranking")
    walk("explore", size - len(out), "random")
    return out


def label(project: Project, pool: ServedPool, items: list[str]) -> bool:
    """``POST /labels`` with the true labels of ``items``; whether it triggers a retrain."""
    new = sum(1 for item in items if ANNOTATOR not in project.labels.get(item, {}))
    for item in items:
        project.labels.setdefault(item, {})[ANNOTATOR] = pool.truth[item]
    project.revision += 1
    project.since += new
    retrain = labels_call_for_retrain(
        project.al, project.since, len(project.labels), new, has_model=lambda: project.models > 0
    )
    if retrain:
        project.since = 0
    return retrain


def measure(project: Project, test_texts: list[str], test_vectors, test_labels: list[str], model=None):
    """Accuracy and macro-F1 of the serving model (or ``model``) on the test split, as
    ``POST .../predict`` computes its predictions."""
    model = model or project.model
    assert model is not None and project.featurizer is not None
    x = project.featurizer.transform(test_texts, test_vectors)
    labels, _ = predictions(model, model.predict_proba(x))
    return accuracy_score(test_labels, labels), f1_score(test_labels, labels, average="macro")


def replay(
    pool: ServedPool,
    test_texts: list[str],
    test_vectors: list | None,
    test_labels: list[str],
    al: dict,
    batch_size: int,
    budget: int,
    uploads: int = 1,
    on_round: Callable[[int], None] | None = None,
    cache: FeatureCache | None = None,
    gain_every: int = 0,
) -> list[ServedPoint]:
    """The served loop until ``budget`` labels: one point per retrain that serves a model.

    ``al`` is the project's ``active_learning`` as created; ``uploads`` the requests the
    pool was uploaded in (each is a pool generation); ``cache`` the feature cache (one kept
    in memory by default; replays of one pool may share one); ``gain_every``: estimate the
    gain over random, as the service reports it, at the first model past every multiple of
    this many labels (0: never; the estimate trains dozens of models)."""
    labels = sorted(set(pool.truth.values()))
    project = Project(project_doc(labels, al, pool.vectors is not None), generation=uploads)
    if cache is None:
        blobs: dict[str, bytes] = {}
        cache = FeatureCache(blobs.get, blobs.__setitem__)
    refresh(project, pool, cache)
    points: list[ServedPoint] = []
    next_gain = gain_every
    while len(project.labels) < budget:
        batch = next_batch(project, min(batch_size, budget - len(project.labels)))
        if not batch:
            break  # the pool is used up
        if label(project, pool, [item for item, _ in batch]):
            before = project.models
            refresh(project, pool, cache)
            if project.models > before:
                acc, f1 = measure(project, test_texts, test_vectors, test_labels)
                labelled = list(project.labels)
                points.append(
                    ServedPoint(
                        len(labelled),
                        acc,
                        f1,
                        project.models,
                        labelled,
                        [i for i in labelled if i in project.eval_ids],
                        [i for i in labelled if i in project.random_ids],
                    )
                )
                if gain_every:
                    measured = project.trained_on[4] if project.trained_on else None
                    points[-1].measured_accuracy = (
                        acc
                        if measured is None or measured is project.model
                        else measure(project, test_texts, test_vectors, test_labels, measured)[0]
                    )
                if gain_every and len(labelled) >= next_gain:
                    points[-1].gain = served_gain(project)
                    next_gain = (len(labelled) // gain_every + 1) * gain_every
        if on_round:
            on_round(len(project.labels))
    return points
