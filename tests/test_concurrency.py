"""Many annotators asking at once never receive the same item."""

from __future__ import annotations

import threading
from collections import defaultdict

N_ITEMS = 3000
N_THREADS = 16
REQUESTS_PER_THREAD = 25


def test_concurrent_annotators_never_share_an_item(app, client, run_jobs):
    body = {
        "name": "race",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"update_frequency": 1_000_000},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{i}", "vector": [float(i % 97), float(i % 13)]} for i in range(N_ITEMS)]
    assert client.post("/v1/projects/race/items", json={"items": items}).status_code == 200
    run_jobs()

    holders: dict[str, set[str]] = defaultdict(set)
    lock = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(N_THREADS)

    def annotate(t: int) -> None:
        c = app.test_client()
        c.environ_base.update(client.environ_base)
        annotator = f"ann{t}"
        start.wait()
        for _ in range(REQUESTS_PER_THREAD):
            r = c.get(f"/v1/projects/race/next?schema=s&annotator={annotator}&size=5")
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.get_data(as_text=True)}")
                return
            ids = [it["id"] for it in r.json["items"]]
            with lock:
                for i in ids:
                    holders[i].add(annotator)
            # label most of the batch, as a person would, so the next ask needs new items
            labels = [{"item": i, "schema": "s", "value": "a", "annotator": annotator} for i in ids[:4]]
            if labels:
                c.post("/v1/projects/race/labels", json={"labels": labels})

    threads = [threading.Thread(target=annotate, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert not errors, errors[:3]
    shared = {i: h for i, h in holders.items() if len(h) > 1}
    assert not shared, f"{len(shared)} items went to more than one annotator, e.g. {list(shared.items())[:3]}"
    # every request was served, and labelled items were replaced by fresh ones
    assert len(holders) >= N_THREADS * REQUESTS_PER_THREAD * 4
