"""A batch's random shares (workers/batches.py)."""

from __future__ import annotations

from workers.batches import share


def test_a_share_alternates_and_its_running_total_is_exact():
    asked, draws = 0, []
    for _ in range(40):
        draws.append(share(asked, 10, 0.05))
        asked += 10
    assert draws[:4] == [0, 1, 0, 1]
    assert sum(draws) == 20  # 5% of 400
    assert share(0, 20, 0.05) == 1 and share(0, 10, 0.0) == 0 and share(3, 7, 1.0) == 7


def test_uneven_batches_keep_the_total_within_one_item():
    asked, total = 0, 0
    for size in [3, 17, 1, 25, 9, 40, 2, 11] * 20:
        total += share(asked, size, 0.13)
        asked += size
        assert abs(total - 0.13 * asked) < 1


def test_the_script_draws_the_same_counts(client, run_jobs):
    """GET /next's evaluation items follow the same formula, batch after batch."""
    body = {
        "name": "shares",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"vectorizer_name": "tfidf", "eval_fraction": 0.3, "random_sample_percent": 0.15},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{k}", "text": f"word{k % 7} text {k}"} for k in range(300)]
    assert client.post("/v1/projects/shares/items", json={"items": items}).status_code == 200
    run_jobs()
    asked = 0
    for size in (7, 3, 10, 1, 13):
        batch = client.get(f"/v1/projects/shares/next?schema=s&annotator=a{size}&size={size}").json
        sources = [it["source"] for it in batch["items"]]
        assert sources.count("evaluation") == share(asked, size, 0.3)
        assert sources.count("random") == share(asked, size, 0.15)
        asked += size
