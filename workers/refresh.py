"""Bringing a schema's ranking up to date, in named stages.

``refresh`` runs them in order, each taking and giving a small dataclass:

1. ``snapshot``: the project, its settings and the fingerprint of what the ranking will be
   built from (pool generation, label revision, settings revision). A ranking with the same
   fingerprint is already published: nothing to do.
2. ``load_pool`` and ``pool_features``: item ids, texts and vectors; their features, from
   the feature cache. When no upload has changed the pool since the cache's rows were
   stamped, the ids and vectors come with the rows and no text is read.
3. ``training_set``: each labelled item's aggregated label, which items are done (labelled by
   enough annotators), and which labels train the model and which measure it (the random
   evaluation sample). Stages 1-3 live in ``workers.snapshot``.
4. ``train``: the model and its version's metadata (evaluation, stop-set agreement);
   ``workers.training``.
5. ``score``: probabilities for the unlabelled items (split among free workers for a large
   pool, ``workers.shards``) and the strategy's order; ``workers.scoring``.
6. ``publish``: the model's state, then the ranking, then the version is listed, so a
   version is never visible before the ranking that uses it; ``workers.scoring``.

Once the ranking is out, the labels are assessed (``assess_labels``: agreement, label
issues, the review and overlap queues; ``workers.quality``), then the version's gain over
random is estimated when due.

Every random choice is seeded from the fingerprint, so a rerun on the same inputs gives the
same ranking.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import numpy as np
from rq import Queue

from workers.features import FeatureCache, Featurizer
from workers.features.files import feature_cache
from workers.scoring import publish, score, sharded_pass
from workers.snapshot import Report, eval_sample_draw, read_pool, snapshot, training_set
from workers.store import Store
from workers.training import assess_labels, compare_if_due, estimate_gain, gain_due, train


class StageClock:
    """Hears a refresh's stages: passes each report on, and counts each stage's seconds for
    the job's result (a sub-stage's reports count to their stage)."""

    def __init__(self, report: Report | None) -> None:
        self.heard = report or (lambda stage, fraction: None)
        self.stages: dict[str, float] = {}
        self.at = ("snapshot", time.perf_counter())  # the stage under way and when it began

    def __call__(self, stage: str, fraction: float) -> None:
        name, since = self.at
        if stage != name:
            now = time.perf_counter()
            self.stages[name] = round(self.stages.get(name, 0.0) + now - since, 3)
            self.at = (stage, now)
        self.heard(stage, fraction)


def refresh(
    store: Store,
    project_name: str,
    schema_name: str,
    report: Report | None = None,
    cache: FeatureCache | None = None,
    queue: Queue | None = None,
    job_id: str | None = None,
) -> dict:
    """Train (when the schema has enough labels) and publish a ranking of its unlabelled pool.
    With ``queue`` (the job's), a large pool's scoring is shared with the free workers on it;
    ``job_id`` names the job that holds the schema's refresh lock."""
    started = time.perf_counter()
    tell = StageClock(report)

    with ExitStack() as held:
        # one refresh of a schema at a time, from its snapshot to its publication
        held.enter_context(store.refresh_lock(project_name, schema_name, owner=job_id))
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
        pool, x, cache_report, texts_read = read_pool(
            store, snap, cache or feature_cache(store, project_name), tell
        )
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
        held.close()  # what follows needs no lock: the next refresh may start
    if trained is not None:
        tell("model choice", 0.87)
        compare_if_due(store, snap, pool, labelled, x, trained)
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
            "texts_read": texts_read,  # False: the pool was unchanged, its rows known
        },
        "scoring": scores.shards,
        "seconds": round(time.perf_counter() - started, 3),
        "stage_seconds": tell.stages,
    }
