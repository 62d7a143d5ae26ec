"""Several annotators per item (``min_annotations_per_instance`` above one)."""

from __future__ import annotations

import pytest

PROJECT = {
    "name": "double",
    "schemas": [{"name": "s", "labels": ["a", "b"]}],
    "active_learning": {
        "min_annotations_per_instance": 2,
        "min_instances_for_training": 4,
        "update_frequency": 100,
        "eval_fraction": 0.0,
        "random_sample_percent": 0.0,
        "vectorizer_name": "tfidf",
    },
}


@pytest.fixture
def project(client, run_jobs):
    assert client.post("/v1/projects", json=PROJECT).status_code == 201
    words = ["red apple", "green pear", "blue sky", "grey cloud", "ripe plum", "dark night"]
    items = [{"id": f"i{k}", "text": f"{words[k % 6]} number {k}"} for k in range(30)]
    assert client.post("/v1/projects/double/items", json={"items": items}).status_code == 200
    run_jobs()


def batch(client, annotator: str, size: int = 5) -> list[str]:
    r = client.get(f"/v1/projects/double/next?schema=s&annotator={annotator}&size={size}")
    assert r.status_code == 200, r.json
    return [it["id"] for it in r.json["items"]]


def label(client, annotator: str, items: list[str]) -> None:
    labels = [{"item": i, "schema": "s", "value": "a", "annotator": annotator} for i in items]
    assert client.post("/v1/projects/double/labels", json={"labels": labels}).status_code == 200


def test_an_item_is_never_handed_back_to_an_annotator_who_labelled_it(client, project, run_jobs):
    first = batch(client, "ana")
    label(client, "ana", first)
    assert not set(batch(client, "ana", 30)) & set(first)
    # nor after a new ranking, where those items are still candidates for a second label
    client.post("/v1/projects/double/leases/release", json={"schema": "s", "annotator": "ana"})
    client.post("/v1/projects/double/train?schema=s")
    run_jobs()
    again = batch(client, "ana", 30)
    assert len(again) == 25 and not set(again) & set(first)


def test_an_item_labelled_once_goes_to_the_next_annotator_first(client, project):
    first = batch(client, "ana")
    label(client, "ana", first)
    assert set(batch(client, "ben", 5)) == set(first)
    label(client, "ben", first)
    # labelled twice: done, handed to nobody
    assert not set(batch(client, "cat", 25)) & set(first)
