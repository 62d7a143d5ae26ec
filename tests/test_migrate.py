"""Data written in the earlier key layout is renamed and served as before."""

from __future__ import annotations

from workers.store import keys
from workers.store.migrate import LAYOUT, migrate


def _to_layout_1(redis_conn) -> int:
    """Rename every key of the current layout back to layout 1, as an older version wrote."""
    moved = 0
    for raw in list(redis_conn.scan_iter(match="alrank:*")):
        key = raw.decode()
        for kind in ("alrank:", "alrank:sim:"):
            rest = key[len(kind) :]
            if key.startswith(kind + "{"):
                owner, _, tail = rest[1:].partition("}:")
                old = f"alrank:p:{owner}:{tail}" if kind == "alrank:" else f"alrank:sim:{owner}:{tail}"
                redis_conn.rename(key, old)
                moved += 1
                break
    redis_conn.delete(keys.layout())
    return moved


def test_an_older_layout_is_renamed_once_and_served_as_before(client, redis_conn, labelled_project):
    labels = labelled_project("old", rounds=1, size=8)
    before = client.get("/v1/projects/old").json
    models = client.get("/v1/projects/old/models?schema=topic").json
    written = {k for k in redis_conn.scan_iter(match="alrank:*") if k.decode() != keys.layout()}

    moved = _to_layout_1(redis_conn)
    assert moved > 10 and client.get("/v1/projects/old").status_code == 404  # the old layout is unreadable

    assert migrate(redis_conn) == moved
    assert int(redis_conn.get(keys.layout())) == LAYOUT
    assert migrate(redis_conn) == 0  # once
    assert {k for k in redis_conn.scan_iter(match="alrank:*") if k.decode() != keys.layout()} == written
    assert client.get("/v1/projects/old").json == before
    assert client.get("/v1/projects/old/models?schema=topic").json == models
    again = client.get("/v1/projects/old/next?schema=topic&annotator=b&size=5").json
    assert again["model_version"] == models["models"][-1]["version"]
    assert not {it["id"] for it in again["items"]} & {lab["item"] for lab in labels}
