"""Label Studio's tasks and annotations as alrank's items and labels: the label config's
choices adopted as schemas, tasks upserted as items, annotations stored (or removed) as
labels. The sync jobs (``workers.label_studio.sync``) and the webhook handler
(``service.label_studio``) share them."""

from __future__ import annotations

from typing import Any

from rq import Queue

from workers import limits
from workers.exceptions import InvalidInput
from workers.label_studio.config import (
    LabelConfig,
    annotation_labels,
    annotator_name,
    task_item,
)
from workers.queueing import request_refresh, store_labels
from workers.settings import check_schemas, resolve_active_learning
from workers.store import Store


def adopt_label_config(store: Store, project: dict, config: LabelConfig) -> dict:
    """Give the project a schema for every ``Choices`` of the label config: new ones are
    added, an existing one gains the config's new labels. Saved only when something changed
    (saving re-ranks)."""
    schemas = [dict(s) for s in project["schemas"]]
    by_name = {s["name"]: s for s in schemas}
    changed = False
    for wanted in config.schemas:
        have = by_name.get(wanted["name"])
        if have is None:
            schemas.append(wanted)
            changed = True
            continue
        if have["multi_label"] != wanted["multi_label"]:
            kind = "multiple" if wanted["multi_label"] else "single"
            raise InvalidInput(
                f'<Choices name="{wanted["name"]}" choice="{kind}"> does not match schema '
                f"{wanted['name']!r}, which is {'multi' if have['multi_label'] else 'single'}-label"
            )
        extra = [label for label in wanted["labels"] if label not in have["labels"]]
        if extra:
            have["labels"] = have["labels"] + extra
            changed = True
    if not changed:
        return project
    check_schemas(schemas)
    al = resolve_active_learning(schemas, {}, project["active_learning"])
    return store.save_project({**project, "schemas": schemas, "active_learning": al})


def ensure_items(store: Store, project: dict, config: LabelConfig, tasks: list[dict]) -> int:
    """Upsert the tasks whose item is missing or has another text; returns how many."""
    if not tasks:
        return 0
    items = [task_item(config, t) for t in tasks]
    docs = store.get_items(project["name"], [i["id"] for i in items])
    changed = [i for i, doc in zip(items, docs, strict=True) if doc is None or doc.get("text") != i["text"]]
    for start in range(0, len(changed), limits.MAX_ITEMS_PER_REQUEST):
        store.upsert_items(project, changed[start : start + limits.MAX_ITEMS_PER_REQUEST])
    return len(changed)


def apply_annotations(
    store: Store, queue: Queue, project: dict, config: LabelConfig, annotations: list[dict]
) -> dict[str, Any]:
    """Make each annotation's labels alrank's: new and changed values stored, choices it no
    longer makes (or a cancelled annotation's) removed. Returns counts and the retrain jobs."""
    name = project["name"]
    labels, removed, touched = [], 0, set()
    for annotation in annotations:
        key = str(annotation["id"])
        item = str(annotation["task"])
        annotator = annotator_name(annotation.get("completed_by"))
        values = annotation_labels(config, annotation)
        before = store.label_studio_annotation(name, key)
        if before is not None:
            for schema in set(before["schemas"]) - set(values):
                removed += store.delete_label(name, schema, before["item"], before["annotator"])
                touched.add(schema)
        labels += [
            {"item": item, "schema": schema, "value": value, "annotator": annotator}
            for schema, value in values.items()
        ]
        record = {"item": item, "annotator": annotator, "schemas": sorted(values)}
        store.remember_label_studio_annotation(name, key, record)
    new, jobs = 0, {}
    for start in range(0, len(labels), limits.MAX_LABELS_PER_REQUEST):
        n, triggered = store_labels(
            store, queue, project, labels[start : start + limits.MAX_LABELS_PER_REQUEST], "label_studio"
        )
        new += n
        jobs.update(triggered)
    for schema in touched - set(jobs):
        jobs[schema] = request_refresh(store, queue, name, schema, "Label Studio annotations removed")
    return {"labels": len(labels), "new": new, "removed": removed, "training_jobs": jobs}


def forget_annotations(store: Store, queue: Queue, project: str, annotation_ids: list[str]) -> int:
    """Remove the labels that deleted annotations gave; returns how many went."""
    removed, touched = 0, set()
    for key in annotation_ids:
        record = store.label_studio_annotation(project, key)
        if record is None:
            continue
        for schema in record["schemas"]:
            removed += store.delete_label(project, schema, record["item"], record["annotator"])
            touched.add(schema)
        store.forget_label_studio_annotation(project, key)
    for schema in touched:
        request_refresh(store, queue, project, schema, "Label Studio annotations deleted")
    return removed
