"""Simulations as background jobs: ``workers.simulation.engine`` run by a worker for the API.

The request's rows (or a project's labelled items) are kept in Redis beside the job; the
worker replays annotation with exactly the code ``alrank simulate`` runs, reports its
progress in the job's meta, and keeps ``curves.csv``, ``curves.png`` and ``summary.json``
for a week.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from redis import Redis
from rq import Queue, get_current_job

from workers import defaults
from workers.exceptions import InvalidInput, NotFound
from workers.settings import find_schema
from workers.simulation.data import Dataset, dataset_from_records
from workers.simulation.engine import simulate
from workers.simulation.spec import Settings
from workers.store import Store, keys
from workers.telemetry import job_meta

JOB_FUNCTION = "workers.simulation.job.run_simulation"
FILES = {"curves.csv": "text/csv", "curves.png": "image/png", "summary.json": "application/json"}
"""What a finished simulation keeps, with the media type each is served as."""


def sim_prefix(sim_id: str) -> str:
    return keys.simulation(sim_id)


def datasets(payload: dict) -> tuple[Dataset, Dataset | None]:
    """The train and (optional) test sets of a request, checked row by row."""

    def records(name: str) -> Iterator[tuple[str, dict]]:
        return ((f"{name}[{i}]", row) for i, row in enumerate(payload[name]))

    train = dataset_from_records(records("train"), "train")
    test = dataset_from_records(records("test"), "test") if payload.get("test") else None
    if test is not None and (train.texts is None) != (test.texts is None):
        raise InvalidInput("train and test must both have 'text' or both 'features'")
    return train, test


def project_rows(store: Store, project_name: str, schema_name: str) -> list[dict]:
    """A project's labelled items as simulation rows: text (or vector) and the majority label."""
    from workers.aggregation import aggregate

    project = store.get_project(project_name)
    schema = find_schema(project, schema_name)
    if schema["multi_label"]:
        raise InvalidInput("simulations compare single-label schemas; this one is multi-label")
    labels = store.load_labels(project_name, schema["name"])
    ids = [i for i, by_annotator in labels.items() if by_annotator]
    docs = store.get_items(project_name, ids)
    vectors = store.load_vectors(project_name, ids, project.get("vector_dim"))
    rows = []
    for k, (item_id, doc) in enumerate(zip(ids, docs, strict=True)):
        if doc is None:
            continue
        value = aggregate(labels[item_id], schema["labels"], False)
        if doc.get("text"):
            rows.append({"text": doc["text"], "label": value})
        elif vectors is not None:
            rows.append({"features": vectors[k].tolist(), "label": value})
    return rows


def submit(
    redis: Redis, queue: Queue, payload: dict, settings: Settings, source: dict, owner: str | None = None
) -> str:
    """Keep the data beside a new simulation job and queue it; returns the simulation id.
    ``owner``: the project whose key started it (None: the admin key)."""
    sim_id = uuid.uuid4().hex
    pre = sim_prefix(sim_id)
    redis.set(pre + "data", json.dumps(payload), ex=defaults.SIMULATION_TTL)
    queue.enqueue_call(
        JOB_FUNCTION,
        args=(sim_id,),
        job_id=sim_id,
        timeout=defaults.SIMULATION_TIMEOUT,
        result_ttl=defaults.SIMULATION_TTL,
        failure_ttl=defaults.SIMULATION_TTL,
        meta={
            "kind": "simulation",
            "settings": asdict(settings),
            "source": source,
            "owner": owner,
            **job_meta(),
        },
        description=f"simulate {','.join(settings.strategies)} ({source.get('kind')})",
    )
    return sim_id


def run_simulation(sim_id: str) -> dict:
    """The RQ entry point: replay annotation on the stored data, keep the results."""
    job = get_current_job()
    conn: Redis = job.connection if job is not None else Redis()
    pre = sim_prefix(sim_id)
    raw = conn.get(pre + "data")
    if raw is None:
        raise NotFound(f"the data of simulation {sim_id} is gone (deleted, or older than its TTL)")
    payload = json.loads(raw)
    settings = Settings(**payload["settings"])
    train, test = datasets(payload)
    last = [0.0]

    def report(fraction: float, eta: float, stage: str) -> None:
        now = time.monotonic()
        if job is None or (now - last[0] < 1.0 and fraction < 1.0):
            return
        last[0] = now
        job.meta["progress"] = {
            "stage": stage,
            "fraction": round(fraction, 4),
            "eta_seconds": round(eta, 1) if eta == eta else None,
        }
        job.save_meta()

    with tempfile.TemporaryDirectory(prefix="alrank-sim-") as folder:
        summary = simulate(train, test, settings, folder, progress=report)
        files: dict = {name: (Path(folder) / name).read_bytes() for name in FILES}
    pipe = conn.pipeline(transaction=True)
    pipe.hset(pre + "files", mapping=files)
    pipe.expire(pre + "files", defaults.SIMULATION_TTL)
    pipe.delete(pre + "data")
    pipe.execute()
    return {k: v for k, v in summary.items() if k != "curves"}


def result_file(redis: Redis, sim_id: str, name: str) -> bytes | None:
    blob = redis.hget(sim_prefix(sim_id) + "files", name)
    return bytes(blob) if blob is not None else None  # type: ignore[arg-type]


def delete(redis: Redis, sim_id: str) -> None:
    redis.delete(sim_prefix(sim_id) + "data", sim_prefix(sim_id) + "files")
