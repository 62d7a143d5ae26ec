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
  generation, the candidates' rows, the shards' spans), queues one helper job per free
  worker at the front of its queue, and starts scoring shards itself. Shards shrink
  towards the end of the pass (:func:`spans`), so whoever started late still finishes
  with the rest;
- each shard is scored by whoever claims it first: the retraining job, or a helper on any
  worker of this machine or another on the same Redis, which builds its rows from the
  shared feature directory as the retraining job built them. Helpers leave each shard's
  probabilities as ``.npy`` files in the project's feature directory (``.shards/``), which
  the retraining job reads straight into the pass's arrays as they come, between its own
  shards (whose space it scores in place), and deletes;
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
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
from redis import Redis
from rq import Queue, Worker, get_current_job

from workers import defaults
from workers.features.columns import Columns
from workers.store import keys

log = logging.getLogger(__name__)

SHARD_FUNCTION = "workers.shard_helper.score_shard"

PARENT = "retraining job"
"""The claim the retraining job writes on a shard it scores itself."""

REDONE = PARENT + " (redone)"
"""Who scored a shard whose first holder stopped."""

SHARD_FOLDER = ".shards"
"""The folder, in a project's feature directory, of the passes' results."""


def shard_count(candidates: int) -> int:
    """Shards of ``SHARD_ROWS`` in a pass over ``candidates`` rows: under two, the pass is
    not split."""
    return max(1, -(-candidates // defaults.SHARD_ROWS))


def spans(candidates: int, workers: int) -> list[tuple[int, int]]:
    """Each shard's [start, stop) in candidate order, for ``workers`` scoring them
    (guided self-scheduling): a shard is the rows not yet handed out over twice the
    workers, at most ``SHARD_ROWS`` and at least an eighth of it (the last takes in a
    remainder smaller than that). The first shards are whole, the last small: a helper
    that started late, or a slower worker, costs the pass a small shard's time at the
    end, not a whole one's."""
    least = max(1, defaults.SHARD_ROWS // 8)
    out: list[tuple[int, int]] = []
    start = 0
    while start < candidates:
        size = min(defaults.SHARD_ROWS, max(least, -(-(candidates - start) // (2 * workers))))
        stop = start + size if candidates - start - size >= least else candidates
        out.append((start, stop))
        start = stop
    return out


def probe(model, xc) -> tuple[float, tuple[np.ndarray, np.ndarray | None]]:
    """The seconds the whole pass would take, timed on its first ``SHARD_PROBE_ROWS`` rows
    (a linear model's pass over a million TF-IDF rows takes about a fifth of a second, less
    than handing out a shard costs; a forest's takes seconds), and what those rows gave: the
    shapes of the pass's arrays."""
    rows = min(xc.shape[0], defaults.SHARD_PROBE_ROWS)
    started = time.perf_counter()
    result = shard_result(model, xc[:rows])
    return (time.perf_counter() - started) * xc.shape[0] / rows, result


def free_workers(queue: Queue) -> int:
    """Workers listening on ``queue`` with no job, besides this one."""
    me = get_current_job()
    mine = me.worker_name if me is not None else None
    return sum(1 for w in Worker.all(queue=queue) if w.get_state() == "idle" and w.name != mine)


def encode_array(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def decode_array(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def get_bytes(conn: Redis, key: str) -> bytes | None:
    return cast(bytes | None, conn.get(key))


@dataclass
class Plan:
    """A sharded pass: where its keys and result files are, what each shard covers, the
    pass's probabilities and space (shaped as the probe's, every row) that the shards fill
    in, and who scored each. The retraining job scores its shards' space in place, and
    reads the helpers' files straight into place: nothing is copied twice."""

    project: str
    token: str
    spans: list[tuple[int, int]]
    folder: Path
    proba: np.ndarray
    space: np.ndarray | None
    by: dict[int, str] = field(default_factory=dict)

    @classmethod
    def make(cls, spec: dict, token: str, shards: list[tuple[int, int]], shaped) -> Plan:
        proba, space = shaped
        rows = shards[-1][1]

        def like(a: np.ndarray) -> np.ndarray:
            return np.empty((rows, *a.shape[1:]), dtype=a.dtype)

        room = None if space is None else like(space)
        return cls(spec["project"], token, shards, results_folder(spec, token), like(proba), room)

    def key(self, what: str) -> str:
        return keys.shard(self.project, self.token, what)

    def view(self, index: int) -> np.ndarray | None:
        """Where shard ``index``'s space goes."""
        a, b = self.spans[index]
        return None if self.space is None else self.space[a:b]

    def put(self, index: int, holder: str, result: tuple[np.ndarray, np.ndarray | None]) -> None:
        """Shard ``index``'s result into the pass's arrays (its space may be there already)."""
        a, b = self.spans[index]
        proba, space = result
        self.proba[a:b] = proba
        if self.space is not None and space is not None and not np.may_share_memory(space, self.space):
            self.space[a:b] = space
        self.by[index] = holder

    def arrived(self, index: int) -> bool:
        """Whether a helper's result for shard ``index`` is there (its probabilities' file
        appears last, and whole)."""
        return (self.folder / f"{index}.proba.npy").exists()

    def take(self, index: int, holder: str) -> None:
        """Read a helper's result for shard ``index`` into place."""
        a, b = self.spans[index]
        if self.space is not None:
            _read_into(self.folder / f"{index}.space.npy", self.space[a:b])
        _read_into(self.folder / f"{index}.proba.npy", self.proba[a:b])
        self.by[index] = holder


def _read_into(path: Path, out: np.ndarray) -> None:
    """An ``.npy`` file's array read straight into ``out``, which has its shape and type."""
    with path.open("rb") as f:
        fmt = np.lib.format
        version = fmt.read_magic(f)
        shape, fortran, dtype = (
            fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        )(f)
        if shape != out.shape or dtype != out.dtype or fortran:
            raise ValueError(f"{path} holds {dtype} {shape}, not {out.dtype} {out.shape}")
        if f.readinto(memoryview(out).cast("B")) != out.nbytes:  # type: ignore[arg-type]
            raise ValueError(f"{path} ends early")


def claim(conn: Redis, project: str, token: str, index: int, holder: str, lease: float | None = None) -> bool:
    """Take shard ``index`` for ``holder`` if nobody holds it, for ``lease`` seconds."""
    ms = int(1000 * (lease or defaults.SHARD_LEASE_SECONDS))
    return bool(conn.set(keys.shard(project, token, f"claim:{index}"), holder, nx=True, px=ms))


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
    if helpers < 1:
        return whole_pass(model, xc)
    seconds, shaped = probe(model, xc)
    if seconds < defaults.SHARD_MIN_SECONDS:
        return whole_pass(model, xc)
    started = time.perf_counter()
    token = uuid.uuid4().hex
    plan = Plan.make(spec, token, spans(len(candidates), helpers + 1), shaped)
    count = len(plan.spans)
    ttl = defaults.JOB_TIMEOUT
    with conn.pipeline(transaction=False) as pipe:
        pipe.set(plan.key("spec"), json.dumps({**spec, "spans": plan.spans}), ex=ttl)
        pipe.set(plan.key("model"), model_state, ex=ttl)
        pipe.set(plan.key("rows"), encode_array(candidates.astype(np.int64)), ex=ttl)
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
        _gather(conn, plan, lambda i: _score(model, xc, plan.spans[i], plan.view(i)), report)
    finally:
        conn.delete(
            *[plan.key(k) for k in ("spec", "model", "rows")], *[plan.key(f"claim:{i}") for i in range(count)]
        )
        shutil.rmtree(plan.folder, ignore_errors=True)
    by = [plan.by[i] for i in range(count)]
    return (
        plan.proba,
        xc if plan.space is None else plan.space,
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
    proba, space = shard_result(model, xc)
    return (
        proba,
        xc if space is None else space,
        {"shards": 1, "seconds": round(time.perf_counter() - started, 3)},
    )


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


def _score(
    model, xc, span: tuple[int, int], space: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    rows = xc.take(slice(*span)) if isinstance(xc, Columns) else xc[span[0] : span[1]]
    return shard_result(model, rows, space)


def shard_result(model, rows, space: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One shard's probabilities, and its space where it is not the rows themselves (a
    linear model measures distances in its features, which need not travel); a forest
    writes its space into ``space`` when given. Parts held apart (:class:`Columns`) are
    joined ``PASS_ROWS`` rows at a time."""
    if isinstance(rows, Columns):
        blocks = [shard_result(model, block) for block in rows.blocks()]
        spaces = [b[1] for b in blocks if b[1] is not None]
        return np.concatenate([b[0] for b in blocks]), np.concatenate(spaces) if spaces else None
    proba, out = model.proba_and_space(rows, space)
    return proba, None if out is rows else out


def _gather(
    conn: Redis,
    plan: Plan,
    local: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
    report: Callable[[int, int], None] | None,
) -> None:
    """Score every shard nobody has claimed, in order, as the helper jobs do, taking in
    the helpers' results that have come between shards; then wait for the rest. A shard
    whose holder's lease lapsed with no result is scored here."""
    count = len(plan.spans)

    def scored(i: int, holder: str, result: tuple[np.ndarray, np.ndarray | None]) -> None:
        plan.put(i, holder, result)
        if report:
            report(len(plan.by), count)

    def take_in(rescore: bool) -> None:
        for i in range(count):
            if i in plan.by:
                continue
            if plan.arrived(i):
                holder = get_bytes(conn, plan.key(f"claim:{i}"))
                plan.take(i, holder.decode() if holder else "worker")
                if report:
                    report(len(plan.by), count)
            elif rescore and claim(conn, plan.project, plan.token, i, PARENT):
                # the holder's lease lapsed with no result: its worker died (or failed)
                log.warning("scoring shard %d of %d again: its worker stopped", i + 1, count)
                scored(i, REDONE, local(i))

    for i in range(count):
        if claim(conn, plan.project, plan.token, i, PARENT):
            scored(i, PARENT, local(i))
            take_in(rescore=False)
    while len(plan.by) < count:
        take_in(rescore=True)
        if len(plan.by) < count:
            time.sleep(defaults.SHARD_POLL_SECONDS)
