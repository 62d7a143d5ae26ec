"""A schema's label quality, assessed by the refresh once its ranking is published.

- **agreement** (``workers.agreement``) on the items several annotators labelled, with each
  annotator's reliability as Dawid-Skene estimates it (``workers.aggregation``);
- **label issues** (``workers.label_issues``): the aggregated labels the data contradicts;
- the **queues** that send labelled items to another annotator: ``review`` (the worst label
  issues, while no one has answered them since) and ``overlap`` (labelled items drawn
  uniformly, so agreement is measured on a random sample). Only an item with no more
  annotators than the project asks for (``min_annotations_per_instance``) is queued, so
  each gets one more opinion, not a chain of them.

Everything is written to Redis (``Store.save_quality``, ``Store.publish_queue``) and served
from there: a batch or a metrics request computes nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from workers.aggregation import dawid_skene
from workers.agreement import agreement
from workers.label_issues import FitPredict, find_issues
from workers.store import Store

METHOD = (
    "confident learning (cleanlab.filter.find_label_issues) on out-of-fold probabilities of the "
    "schema's model kind; ranked by one minus the probability of the label given"
)


def assess(
    store: Store,
    project: str,
    schema: dict,
    al: dict,
    votes: dict[str, dict[str, Any]],
    times: dict[str, dict[str, float]],
    labelled: tuple[Any, list[str], list],
    fit_predict: FitPredict | None,
    model_version: int | None,
    seed: int,
) -> dict:
    """Assess the labels, save the figures and publish the queues; returns the figures.
    ``labelled`` is (feature rows, item ids, aggregated labels) of the labels a model
    learns from; ``fit_predict`` trains the schema's kind of model (None before a model)."""
    started = time.perf_counter()
    name = schema["name"]
    figures = agreement(votes)
    estimate = dawid_skene(votes, schema["labels"], schema["multi_label"], times)
    for annotator, record in figures["per_annotator"].items():
        shared = estimate.shared_items.get(annotator, 0)
        record["reliability"] = estimate.reliability.get(annotator) if shared else None
    x, ids, targets = labelled
    issues = None
    if fit_predict is not None and ids:
        issues = find_issues(fit_predict, x, ids, targets, schema["labels"], schema["multi_label"], seed)
    listed = [{**asdict(issue), "annotators": votes.get(issue.item, {})} for issue in (issues or [])]
    cap = max(al["min_annotations_per_instance"], 1)
    review = {
        i["item"]: len(i["annotators"])
        for i in listed
        if 0 < len(i["annotators"]) <= cap and i["score"] >= al["review_min_score"]
    }
    store.publish_queue(project, name, "review", review)
    # every labelled item, rewritten at each refresh: only when a share walks it
    single = sorted(item for item, by in votes.items() if len(by) == cap) if al["overlap_share"] > 0 else []
    order = np.random.default_rng(seed).permutation(len(single))
    store.publish_queue(project, name, "overlap", {single[k]: cap for k in order})
    status = "no_model" if fit_predict is None else "found" if issues is not None else "too_few_labels"
    doc = {
        "schema": name,
        "model_version": model_version,
        "labels": sum(len(by) for by in votes.values()),
        "labelled_items": len(votes),
        "resolution_strategy": al["resolution_strategy"],
        "agreement": figures,
        "label_issues": {
            "status": status,
            "method": METHOD,
            "checked": len(ids) if issues is not None else 0,
            "queued_for_review": len(review),
            "issues": listed,
        },
        "seconds": round(time.perf_counter() - started, 3),
    }
    store.save_quality(project, name, doc)
    return doc
