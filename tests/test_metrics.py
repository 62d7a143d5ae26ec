"""The random evaluation sample, the learning curve and the stopping signal."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from workers.stopping import stopping_signal


def test_stopping_signal_needs_three_stable_versions():
    stable = [{"version": i, "stop_kappa": k} for i, k in enumerate([None, 0.995, 0.999, 1.0], 1)]
    assert stopping_signal(stable)[0] is True
    shaky = [*stable[:-1], {"version": 4, "stop_kappa": 0.9}]
    stop, reason = stopping_signal(shaky)
    assert stop is False and "0.900" in reason
    assert stopping_signal(stable[:3])[0] is False  # too few versions to tell


def test_evaluation_sample_and_metrics(client, run_jobs):
    x, y = load_digits(return_X_y=True)
    body = {
        "name": "d",
        "schemas": [{"name": "digit", "labels": [str(i) for i in range(10)]}],
        "active_learning": {"min_instances_for_training": 20, "update_frequency": 20, "eval_fraction": 0.25},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"d{i}", "vector": x[i].tolist()} for i in range(600)]
    client.post("/v1/projects/d/items", json={"items": items})
    run_jobs()
    sources: list[str] = []
    for _ in range(5):
        batch = client.get("/v1/projects/d/next?schema=digit&annotator=a&size=20").json
        sources += [it["source"] for it in batch["items"]]
        labels = [
            {"item": it["id"], "schema": "digit", "value": str(y[int(it["id"][1:])]), "annotator": "a"}
            for it in batch["items"]
        ]
        client.post("/v1/projects/d/labels", json={"labels": labels})
        run_jobs()
    n_eval = sources.count("evaluation")
    assert 10 <= n_eval <= 40  # about a quarter of 100
    models = client.get("/v1/projects/d/models?schema=digit").json["models"]
    last = models[-1]
    assert last["evaluation"]["size"] == n_eval
    assert last["training_size"] == 100 - n_eval  # the evaluation sample is not trained on
    assert 0.0 <= last["evaluation"]["accuracy"] <= 1.0
    assert all(m["stop_kappa"] is None for m in models[:1]) and models[-1]["stop_kappa"] is not None
    metrics = client.get("/v1/projects/d/metrics?schema=digit").json
    assert [p["version"] for p in metrics["curve"]] == [m["version"] for m in models]
    assert isinstance(metrics["should_stop"], bool) and metrics["reason"]
    png = client.get("/v1/projects/d/metrics.png?schema=digit")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    assert np.isfinite(metrics["curve"][-1]["accuracy"])
