"""The helper's side of a sharded pass (``workers.shards``): a job on a free worker that
claims the pass's shards one after another, builds each shard's rows from the shared
feature directory as the retraining job built them, scores them with the model the plan
holds, and leaves the results as ``.npy`` files for the retraining job. Each claim is a
lease renewed while the shard is scored: a worker that dies lets it lapse, and the
retraining job scores that shard itself."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from redis import Redis
from rq import get_current_job

from workers import defaults
from workers.features.cache import FeatureCache, Unchanged
from workers.features.files import feature_cache
from workers.models import Model, load_model
from workers.shards import SHARD_FOLDER, claim, decode_array, get_bytes, shard_result
from workers.store import Store, keys


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


def _write_result(folder: Path, index: int, proba: np.ndarray, space: np.ndarray | None) -> None:
    """The shard's probabilities (and space), each written under a temporary name and
    renamed: the probabilities' file appears last, and whole."""
    for name, array in (("space", space), ("proba", proba)):
        if array is None:
            continue
        staged = folder / f".{index}.{name}.{uuid.uuid4().hex[:8]}.npy"
        np.save(staged, array, allow_pickle=False)
        os.replace(staged, folder / f"{index}.{name}.npy")


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
    spec_blob = get_bytes(conn, keys.shard(project, token, "spec"))
    if spec_blob is None:
        return {"status": "gone"}
    spec = json.loads(spec_blob)
    for index in range(len(spec["spans"])):
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
        shard_spans = [(int(a), int(b)) for a, b in spec["spans"]]
        return cls(
            load_model(state), decode_array(rows_blob), shard_spans, spec.get("vector_scale"), cache, known
        )

    def score(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.spans[index]
        rows = self.rows[a:b]
        vectors = self.known.vectors[rows] if self.known.vectors is not None else None
        return shard_result(self.model, self.cache.rows_of(self.known, rows, vectors, self.scale))
