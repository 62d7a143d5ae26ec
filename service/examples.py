"""Example requests and responses, shown with each operation in the OpenAPI document.

One project (``reviews``, a ``sentiment`` schema) runs through all of them, as in the
README's walk through the loop; a test holds every example to its documented schema.
"""

from __future__ import annotations

_SCHEMA = {"name": "sentiment", "labels": ["positive", "negative", "neutral"], "multi_label": False}

_ACTIVE_LEARNING = {
    "enabled": True,
    "schema_names": None,
    "query_strategy": "diverse_uncertainty",
    "uncertainty_measure": "margin",
    "min_instances_for_training": 20,
    "update_frequency": 10,
    "random_sample_percent": 0.1,
    "min_annotations_per_instance": 1,
    "resolution_strategy": "majority_vote",
    "hybrid_weights": None,
    "hybrid_shares": None,
    "bald_params": {"n_estimators": 5, "bootstrap_fraction": 0.8},
    "vectorizer_name": "tfidf+wordllama",
    "classifier_name": "logistic_regression",
    "eval_fraction": 0.1,
    "eval_size": 400,
    "train_on_eval": True,
}

PROJECT_CREATE = {
    "name": "reviews",
    "description": "Product reviews for the returns team",
    "schemas": [{"name": "sentiment", "labels": ["positive", "negative", "neutral"]}],
    "active_learning": {
        "query_strategy": "diverse_uncertainty",
        "min_instances_for_training": 20,
        "update_frequency": 10,
        "random_sample_percent": 0.1,
    },
}

PROJECT = {
    "name": "reviews",
    "description": "Product reviews for the returns team",
    "schemas": [_SCHEMA],
    "active_learning": _ACTIVE_LEARNING,
    "lease_seconds": 600,
    "vector_dim": None,
    "created_at": "2026-11-23T12:00:00Z",
    "items": 5000,
    "counts": {
        "sentiment": {
            "labelled": 120,
            "with_any_label": 120,
            "leased": 10,
            "unlabelled": 4880,
            "model_version": 11,
            "ranking": {
                "ranking_id": "12",
                "strategy": "diverse_uncertainty",
                "model_version": 11,
                "published_at": "2026-11-23T12:40:02Z",
                "ranked": 4880,
                "head": 4880,
            },
        }
    },
}

PROJECT_CREATED = {
    **PROJECT,
    "api_key": {
        "id": "3f9c2a71be04",
        "name": "first key",
        "role": "manager",
        "annotators": [],
        "created_at": "2026-11-23T12:00:00Z",
        "key": "alr_3f9c2a71be04_Qm9vZ2xlLWFsd2F5cy1pbi10aGUtbWlkZGxlLW9mLWl0cy1s",
    },
}

KEY_CREATE = {
    "name": "ana's laptop",
    "role": "annotator",
    "annotators": ["ana"],
    "rate_limit_per_minute": 600,
}

NEW_KEY = {
    "id": "8d0e5b2c4a1f",
    "name": "ana's laptop",
    "role": "annotator",
    "annotators": ["ana"],
    "rate_limit_per_minute": 600,
    "created_at": "2026-11-23T12:05:00Z",
    "key": "alr_8d0e5b2c4a1f_c2VjcmV0LXNob3duLW9uY2UtYW5kLW5ldmVyLWFnYWluLWhlcmU",
}

KEY_LIST = {
    "keys": [
        {k: v for k, v in NEW_KEY.items() if k != "key"},
        {
            "id": "3f9c2a71be04",
            "name": "first key",
            "role": "manager",
            "annotators": [],
            "created_at": "2026-11-23T12:00:00Z",
        },
    ]
}

PROJECT_PATCH = {"active_learning": {"update_frequency": 25}, "lease_seconds": 900}

PROJECT_LIST = {"projects": ["reviews", "tickets"]}

ITEMS_UPLOAD = {
    "items": [
        {"id": "r1", "text": "Loved it, would buy again", "metadata": {"shop": "north"}},
        {"id": "r2", "text": "Broke after a week"},
        {"id": "r3", "text": "It is a kettle", "vector": [0.1, 0.3, 0.7]},
    ]
}

ITEMS_UPLOAD_RESULT = {"created": 2, "updated": 1, "pool_size": 5000}

ITEM = {
    "id": "r1",
    "text": "Loved it, would buy again",
    "metadata": {"shop": "north"},
    "labels": {"sentiment": {"ana": "positive"}},
}

ITEMS_PAGE = {
    "items": [
        {"id": "r1", "text": "Loved it, would buy again", "metadata": {"shop": "north"}},
        {"id": "r2", "text": "Broke after a week", "metadata": {}},
    ],
    "next_cursor": "WyJpdGVtcyIsICJyMiJd",
}

LABELS_UPLOAD = {
    "labels": [
        {"item": "r1", "schema": "sentiment", "value": "positive", "annotator": "ana"},
        {"item": "r2", "schema": "sentiment", "value": "negative", "annotator": "ana"},
    ]
}

LABELS_RESULT = {"received": 2, "new": 2, "training_jobs": {"sentiment": "6f1c0e2a9b7d4e21a3c5f0d18b2e4c7a"}}

LABELS_PAGE = {
    "labels": [
        {
            "item": "r1",
            "schema": "sentiment",
            "annotator": "ana",
            "value": "positive",
            "updated_at": "2026-11-23T12:41:07.215Z",
        },
        {
            "item": "r2",
            "schema": "sentiment",
            "annotator": "ana",
            "value": "negative",
            "updated_at": "2026-11-23T12:41:19.804Z",
        },
    ],
    "next_cursor": "WyJsYWJlbHMiLCAic2VudGltZW50IiwgInIyIiwgImFuYSJd",
}

IMPORT_RESULT = {
    "project": "reviews",
    "items": 5000,
    "labels": 1240,
    "api_keys": 0,
    "training_jobs": {"sentiment": "0b9e4c1d7a2f4e8b9c3d5a6f7e8d9c0b"},
}

BATCH = {
    "project": "reviews",
    "schema": "sentiment",
    "annotator": "ana",
    "strategy": "diverse_uncertainty",
    "model_version": 11,
    "ranking_id": "12",
    "lease_expires_at": "2026-11-23T12:50:00Z",
    "items": [
        {
            "id": "r2",
            "text": "Broke after a week",
            "metadata": {},
            "score": 0.93,
            "rank": 1,
            "source": "ranking",
            "prediction": {"label": "negative", "confidence": 0.54},
        },
        {
            "id": "r77",
            "text": "Arrived on time",
            "metadata": {"shop": "south"},
            "score": 0.0,
            "rank": 2318,
            "source": "random",
            "prediction": {"label": "neutral", "confidence": 0.61},
        },
    ],
}

RELEASE = {"schema": "sentiment", "annotator": "ana", "items": ["r2"]}

RELEASE_RESULT = {"released": 1}

JOB_REF = {
    "job": "6f1c0e2a9b7d4e21a3c5f0d18b2e4c7a",
    "status_url": "/v1/jobs/6f1c0e2a9b7d4e21a3c5f0d18b2e4c7a",
}

JOB = {
    "id": "6f1c0e2a9b7d4e21a3c5f0d18b2e4c7a",
    "status": "finished",
    "project": "reviews",
    "schema": "sentiment",
    "reason": "10 new labels",
    "progress": {"stage": "done", "fraction": 1.0},
    "enqueued_at": "2026-11-23T12:40:00Z",
    "started_at": "2026-11-23T12:40:00Z",
    "ended_at": "2026-11-23T12:40:02Z",
    "result": {
        "status": "published",
        "ranking_id": "12",
        "strategy": "diverse_uncertainty",
        "model_version": 11,
        "ranked": 4880,
        "seconds": 1.8,
    },
    "error": None,
}

MODELS = {
    "schema": "sentiment",
    "models": [
        {
            "version": 11,
            "created_at": "2026-11-23T12:40:01Z",
            "training_size": 114,
            "served_training_size": 120,
            "train_seconds": 0.21,
            "classifier": "logistic_regression",
            "classes": ["negative", "neutral", "positive"],
            "class_counts": {"positive": 51, "negative": 40, "neutral": 23},
            "temperature": 1.31,
            "metrics": {
                "cv_accuracy": 0.79,
                "model_choice": {"chosen": "logistic_regression", "reason": "sparse text features"},
            },
            "evaluation": {"size": 6, "accuracy": 0.83, "macro_f1": 0.81},
            "stop_kappa": 0.94,
            "serving": True,
        }
    ],
}

HEALTH = {"status": "ok", "workers": None}

READY = {"status": "ready", "workers": 2}

RANKING = {
    "schema": "sentiment",
    "ranking_id": "7",
    "strategy": "diverse_uncertainty",
    "model_version": 3,
    "published_at": "2026-11-23T12:05:00Z",
    "pool_size": 4460,
    "labelled": 120,
    "items": [
        {"id": "r-1042", "rank": 1, "score": 0.97, "prediction": {"label": "neutral", "confidence": 0.41}},
        {"id": "r-0071", "rank": 2, "score": 0.95, "prediction": {"label": "positive", "confidence": 0.44}},
    ],
}

PREDICT = {
    "items": [
        {"id": "new-1", "text": "The battery died after a week."},
        {"text": "Arrived early and works as described."},
    ]
}

PREDICT_RESULT = {
    "schema": "sentiment",
    "model_version": 3,
    "predictions": [
        {
            "id": "new-1",
            "label": "negative",
            "confidence": 0.91,
            "probabilities": {"negative": 0.91, "neutral": 0.06, "positive": 0.03},
        },
        {
            "id": None,
            "label": "positive",
            "confidence": 0.84,
            "probabilities": {"negative": 0.04, "neutral": 0.12, "positive": 0.84},
        },
    ],
}

LABELS_JSONL = (
    '{"item": "r1", "text": "Loved it, would buy again", "schema": "sentiment", "annotator": "ana", '
    '"value": "positive", "updated_at": "2026-11-23T12:04:11Z"}\n'
    '{"item": "r2", "text": "Broke after a week", "schema": "sentiment", "annotator": "ana", '
    '"value": "negative", "updated_at": "2026-11-23T12:04:11Z"}\n'
)

EXPORT_LINES = (
    '{"alrank": "project", "format": 1, "exported_at": "2026-11-23T12:00:00Z", '
    '"project": {"name": "reviews", "schemas": [{"name": "sentiment", '
    '"labels": ["positive", "negative"]}]}}\n'
    '{"item": "r1", "text": "Loved it, would buy again", "metadata": {"shop": "north"}}\n'
    '{"labelled": "r1", "schema": "sentiment", "values": {"ana": "positive"}, '
    '"times": {"ana": 1763899451000}}\n'
    '{"end": true, "items": 1, "labels": 1}\n'
)

PROMETHEUS = (
    "# HELP alrank_labels_received_total Labels stored, by the way they came in\n"
    "# TYPE alrank_labels_received_total counter\n"
    'alrank_labels_received_total{source="api"} 1250.0\n'
    "# HELP alrank_ranking_age_max_seconds The oldest published ranking's age, over every schema\n"
    "# TYPE alrank_ranking_age_max_seconds gauge\n"
    "alrank_ranking_age_max_seconds 42.0\n"
)

INDEX_PAGE = (
    '<!doctype html><html lang="en"><title>alrank</title>'
    '<ul><li><a href="/v1/projects/reviews/page">reviews</a></li></ul></html>'
)
