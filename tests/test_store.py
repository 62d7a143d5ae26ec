"""The data layer (workers/store/): the layout in keys.py is the whole layout."""

from __future__ import annotations

import re

from workers.store import keys


def _patterns() -> list[re.Pattern]:
    """Every key keys.py can name, with its variable parts as wildcards."""
    p, s = "P", "S"
    named = [
        keys.projects(),
        keys.layout(),
        keys.api_keys(),
        keys.project_keys(p),
        keys.rate_window("*", "*"),  # type: ignore[arg-type]
        keys.config(p),
        keys.items(p),
        keys.vectors(p),
        keys.item_index(p),
        keys.generation(p),
        keys.features(p, "*"),
        keys.label_studio(p),
        keys.label_studio_annotations(p),
        keys.sync_job(p, "*", "*"),
        keys.potato(p),
        keys.potato_given(p),
        keys.labels(p, s),
        keys.label_times(p, s),
        keys.labelled_index(p, s),
        keys.annotator_counts(p, s),
        keys.label_revision(p, s),
        keys.asked(p, s),
        keys.featurizer(p, s, "*"),  # type: ignore[arg-type]
        keys.featurizer_latest(p, s),
        keys.model_latest(p, s),
        keys.since_trigger(p, s),
        keys.leases(p, s),
        keys.owners(p, s),
        keys.annotator_leases(p, s, "*"),
        keys.evaluation(p, s),
        keys.gains(p, s),
        keys.eval_sample(p, s),
        keys.eval_sample_head(p, s),
        keys.random_draws(p, s),
        *(key(p, s, q) for q in keys.QUEUES for key in (keys.queue, keys.queue_due, keys.queue_head)),
        keys.quality(p, s),
        keys.activity(p, s),
        keys.activity_hours(p, s),
        keys.ranking(p, s),
        keys.ranking_sequence(p, s),
        *(keys.ranking_part(p, s, "*", part) for part in keys.RANKING_PARTS),
        keys.models(p, s),
        keys.model_sequence(p, s),
        keys.model(p, s, "*"),  # type: ignore[arg-type]
        keys.stop_predictions(p, s, "*"),  # type: ignore[arg-type]
        keys.jobstate(p, s),
        keys.refresh_lock(p, s),
        keys.metrics(),
        keys.simulation("*") + "*",
    ]
    out = []
    for key in named:
        pattern = re.escape(key).replace(r"\*", "[^:]+")
        pattern = pattern.replace(r"\{P\}", r"\{[^:}]+\}").replace(":s:S:", ":s:[^:]+:")
        out.append(re.compile(pattern + "$"))
    return out


def test_every_key_the_service_writes_is_in_the_layout(client, redis_conn, labelled_project):
    labelled_project("layout", rounds=3, size=6)
    client.post("/v1/projects/layout/leases/release", json={"schema": "topic", "annotator": "a2"})
    client.get("/v1/projects/layout/next?schema=topic&annotator=z&size=3")
    assert client.get("/v1/projects/layout/models?schema=topic").json["models"]

    patterns = _patterns()
    written = [k.decode() for k in redis_conn.scan_iter(match="alrank:*")]
    assert len(written) > 20
    undocumented = [k for k in written if not any(p.match(k) for p in patterns)]
    assert not undocumented, f"keys not in workers/store/keys.py: {undocumented}"


def test_a_script_named_for_an_old_ranking_is_named_again(client, redis_conn, run_jobs):
    """The ranking id a Store remembers may be out of date (another process published a
    newer ranking): the script answers stale and the call is made again with the new keys."""
    from workers.store import Store

    body = {"name": "stale", "schemas": [{"name": "s", "labels": ["a", "b"]}]}
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{k}", "text": f"text {k}"} for k in range(20)]
    client.post("/v1/projects/stale/items", json={"items": items})
    run_jobs()
    store = Store(redis_conn)
    published = store.ranking_meta("stale", "s")["ranking_id"]
    store.seen_rankings[("stale", "s")] = "no-such-ranking"
    batch = store.next_batch("stale", "s", "ana", 5, 600, 0, 1)
    assert batch.ranking_id == published and len(batch.items) == 5
    assert all(it.source == "ranking" and it.entry is not None for it in batch.items)
    assert store.seen_rankings[("stale", "s")] == published
    assert store.release("stale", "s", "ana", None) == 5
