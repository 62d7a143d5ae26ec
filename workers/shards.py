"""The model's pass over a large pool, split into shards that free workers score.

A retrain's scoring starts with one pass of the model over every candidate: its class
probabilities (and, for trees, the space distances are measured in). At a million items
that pass is the part of the scoring that splits by rows, so the job that retrains splits
it:

- it counts the workers waiting for work on its queue, and times the pass on a few
  thousand rows; with no free worker, a pool of fewer than two shards of ``SHARD_ROWS``, or
  a pass that would take under ``SHARD_MIN_SECONDS`` in one piece (a linear model on TF-IDF
  rows, at a million items), the pass runs in the job as before, with nothing written;
- otherwise it writes a plan beside the project in Redis (the model as stored, the pool's
  generation, the candidates' rows), queues one helper job per free worker at the front of
  its queue, and starts scoring shards itself;
- each shard is scored by whoever claims it first: the retraining job, or a helper on any
  worker of this machine or another on the same Redis, which builds its rows from the
  shared feature directory as the retraining job built them. Helpers leave each shard's
  probabilities as ``.npy`` files in the project's feature directory (``.shards/``), which
  the retraining job reads and deletes;
- a claim is a lease its holder renews every few seconds while it scores. A worker that
  dies stops renewing; once its lease has lapsed with no result, the retraining job scores
  that shard itself (``redone`` in the job's result).

The shards' probabilities are put back in candidate order and the strategy runs on the
whole pool as it does unsharded: a sharded ranking is the unsharded one. Shards need the
feature rows on disk (``ALRANK_FEATURE_DIR``) and a pool no upload has changed since its
rows were computed; otherwise the pass runs in the job.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import numpy as np
from redis import Redis
from rq import Queue, Worker, get_current_job

from workers import defaults
from workers.features.cache import FeatureCache, Unchanged
from workers.features.columns import Columns
from workers.features.files import feature_cache
from workers.models import Model, load_model
from workers.store import Store, keys

log = logging.getLogger(__name__)

SHARD_FUNCTION = "workers.shards.score_shard"

PARENT = "retraining job"
"""The claim the retraining job writes on a shard it scores itself."""

REDONE = PARENT + " (redone)"
"""Who scored a shard whose first holder stopped."""

SHARD_FOLDER = ".shards"
"""The folder, in a project's feature directory, of the passes' results."""


def shard_count(candidates: int) -> int:
    """How many shards a pass over ``candidates`` rows is cut into: ``SHARD_ROWS`` each, so
    whoever is free takes the next and the pass ends when the last one does."""
    return max(1, -(-candidates // defaults.SHARD_ROWS))


def worth_sharding(model, xc) -> bool:
    """Whether the whole pass would take ``SHARD_MIN_SECONDS`` or more, timed on its first
    ``SHARD_PROBE_ROWS`` rows: a linear model's pass over a million TF-IDF rows takes about
    a fifth of a second, less than handing out a shard costs; a forest's takes seconds."""
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
    """A sharded pass: where its keys and result files are, what each shard covers, what
    came back and who scored it."""

    project: str
    token: str
    spans: list[tuple[int, int]]
    folder: Path
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
    project, its feature directory, the pool's generation, the vectorizer and its settings,
    and the client vectors' dimension and scaling (``workers.features``)."""
    count = shard_count(len(candidates))
    # the cheap checks first: most pools are one shard, and asking RQ for its workers
    # reads every worker's record
    if count < 2 or queue is None or not spec.get("directory"):
        return whole_pass(model, xc)
    helpers = free_workers(queue)
    if helpers < 1 or not worth_sharding(model, xc):
        return whole_pass(model, xc)
    started = time.perf_counter()
    token = uuid.uuid4().hex
    plan = Plan(spec["project"], token, bounds(len(candidates), count), results_folder(spec, token))
    ttl = defaults.JOB_TIMEOUT
    with conn.pipeline(transaction=False) as pipe:
        pipe.set(plan.key("spec"), json.dumps({**spec, "shards": count}), ex=ttl)
        pipe.set(plan.key("model"), model_state, ex=ttl)
        pipe.set(plan.key("rows"), _encode(candidates.astype(np.int64)), ex=ttl)
        pipe.execute()
    try:
        plan.folder.mkdir(parents=True)
        for _ in range(min(helpers, count - 1)):
            queue.enqueue_call(
                SHARD_FUNCTION,
                args=(plan.project, plan.token),
                timeout=defaults.JOB_TIMEOUT,
                result_ttl=defaults.SHARD_RESULT_TTL,
                failure_ttl=defaults.SHARD_RESULT_TTL,
                at_front=True,
            )
        _gather(conn, plan, lambda i: _score(model, xc, plan.spans[i]), report)
    finally:
        conn.delete(
            *[plan.key(k) for k in ("spec", "model", "rows")], *[plan.key(f"claim:{i}") for i in range(count)]
        )
        shutil.rmtree(plan.folder, ignore_errors=True)
    proba, space = merged([plan.results[i] for i in range(count)], xc)
    by = [plan.by[i] for i in range(count)]
    return (
        proba,
        space,
        {
            "shards": count,
            "by_workers": sum(not h.startswith(PARENT) for h in by),
            "redone": sum(h == REDONE for h in by),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def whole_pass(model, xc) -> tuple[np.ndarray, object, dict]:
    """The pass in one job, here: what :func:`model_pass` does for a small pool. Parts held
    apart (:class:`Columns`) are joined and scored a block of rows at a time."""
    started = time.perf_counter()
    proba, space = merged([shard_result(model, xc)], xc)
    return proba, space, {"shards": 1, "seconds": round(time.perf_counter() - started, 3)}


def merged(results: list[tuple[np.ndarray, np.ndarray | None]], xc) -> tuple[np.ndarray, Any]:
    """The probabilities and space of the whole pass from its pieces' (in order): a space
    no piece returned is the rows themselves, ``xc``."""
    proba = np.concatenate([r[0] for r in results])
    spaces = [r[1] for r in results]
    return proba, xc if spaces[0] is None else np.concatenate(spaces)  # type: ignore[arg-type]


def results_folder(spec: dict, token: str) -> Path:
    """Where the shards of pass ``token`` leave their results: beside the project's feature
    rows, on the volume every worker mounts. Folders a dead job left are swept first."""
    root = Path(spec["directory"]) / SHARD_FOLDER
    if root.is_dir():
        stale = time.time() - defaults.JOB_TIMEOUT
        for old in root.iterdir():
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < stale:
                    shutil.rmtree(old, ignore_errors=True)
    return root / token


def _score(model, xc, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    return shard_result(model, xc.take(slice(*span)) if isinstance(xc, Columns) else xc[span[0] : span[1]])


def shard_result(model, rows) -> tuple[np.ndarray, np.ndarray | None]:
    """One shard's probabilities, and its space where it is not the rows themselves (a
    linear model measures distances in its features, which need not travel). Parts held
    apart (:class:`Columns`) are joined ``PASS_ROWS`` rows at a time."""
    if isinstance(rows, Columns):
        return merged([shard_result(model, block) for block in rows.blocks()], None)
    proba, space = model.proba_and_space(rows)
    return proba, None if space is rows else space


def _gather(
    conn: Redis,
    plan: Plan,
    local: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
    report: Callable[[int, int], None] | None,
) -> None:
    """Score every shard nobody has claimed, in order, as the helper jobs do, then collect
    the helpers' results; a shard whose holder's lease lapsed with no result is scored here."""
    count = len(plan.spans)

    def scored(i: int, holder: str, result: tuple[np.ndarray, np.ndarray | None]) -> None:
        plan.results[i], plan.by[i] = result, holder
        if report:
            report(len(plan.results), count)

    for i in range(count):
        if claim(conn, plan.project, plan.token, i, PARENT):
            scored(i, PARENT, local(i))
    while len(plan.results) < count:
        for i in range(count):
            if i in plan.results:
                continue
            found = _read_result(plan.folder, i)
            if found is not None:
                holder = _get(conn, plan.key(f"claim:{i}"))
                scored(i, holder.decode() if holder else "worker", found)
            elif claim(conn, plan.project, plan.token, i, PARENT):
                # the holder's lease lapsed with no result: its worker died (or failed)
                log.warning("scoring shard %d of %d again: its worker stopped", i + 1, count)
                scored(i, REDONE, local(i))
        if len(plan.results) < count:
            time.sleep(defaults.SHARD_POLL_SECONDS)


def _write_result(folder: Path, index: int, proba: np.ndarray, space: np.ndarray | None) -> None:
    """The shard's probabilities (and space), each written under a temporary name and
    renamed: the probabilities' file appears last, and whole."""
    for name, array in (("space", space), ("proba", proba)):
        if array is None:
            continue
        staged = folder / f".{index}.{name}.{uuid.uuid4().hex[:8]}.npy"
        np.save(staged, array, allow_pickle=False)
        os.replace(staged, folder / f"{index}.{name}.npy")


def _read_result(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    proba = folder / f"{index}.proba.npy"
    if not proba.exists():
        return None
    space = folder / f"{index}.space.npy"
    return np.load(proba), np.load(space) if space.exists() else None


def score_shard(project: str, token: str) -> dict:
    """The RQ entry point: score shards of a retrain's pass until none is left."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("score_shard runs as an RQ job")
    return run_shard(job.connection, f"worker {job.worker_name}", project, token)


def run_shard(conn: Redis, holder: str, project: str, token: str) -> dict:
    """Claim the pass's shards one after another for ``holder``, each under a renewed
    lease, and leave their results for the retraining job, until every shard is taken."""
    started = time.perf_counter()
    helper: Helper | None = None
    done = []
    spec_blob = _get(conn, keys.shard(project, token, "spec"))
    if spec_blob is None:
        return {"status": "gone"}
    spec = json.loads(spec_blob)
    for index in range(spec["shards"]):
        if not claim(conn, project, token, index, holder):
            continue
        claim_key = keys.shard(project, token, f"claim:{index}")
        try:
            with Lease(conn, claim_key):
                helper = helper or Helper.load(conn, project, token, spec)
                proba, space = helper.score(index)
                _write_result(Path(spec["directory"]) / SHARD_FOLDER / token, index, proba, space)
        except Exception:
            conn.delete(claim_key)  # the retraining job scores it at once
            raise
        done.append(index)
    return {"status": "scored", "shards": done, "seconds": round(time.perf_counter() - started, 3)}


class PlanGone(Exception):
    """The plan or the rows it names are gone: the retraining job scores the shard."""


@dataclass
class Helper:
    """What a helper job loads once for all the shards it scores: the model, and the
    pool's rows as the retraining job built them, from the feature directory."""

    model: Model
    rows: np.ndarray
    spans: list[tuple[int, int]]
    scale: dict | None
    cache: FeatureCache
    known: Unchanged

    @classmethod
    def load(cls, conn: Redis, project: str, token: str, spec: dict) -> Helper:
        state, rows_blob = cast(
            list[bytes | None], conn.mget([keys.shard(project, token, k) for k in ("model", "rows")])
        )
        if state is None or rows_blob is None:
            raise PlanGone(f"a scoring pass of {project}: the plan is gone")
        store = Store(conn)
        cache = feature_cache(store, project)
        dim = spec.get("vector_dim")
        vectorizer, params = spec["vectorizer"], spec["vectorizer_params"]
        known = cache.unchanged(spec["generation"], vectorizer, params, bool(dim))
        if known is None:
            raise PlanGone(f"a scoring pass of {project}: the feature rows changed")
        rows = _decode(rows_blob)
        spans = bounds(len(rows), spec["shards"])
        return cls(load_model(state), rows, spans, spec.get("vector_scale"), cache, known)

    def score(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.spans[index]
        rows = self.rows[a:b]
        vectors = self.known.vectors[rows] if self.known.vectors is not None else None
        return shard_result(self.model, self.cache.rows_of(self.known, rows, vectors, self.scale))
