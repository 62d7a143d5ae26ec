"""RQ job functions: train a schema's model, score its pool, publish a ranking.

Jobs take plain values (project and schema names), load their state from Redis, and are
idempotent: a run whose inputs (pool, labels, settings) match the published ranking's does
nothing, and every random choice is seeded from those inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections import Counter
from typing import Any

import numpy as np
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from workers import defaults
from workers.exceptions import InvalidInput, NotFound, NotTrainable
from workers.features import FeatureCache
from workers.models import (
    LinearModel,
    aligned_proba,
    predictions,
    train_ensemble,
    train_multi_label,
    train_single_label,
)
from workers.queueing import request_refresh
from workers.ranking import rank_pool, strategy_params
from workers.settings import active_learning, active_schemas, find_schema
from workers.store import Store
from workers.strategies import needs_ensemble

log = logging.getLogger(__name__)


def aggregate(by_annotator: dict[str, Any], labels: list[str], multi_label: bool):
    """Majority vote over annotators; ties go to the label listed first in the schema.

    Multi-label: a label is on when more than half of the annotators chose it.
    """
    values = list(by_annotator.values())
    if multi_label:
        counts = Counter(v for value in values for v in value)
        return [lab for lab in labels if counts[lab] * 2 > len(values)]
    counts = Counter(values)
    return max(labels, key=lambda lab: (counts[lab], -labels.index(lab)))


def evaluate_on(
    model: LinearModel, x, rows: list[int], targets: list, held_out: list[int], multi_label: bool
) -> dict:
    """Accuracy and macro-F1 on the labelled items of the random evaluation sample."""
    if not held_out:
        return {"size": 0, "accuracy": None, "macro_f1": None}
    xe = x[np.array([rows[k] for k in held_out])]
    truth = [targets[k] for k in held_out]
    pred = predict_labels(model, xe)
    if multi_label:
        acc = float(np.mean([set(p) == set(t) for p, t in zip(pred, truth, strict=True)]))
        f1 = None
    else:
        acc = float(accuracy_score(truth, pred))
        f1 = float(f1_score(truth, pred, average="macro"))
    return {"size": len(held_out), "accuracy": acc, "macro_f1": f1}


def predict_labels(model: LinearModel, x) -> list:
    if x.shape[0] == 0:
        return []
    labels, _ = predictions(model, model.predict_proba(x))
    return labels


def stop_set(ids: list[str], schema: str) -> list[str]:
    """A fixed random sample of the pool (by a hash of each id), stable as the pool grows."""
    keyed = sorted(ids, key=lambda i: zlib.crc32(f"{schema}\x00{i}".encode()))
    return keyed[: defaults.STOP_SET_SIZE]


def agreement(old: dict | None, new: dict) -> float | None:
    """Cohen's kappa between two models' predictions on the stop set items both saw."""
    if not old:
        return None
    common = [i for i in new if i in old]
    if not common:
        return None
    a = [json.dumps(old[i], sort_keys=True) for i in common]
    b = [json.dumps(new[i], sort_keys=True) for i in common]
    if a == b:
        return 1.0
    kappa = cohen_kappa_score(a, b)
    return float(kappa) if np.isfinite(kappa) else 0.0


def _report(stage: str, fraction: float) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = {"stage": stage, "fraction": round(fraction, 3)}
        job.save_meta()


def _follow_up(store: Store, project_name: str, schema_name: str) -> None:
    """Queue the job that carries on from the features a timed-out job left in the cache.

    Only a job that saved some of its work asks for one, so a job that cannot get anywhere
    within ``JOB_TIMEOUT`` fails once instead of running again and again."""
    job = get_current_job()
    if job is None:
        return
    try:
        queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
        request_refresh(store, queue, project_name, schema_name, "features unfinished at the job timeout")
    except RedisError:
        log.exception("could not queue the follow-up job for %s/%s", project_name, schema_name)


def refresh_schema(project_name: str, schema_name: str) -> dict:
    """The RQ entry point: retrain and re-rank one schema of one project."""
    job = get_current_job()
    conn: Redis = job.connection if job is not None else Redis()
    store = Store(conn)
    job_id = job.id if job is not None else "inline"
    store.job_started(project_name, schema_name, job_id)
    try:
        try:
            project = store.get_project(project_name)
            find_schema(project, schema_name)
        except (NotFound, InvalidInput) as exc:
            # the project or schema went away while the job waited: nothing left to rank
            return {"status": "skipped", "reason": str(exc)}
        try:
            return refresh(store, project_name, schema_name)
        except Exception as exc:
            # the job fails and says why; the ranking in service stays, and the next trigger
            # (labels, an upload, POST .../train) tries again
            if job is not None:
                job.meta["error"] = f"{type(exc).__name__}: {exc}"
                job.save_meta()
                # retries are for lost workers: the same inputs would fail the same way, and a
                # job out of time that saved some features has queued its own follow-up
                job.retries_left = 0
            raise
    finally:
        store.job_ended(project_name, schema_name, job_id)


def refresh(store: Store, project_name: str, schema_name: str) -> dict:
    """Train (when the schema has enough labels) and publish a ranking of its unlabelled pool."""
    started = time.perf_counter()
    project = store.get_project(project_name)
    schema = find_schema(project, schema_name)
    al = active_learning(project)
    fingerprint = {
        "pool": store.pool_generation(project_name),
        "labels": store.label_revision(project_name, schema_name),
        "settings": project["settings_rev"],
    }
    current = store.ranking_meta(project_name, schema_name)
    if current is not None and current.get("fingerprint") == fingerprint:
        return {
            "status": "up_to_date",
            "ranking_id": current["ranking_id"],
            "model_version": current["model_version"],
        }
    seed = int(hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)

    _report("loading", 0.05)
    ids: list[str] = []
    texts: list[str] = []
    for item_id, doc in store.iter_items(project_name):
        ids.append(item_id)
        texts.append(doc.get("text") or "")
    vectors = store.load_vectors(project_name, ids, project.get("vector_dim"))
    raw_labels = store.load_labels(project_name, schema_name)

    _report("features", 0.2)
    cache = FeatureCache(
        lambda part: store.feature_rows(project_name, part),
        lambda part, blob: store.save_feature_rows(project_name, part, blob),
    )
    try:
        x, cache_report = cache.pool_features(
            ids, texts, vectors, al["vectorizer_name"], lambda f: _report("features", 0.2 + 0.2 * f)
        )
    except JobTimeoutException:
        if cache.checkpoints:
            _follow_up(store, project_name, schema_name)
        raise
    index = {item_id: i for i, item_id in enumerate(ids)}
    needed = al["min_annotations_per_instance"]
    labelled_rows, targets, done = [], [], np.zeros(len(ids), dtype=bool)
    for item_id, by_annotator in raw_labels.items():
        row = index.get(item_id)
        if row is None or not by_annotator:
            continue
        labelled_rows.append(row)
        targets.append(aggregate(by_annotator, schema["labels"], schema["multi_label"]))
        done[row] = len(by_annotator) >= needed
    candidates = np.flatnonzero(~done)

    active = schema_name in active_schemas(project)
    # the random evaluation sample: measured on, and trained on only if the project says so
    eval_ids = store.eval_items(project_name, schema_name)
    held_out = [k for k, r in enumerate(labelled_rows) if ids[r] in eval_ids]
    train_idx = [
        k for k in range(len(labelled_rows)) if al["train_on_eval"] or ids[labelled_rows[k]] not in eval_ids
    ]
    train_rows = [labelled_rows[k] for k in train_idx]
    train_targets = [targets[k] for k in train_idx]
    model_meta: dict[str, Any] | None = None
    model: LinearModel | None = None
    stop_preds: dict[str, Any] = {}
    if active and len(train_rows) >= al["min_instances_for_training"]:
        _report("training", 0.4)
        t0 = time.perf_counter()
        xl = x[np.array(train_rows)]
        try:
            if schema["multi_label"]:
                model = train_multi_label(xl, train_targets, schema["labels"], seed)
            else:
                model = train_single_label(xl, train_targets, seed, al["classifier_name"])
        except NotTrainable:
            model = None
        if model is not None:
            previous = store.latest_model(project_name, schema_name)
            meta = {
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "training_size": len(train_rows),
                "class_counts": dict(
                    Counter(v for t in train_targets for v in (t if schema["multi_label"] else [t]))
                ),
                "train_seconds": round(time.perf_counter() - t0, 3),
                "temperature": model.temperature,
                "metrics": model.metrics,
                "classes": model.classes,
                "evaluation": evaluate_on(model, x, labelled_rows, targets, held_out, schema["multi_label"]),
            }
            stop_ids = stop_set(ids, schema_name)
            stop_preds = dict(
                zip(stop_ids, predict_labels(model, x[[index[i] for i in stop_ids]]), strict=True)
            )
            old_preds = (
                store.stop_predictions(project_name, schema_name, previous["version"]) if previous else None
            )
            meta["stop_kappa"] = agreement(old_preds, stop_preds)
            model_meta = {**meta, "version": store.next_model_version(project_name, schema_name)}

    _report("scoring", 0.6)
    xc = x[candidates]
    strategy = al["query_strategy"] if active else "random"
    proba = model.predict_proba(xc) if model is not None else None
    member_proba = None
    if model is not None and not schema["multi_label"] and needs_ensemble(strategy, strategy_params(al, xc)):
        _report("training ensemble", 0.65)
        members = train_ensemble(
            x[np.array(labelled_rows)],
            targets,
            al["bald_params"]["n_estimators"],
            al["bald_params"]["bootstrap_fraction"],
            seed,
            al["classifier_name"],
        )
        member_proba = np.stack([aligned_proba(m, xc, model.classes) for m in members])
    labelled_x = x[np.array(labelled_rows)] if labelled_rows else None
    ranking = rank_pool(strategy, xc, labelled_x, al, rng, proba, member_proba, schema["multi_label"])
    order, scores, strategy = ranking.order, ranking.scores, ranking.strategy

    _report("publishing", 0.8)
    preds, conf = predictions(model, proba) if model is not None and proba is not None else (None, None)
    info = {}
    for rank, c in enumerate(order):
        entry = [
            float(scores[c]),
            rank + 1,
            preds[c] if preds is not None else None,
            float(conf[c]) if conf is not None else None,
        ]
        info[ids[candidates[c]]] = json.dumps(entry)
    explore = rng.permutation(len(candidates))[: defaults.EXPLORE_DEPTH]
    meta = {
        "strategy": strategy,
        "model_version": model_meta["version"] if model_meta else None,
        "fingerprint": fingerprint,
        "pool_size": len(ids),
        "ranked": len(order),
        "labelled": len(labelled_rows),
    }
    if model is not None and model_meta is not None:
        # the model's state first: a ranking that names a version can always load it
        store.save_model_state(project_name, schema_name, model_meta["version"], model.to_bytes())
    rid = store.publish_ranking(
        project_name,
        schema_name,
        [ids[candidates[c]] for c in order],
        [ids[candidates[c]] for c in explore],
        info,
        meta,
    )
    if model_meta is not None:
        # listed only now, so a client polling GET .../models never sees a version that
        # GET .../next does not serve yet
        store.add_model(project_name, schema_name, model_meta)
        store.save_stop_predictions(project_name, schema_name, model_meta["version"], stop_preds)
    _report("done", 1.0)
    return {
        "status": "published",
        "ranking_id": rid,
        "strategy": strategy,
        "model_version": meta["model_version"],
        "ranked": len(order),
        "features": {"reused": cache_report.reused, "computed": cache_report.computed},
        "seconds": round(time.perf_counter() - started, 3),
    }
