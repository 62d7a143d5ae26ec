"""The model's pass over a large pool, split into shards that free workers score.

A retrain's scoring starts with one pass of the model over every candidate: its class
probabilities (and, for trees, the space distances are measured in). At a million items
that pass is the largest part of the scoring that can be split, so the job that retrains
splits it:

- it counts the workers waiting for work on its queue, and times the pass on a few
  thousand rows; with no free worker, a pool under two shards of ``SHARD_ROWS`` rows, or a
  pass that would take under ``SHARD_MIN_SECONDS`` (a linear model on TF-IDF rows, at a
  million items), the pass runs in the job as before, with nothing written anywhere;
- otherwise it writes a plan (the model as stored, the pool's generation, each shard's
  rows) beside the project in Redis, queues one RQ job per shard but the first, at the
  front of its queue, and scores the first shard itself;
- a shard is scored by whoever claims it first: a shard job on a free worker (this machine
  or another on the same Redis, reading the rows from the shared feature directory), or
  the retraining job once its own shard is done, so a busy worker never holds a retrain up;
- a claim is a lease that its holder renews every few seconds while it scores. A worker
  that dies stops renewing; once its lease has lapsed with no result, the retraining job
  scores that shard itself (``redone`` in the job's result).

The shards' probabilities are put back in candidate order, and the strategy's batch-aware
step runs on the whole pool as it does unsharded: a sharded ranking is the unsharded one.
Shards need the feature rows on disk (``ALRANK_FEATURE_DIR``) and a pool no upload has
changed since its rows were computed; otherwise the pass runs in the job.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import cast

import numpy as np
from redis import Redis
from rq import Queue, Worker, get_current_job

from workers import defaults
from workers.features.files import feature_cache, feature_root
from workers.models import load_model
from workers.store import Store, keys

log = logging.getLogger(__name__)

SHARD_FUNCTION = "workers.shards.score_shard"

PARENT = "retraining job"
"""The claim the retraining job writes on a shard it scores itself."""


def shard_count(candidates: int, helpers: int) -> int:
    """How many shards a pass over ``candidates`` rows takes with ``helpers`` free workers
    besides the retraining job: one per worker, each at least ``SHARD_ROWS``."""
    return max(1, min(helpers + 1, candidates // defaults.SHARD_ROWS))


def worth_sharding(model, xc) -> bool:
    """Whether the whole pass would take ``SHARD_MIN_SECONDS`` or more, timed on its first
    ``SHARD_PROBE_ROWS`` rows: a linear model's pass over a million TF-IDF rows takes about
    a fifth of a second, less than handing out a shard costs; a forest's takes a minute."""
    probe = min(xc.shape[0], defaults.SHARD_PROBE_ROWS)
    started = time.perf_counter()
    model.proba_and_space(xc[:probe])
    return (time.perf_counter() - started) * xc.shape[0] / probe >= defaults.SHARD_MIN_SECONDS


def bounds(candidates: int, count: int) -> list[tuple[int, int]]:
    """Each shard's [start, stop) in candidate order, of near-equal sizes."""
    edges = np.linspace(0, candidates, count + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def free_workers(queue: Queue) -> int:
    """Workers listening on ``queue`` with no job, besides this one."""
    me = get_current_job()
    mine = me.worker_name if me is not None else None
    return sum(1 for w in Worker.all(queue=queue) if w.get_state() == "idle" and w.name != mine)


def _encode(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _decode(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _get(conn: Redis, key: str) -> bytes | None:
    return cast(bytes | None, conn.get(key))


@dataclass
class Plan:
    """A sharded pass: where its keys are, what each shard covers, what came back."""

    project: str
    token: str
    spans: list[tuple[int, int]]
    results: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    by: dict[int, str] = field(default_factory=dict)

    def key(self, what: str) -> str:
        return keys.shard(self.project, self.token, what)


def claim(conn: Redis, project: str, token: str, index: int, holder: str, lease: float | None = None) -> bool:
    """Take shard ``index`` for ``holder`` if nobody holds it, for ``lease`` seconds."""
    ms = int(1000 * (lease or defaults.SHARD_LEASE_SECONDS))
    return bool(conn.set(keys.shard(project, token, f"claim:{index}"), holder, nx=True, px=ms))


class Lease(threading.Thread):
    """Renews a claim while its holder scores; a holder that dies lets it lapse."""

    def __init__(self, conn: Redis, key: str) -> None:
        super().__init__(daemon=True)
        self.conn, self.key, self.done = conn, key, threading.Event()

    def run(self) -> None:
        ms = int(1000 * defaults.SHARD_LEASE_SECONDS)
        while not self.done.wait(defaults.SHARD_LEASE_SECONDS / 4):
            self.conn.pexpire(self.key, ms)

    def __enter__(self) -> Lease:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()


def model_pass(
    conn: Redis,
    queue: Queue | None,
    spec: dict,
    model_state: bytes,
    model,
    xc,
    candidates: np.ndarray,
    report: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, object, dict]:
    """``model.proba_and_space(xc)`` for the candidates' rows ``xc`` (``candidates``: their
    rows in the pool), split over free workers when the pool is large and ``queue`` is
    given; with what it did (shards, and who scored them).

    ``spec`` holds what a shard job needs to build its rows as ``xc`` has them: the
    project, the pool's generation, the vectorizer and its settings, and the client
    vectors' dimension and scaling (``workers.features``)."""
    helpers = free_workers(queue) if queue is not None and feature_root() is not None else 0
    count = shard_count(len(candidates), helpers)
    if count < 2 or not worth_sharding(model, xc):
        return whole_pass(model, xc)
    started = time.perf_counter()
    plan = Plan(spec["project"], uuid.uuid4().hex, bounds(len(candidates), count))
    ttl = defaults.JOB_TIMEOUT
    with conn.pipeline(transaction=False) as pipe:
        pipe.set(plan.key("spec"), json.dumps(spec), ex=ttl)
        pipe.set(plan.key("model"), model_state, ex=ttl)
        for i, (a, b) in enumerate(plan.spans):
            pipe.set(plan.key(f"rows:{i}"), _encode(candidates[a:b].astype(np.int64)), ex=ttl)
        pipe.execute()
    assert queue is not None
    try:
        for i in range(1, count):
            queue.enqueue_call(
                SHARD_FUNCTION,
                args=(plan.project, plan.token, i),
                timeout=defaults.JOB_TIMEOUT,
                result_ttl=defaults.SHARD_RESULT_TTL,
                failure_ttl=defaults.SHARD_RESULT_TTL,
                at_front=True,
            )
        _gather(conn, plan, lambda i: _score(model, xc, plan.spans[i]), report)
    finally:
        conn.delete(*[plan.key(k) for k in _plan_keys(count)])
    proba = np.concatenate([plan.results[i][0] for i in range(count)])
    spaces = [plan.results[i][1] for i in range(count)]
    space = xc if spaces[0] is None else np.concatenate(spaces)  # type: ignore[arg-type]
    by = [plan.by[i] for i in range(count)]
    return (
        proba,
        space,
        {
            "shards": count,
            "by_workers": sum(not h.startswith(PARENT) for h in by),
            "redone": _redone(by),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def whole_pass(model, xc) -> tuple[np.ndarray, object, dict]:
    """The pass in one piece, here: what :func:`model_pass` does for a small pool."""
    started = time.perf_counter()
    proba, space = model.proba_and_space(xc)
    return proba, space, {"shards": 1, "seconds": round(time.perf_counter() - started, 3)}


def _plan_keys(count: int) -> list[str]:
    return ["spec", "model"] + [f"{k}:{i}" for i in range(count) for k in ("rows", "claim", "proba", "space")]


def _redone(by: list[str]) -> int:
    return sum(h == PARENT + " (redone)" for h in by)


def _score(model, xc, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    rows = xc[span[0] : span[1]]
    proba, space = model.proba_and_space(rows)
    return proba, None if space is rows else space


def _gather(
    conn: Redis,
    plan: Plan,
    local: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
    report: Callable[[int, int], None] | None,
) -> None:
    """Score the first shard and every shard nobody has claimed (the last first: the one
    a worker is least likely to have started), then collect the rest; a shard whose
    holder's lease lapsed with no result is scored here."""
    count = len(plan.spans)
    for i in [0, *range(count - 1, 0, -1)]:
        if claim(conn, plan.project, plan.token, i, PARENT):
            plan.results[i], plan.by[i] = local(i), PARENT
            if report:
                report(len(plan.results), count)
    while len(plan.results) < count:
        for i in range(count):
            if i in plan.results:
                continue
            proba = _get(conn, plan.key(f"proba:{i}"))
            if proba is not None:
                space = _get(conn, plan.key(f"space:{i}"))
                holder = _get(conn, plan.key(f"claim:{i}"))
                plan.results[i] = (_decode(proba), _decode(space) if space is not None else None)
                plan.by[i] = holder.decode() if holder else "worker"
            elif claim(conn, plan.project, plan.token, i, PARENT):
                # the holder's lease lapsed with no result: its worker died (or failed)
                log.warning("scoring shard %d of %d again: its worker stopped", i + 1, count)
                plan.results[i], plan.by[i] = local(i), PARENT + " (redone)"
            else:
                continue
            if report:
                report(len(plan.results), count)
        if len(plan.results) < count:
            time.sleep(defaults.SHARD_POLL_SECONDS)


def score_shard(project: str, token: str, index: int) -> dict:
    """The RQ entry point: score one shard of a retrain's pass, unless someone has."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("score_shard runs as an RQ job")
    return run_shard(job.connection, f"worker {job.worker_name}", project, token, index)


def run_shard(conn: Redis, holder: str, project: str, token: str, index: int) -> dict:
    """Claim shard ``index`` for ``holder``, score it under a renewed lease and leave its
    result for the retraining job; a shard someone else holds is left to them."""
    if not claim(conn, project, token, index, holder):
        return {"status": "taken"}
    claim_key = keys.shard(project, token, f"claim:{index}")
    started = time.perf_counter()
    try:
        with Lease(conn, claim_key):
            proba, space = shard_pass(conn, project, token, index)
    except Exception:
        conn.delete(claim_key)  # the retraining job scores it at once
        raise
    ttl = defaults.SHARD_RESULT_TTL
    with conn.pipeline(transaction=False) as pipe:
        if space is not None:
            pipe.set(keys.shard(project, token, f"space:{index}"), _encode(space), ex=ttl)
        pipe.set(keys.shard(project, token, f"proba:{index}"), _encode(proba), ex=ttl)
        pipe.execute()
    return {"status": "scored", "rows": len(proba), "seconds": round(time.perf_counter() - started, 3)}


class PlanGone(Exception):
    """The plan or the rows it names are gone: the retraining job scores the shard."""


def shard_pass(conn: Redis, project: str, token: str, index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One shard's probabilities (and space, where it is not the features), with its rows
    built from the feature directory as the retraining job built them."""
    spec_blob, state, rows_blob = cast(
        list[bytes | None],
        conn.mget([keys.shard(project, token, k) for k in ("spec", "model", f"rows:{index}")]),
    )
    if spec_blob is None or state is None or rows_blob is None:
        raise PlanGone(f"shard {index} of {project}: the plan is gone")
    spec = json.loads(spec_blob)
    rows = _decode(rows_blob)
    store = Store(conn)
    cache = feature_cache(store, project)
    dim = spec.get("vector_dim")
    known = cache.unchanged(spec["generation"], spec["vectorizer"], spec["vectorizer_params"], bool(dim))
    if known is None:
        raise PlanGone(f"shard {index} of {project}: the feature rows changed")
    vectors = known.vectors[rows] if known.vectors is not None else None
    x = cache.rows_of(known, rows, vectors, spec.get("vector_scale"))
    model = load_model(state)
    proba, space = model.proba_and_space(x)
    return proba, None if space is x else space
