"""Items and labels out: cursor pages that neither skip nor repeat under concurrent writes,
filters, and the JSON Lines export of the labels."""

from __future__ import annotations

import json
import threading
import time

import pytest

from workers.store import keys
from workers.store.migrate import LAYOUT, migrate


def make(client, name: str = "out", n: int = 250, schemas=("topic", "mood"), vectors: bool = False) -> None:
    body = {
        "name": name,
        "schemas": [{"name": s, "labels": ["a", "b"]} for s in schemas],
        "active_learning": {"update_frequency": 1_000_000, "min_instances_for_training": 1_000_000},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{k:04d}", "text": f"text {k} é"} for k in range(n)]
    if vectors:
        for k, item in enumerate(items):
            item["vector"] = [k / 7, -k / 3]
    assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code == 200


def label(client, rows, project: str = "out") -> None:
    body = {"labels": [{"item": i, "schema": s, "annotator": a, "value": v} for i, s, a, v in rows]}
    r = client.post(f"/v1/projects/{project}/labels", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)


def pages(client, path: str, key: str, pause: float = 0.0, **params) -> list[list[dict]]:
    out, cursor = [], None
    while True:
        time.sleep(pause)
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(path, query_string=query)
        assert r.status_code == 200, r.get_data(as_text=True)
        out.append(r.json[key])
        cursor = r.json["next_cursor"]
        if cursor is None:
            return out


def test_items_come_out_in_id_order_a_page_at_a_time(client):
    make(client, vectors=True)
    got = pages(client, "/v1/projects/out/items", "items", limit=100, vectors="true")
    assert [len(p) for p in got] == [100, 100, 50]
    flat = [it for p in got for it in p]
    assert [it["id"] for it in flat] == [f"i{k:04d}" for k in range(250)]
    assert flat[7]["text"] == "text 7 é" and flat[7]["metadata"] == {}
    assert flat[7]["vector"] == pytest.approx([7 / 7, -7 / 3], rel=1e-6)
    plain = client.get("/v1/projects/out/items?limit=1").json
    assert "vector" not in plain["items"][0]


def test_bad_cursors_and_limits_are_refused(client):
    make(client, n=5)
    assert client.get("/v1/projects/out/items?cursor=nonsense").status_code == 422
    labels_cursor = "WyJsYWJlbHMiLCAidG9waWMiLCAiaTAiLCAiYSJd"  # a labels cursor
    assert client.get(f"/v1/projects/out/items?cursor={labels_cursor}").status_code == 422
    assert client.get("/v1/projects/out/items?limit=0").status_code == 422
    assert client.get("/v1/projects/out/items?limit=1001").status_code == 422
    assert client.get("/v1/projects/out/labels?schema=nope").status_code == 422


def listed_while(app, client, path: str, key: str, limit: int, churn) -> tuple[list[dict], int]:
    """Every row of a listing read a page at a time while another client calls
    ``churn(client, k)`` for k = 0, 1, ...; the rows and how many writes went in."""
    stop, done, failed = threading.Event(), [0], []

    def run() -> None:
        c = app.test_client()
        c.environ_base.update(client.environ_base)
        while not stop.is_set():
            try:
                churn(c, done[0])
            except AssertionError as exc:
                failed.append(str(exc))
                return
            done[0] += 1

    writer = threading.Thread(target=run)
    writer.start()
    try:
        rows = [r for p in pages(client, path, key, pause=0.001, limit=limit) for r in p]
    finally:
        stop.set()
        writer.join()
    assert not failed, failed
    assert done[0] > 10, "the writes did not overlap the listing"
    return rows, done[0]


def test_item_pages_neither_skip_nor_repeat_under_concurrent_writes(app, client):
    make(client, n=3000)
    doomed = {f"i{k:04d}" for k in range(0, 3000, 7)}
    kept = {f"i{k:04d}" for k in range(3000)} - doomed

    def churn(c, k: int) -> None:
        # new items everywhere in the id order, replaced ones, deleted ones
        new = [{"id": f"i{(k * 37) % 3000:04d}x{k}", "text": "new"}, {"id": f"a{k}", "text": "new"}]
        same = [{"id": f"i{(k * 11) % 3000:04d}", "text": f"replaced {k}"}]
        assert c.post("/v1/projects/out/items", json={"items": new + same}).status_code == 200
        gone = sorted(doomed)[k] if k < len(doomed) else None
        if gone:
            assert c.delete(f"/v1/projects/out/items/{gone}").status_code == 204

    rows, _ = listed_while(app, client, "/v1/projects/out/items", "items", 40, churn)
    seen = [it["id"] for it in rows]
    assert len(seen) == len(set(seen)), "a row was listed twice"
    assert kept <= set(seen), f"{len(kept - set(seen))} rows that stayed were skipped"
    assert seen == sorted(seen)


def test_labels_list_with_filters_and_cursor_inside_an_item(client):
    make(client, n=20)
    label(client, [(f"i{k:04d}", "topic", a, "ab"[k % 2]) for k in range(10) for a in ("ann", "bob", "cy")])
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    label(client, [(f"i{k:04d}", "mood", "bob", "a") for k in range(5)])

    got = pages(client, "/v1/projects/out/labels", "labels", limit=4)
    flat = [r for p in got for r in p]
    assert len(flat) == 35 and all(len(p) <= 4 for p in got)
    order = [(r["schema"], r["item"], r["annotator"]) for r in flat]
    assert order[:4] == [("topic", "i0000", a) for a in ("ann", "bob", "cy")] + [("topic", "i0001", "ann")]
    assert order[30:] == [("mood", f"i{k:04d}", "bob") for k in range(5)]
    assert len(set(order)) == 35
    assert flat[1]["value"] == "a" and flat[3]["value"] == "b"
    assert flat[0]["updated_at"].endswith("Z")

    bob = [r for p in pages(client, "/v1/projects/out/labels", "labels", annotator="bob", limit=3) for r in p]
    assert len(bob) == 15 and {r["annotator"] for r in bob} == {"bob"}
    mood = [r for p in pages(client, "/v1/projects/out/labels", "labels", schema="mood") for r in p]
    assert [r["item"] for r in mood] == [f"i{k:04d}" for k in range(5)]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut)) + f".{int(cut * 1000) % 1000:03d}Z"
    recent = [r for p in pages(client, "/v1/projects/out/labels", "labels", updated_since=since) for r in p]
    assert {(r["schema"], r["item"]) for r in recent} == {("mood", f"i{k:04d}") for k in range(5)}

    # a cursor of one schema's listing is refused by another's
    first = client.get("/v1/projects/out/labels?schema=topic&limit=1").json["next_cursor"]
    assert client.get(f"/v1/projects/out/labels?schema=mood&cursor={first}").status_code == 422


def test_a_filter_that_matches_little_still_pages_through(client, monkeypatch):
    import workers.store.listing

    monkeypatch.setattr(workers.store.listing, "LABELS_SCANNED_PER_ROW", 2)
    make(client, n=60, schemas=("topic",))
    label(client, [(f"i{k:04d}", "topic", "ann" if k != 50 else "rare", "a") for k in range(60)])
    got = pages(client, "/v1/projects/out/labels", "labels", annotator="rare", limit=1)
    assert len(got) > 2  # short pages, each with a cursor, until the rare label and the end
    assert [r["item"] for p in got for r in p] == ["i0050"]


def test_label_pages_neither_skip_nor_repeat_under_concurrent_writes(app, client):
    make(client, n=1500, schemas=("topic",))
    existing = [(f"i{k:04d}", "topic", a, "a") for k in range(0, 1000) for a in ("ann", "bob")]
    for start in range(0, len(existing), 1000):
        label(client, existing[start : start + 1000])
    doomed = [f"i{k:04d}" for k in range(0, 1000, 9)]

    def churn(c, k: int) -> None:
        fresh = f"i{1000 + k % 500:04d}"
        relabel = f"i{(k * 13) % 1000:04d}"
        body = {
            "labels": [
                {"item": fresh, "schema": "topic", "annotator": "cy", "value": "b"},
                {"item": relabel, "schema": "topic", "annotator": "ann", "value": "b"},
            ]
        }
        assert c.post("/v1/projects/out/labels", json=body).status_code == 200
        if k < len(doomed):
            assert c.delete(f"/v1/projects/out/labels/topic/{doomed[k]}?annotator=bob").status_code == 204

    rows, _ = listed_while(app, client, "/v1/projects/out/labels", "labels", 30, churn)
    seen = [(x["item"], x["annotator"]) for x in rows]
    assert len(seen) == len(set(seen)), "a label was listed twice"
    stayed = {(i, a) for i, _, a, _ in existing} - {(i, "bob") for i in doomed}
    assert stayed <= set(seen), f"{len(stayed - set(seen))} labels that stayed were skipped"


def test_labels_export_as_json_lines_with_texts(client):
    make(client, n=30)
    label(client, [(f"i{k:04d}", "topic", a, "b") for k in range(25) for a in ("ann", "bob")])
    label(client, [("i0003", "mood", "cy", "a")])
    r = client.get("/v1/projects/out/labels.jsonl")
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    assert r.headers["X-Total-Count"] == "51"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    listed = [x for p in pages(client, "/v1/projects/out/labels", "labels", limit=7) for x in p]
    assert [{k: v for k, v in line.items() if k != "text"} for line in lines] == listed
    assert lines[0]["text"] == "text 0 é"
    only = client.get("/v1/projects/out/labels.jsonl?schema=mood&annotator=cy").get_data(as_text=True)
    assert [json.loads(x)["item"] for x in only.splitlines()] == ["i0003"]


def test_data_from_before_the_indexes_is_indexed_at_start(client, redis_conn):
    make(client, n=12)
    label(client, [("i0002", "topic", "ann", "a")])
    for key in (keys.item_index("out"), keys.labelled_index("out", "topic")):
        redis_conn.delete(key)
    redis_conn.set(keys.layout(), 2)
    migrate(redis_conn)
    assert int(redis_conn.get(keys.layout())) == LAYOUT
    assert len(client.get("/v1/projects/out/items").json["items"]) == 12
    assert [x["item"] for x in client.get("/v1/projects/out/labels").json["labels"]] == ["i0002"]
