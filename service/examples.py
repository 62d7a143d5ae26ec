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
    "train_on_eval": False,
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

ANNOTATOR_FIGURES = ("labels", "overlapped_items", "agreement", "cohen_kappa", "reliability")

AGREEMENT = {
    "overlapped_items": 84,
    "annotators": 3,
    "fleiss_kappa": 0.71,
    "krippendorff_alpha": 0.71,
    "pairs": [
        {"annotators": ["ana", "ben"], "items": 40, "cohen_kappa": 0.78},
        {"annotators": ["ana", "cy"], "items": 38, "cohen_kappa": 0.52},
    ],
    "per_annotator": {
        name: dict(zip(ANNOTATOR_FIGURES, row, strict=True))
        for name, row in (
            ("ana", (310, 78, 0.87, 0.79, 0.91)),
            ("ben", (120, 46, 0.85, 0.76, 0.9)),
            ("cy", (95, 44, 0.7, 0.55, 0.74)),
        )
    },
    "model_version": 11,
    "computed_at": "2026-11-23T12:40:03Z",
}

LABEL_ISSUES = {
    "schema": "sentiment",
    "status": "found",
    "method": "confident learning (cleanlab.filter.find_label_issues) on out-of-fold probabilities "
    "of the schema's model kind; ranked by one minus the probability of the label given",
    "model_version": 11,
    "computed_at": "2026-11-23T12:40:03Z",
    "checked": 414,
    "flagged": 9,
    "queued_for_review": 6,
    "seconds": 0.42,
    "issues": [
        {
            "item": "r7",
            "text": "Worst purchase I ever made.",
            "given": "positive",
            "suggested": "negative",
            "score": 0.97,
            "annotators": {"cy": "positive"},
            "queued_for_review": True,
        }
    ],
}

METRICS = {
    "schema": "sentiment",
    "curve": [
        {
            "version": 11,
            "labels": 414,
            "accuracy": 0.83,
            "accuracy_interval": [0.76, 0.88],
            "macro_f1": 0.81,
            "macro_f1_interval": [0.73, 0.87],
            "evaluation_size": 120,
            "stop_kappa": 0.94,
            "stop_kappa_interval": [0.93, 0.95],
            "equivalent_random_labels": 905,
            "equivalent_random_interval": [610, 1480],
            "created_at": "2026-11-23T12:40:01Z",
            "classifier": "logistic_regression",
            "train_seconds": 0.21,
        }
    ],
    "gain": {
        "status": "estimated",
        "verdict": "saving",
        "model_version": 11,
        "statement": (
            "The model at 414 labels is as accurate as random labelling would be at about 905 "
            "labels (95% interval 610 to 1480): active learning is saving about 491 labels."
        ),
        "labels": 414,
        "equivalent_random_labels": 905,
        "interval": [610, 1480],
        "labels_saved": 491,
        "labels_saved_interval": [196, 1066],
        "accuracy": 0.83,
        "random_labels": 161,
        "evaluation_size": 120,
        "extrapolated": True,
        "cap": 2570,
        "random_curve": [{"labels": 10, "accuracy": 0.41}, {"labels": 257, "accuracy": 0.79}],
        "method": "inverse power law fitted to models on the exploration share's uniform draws",
    },
    "stopping": {
        "should_stop": False,
        "reason": (
            "predictions still changing: kappa of the last 3 versions 0.910, 0.925, 0.940 "
            "(stable at >= 0.99); certainty 1.00"
        ),
        "criterion": "stabilising predictions (Bloodgood & Vijay-Shanker 2009): ...",
        "threshold": 0.99,
        "window": 3,
        "kappas": [{"version": 11, "labels": 414, "kappa": 0.94, "interval": [0.93, 0.95]}],
        "certainty": 1.0,
    },
    "should_stop": False,
    "reason": (
        "predictions still changing: kappa of the last 3 versions 0.910, 0.925, 0.940 "
        "(stable at >= 0.99); certainty 1.00"
    ),
    "agreement": AGREEMENT,
}

SIMULATION_REQUEST = {
    "source": {"project": "reviews", "schema": "sentiment"},
    "strategies": ["diverse_uncertainty", "uncertainty"],
    "budget": 500,
}

SIMULATION_REF = {
    "id": "3b9d2c7e1f0a4b6c8d5e7f9a1b3c5d7e",
    "status_url": "/v1/simulations/3b9d2c7e1f0a4b6c8d5e7f9a1b3c5d7e",
}

SIMULATION = {
    "id": "3b9d2c7e1f0a4b6c8d5e7f9a1b3c5d7e",
    "status": "started",
    "settings": {"strategies": ["diverse_uncertainty", "uncertainty", "random"], "budget": 500, "repeats": 5},
    "source": {"kind": "project", "project": "reviews", "schema": "sentiment"},
    "progress": {"stage": "simulating", "fraction": 0.4, "eta_seconds": 95},
    "enqueued_at": "2026-11-23T13:00:00Z",
    "started_at": "2026-11-23T13:00:01Z",
    "ended_at": None,
    "summary": None,
    "files": {},
    "error": None,
}

HEALTH = {"status": "ok", "workers": None}

READY = {"status": "ready", "workers": 2}

LS_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="single">'
    '<Choice value="ham"/><Choice value="spam"/></Choices></View>'
)

LS_SETUP = {
    "project": "1.1796157013",
    "schema": LS_CONFIG,
    "hostname": "http://localhost:8080",
    "access_token": "0123456789abcdef0123456789abcdef01234567",
    "extra_params": None,
}

LS_PREDICT = {
    "tasks": [{"id": 139, "data": {"text": "Free entry in 2 a wkly comp to win FA Cup final tkts"}}],
    "project": "1.1796157013",
    "label_config": LS_CONFIG,
    "params": {"login": None, "password": None, "context": None},
}

LS_PREDICTIONS = {
    "results": [
        {
            "result": [
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["spam"]},
                    "score": 0.93,
                }
            ],
            "score": 0.0008,
            "model_version": "alrank-label-v3-r7",
        }
    ],
    "model_version": "alrank-label-v3-r7",
}

LS_WEBHOOK = {
    "action": "ANNOTATION_CREATED",
    "annotation": {
        "id": 1,
        "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["spam"]}}
        ],
        "was_cancelled": False,
        "task": 139,
        "completed_by": 1,
    },
    "task": {"id": 139, "data": {"text": "Free entry in 2 a wkly comp to win FA Cup final tkts"}},
    "project": {"id": 1, "label_config": LS_CONFIG},
}

LABEL_STUDIO = {
    "backend_url": "http://127.0.0.1:8000/ls/reviews/9f2c4e0b7d1a3c5e8f6b2d4a0c9e7f1b3d5a8c6e",
    "connected": True,
    "url": "http://localhost:8080",
    "project": 1,
    "text_field": "text",
    "order_schema": "label",
    "settings": {"head": 100, "url": None, "order_schema": None},
    "tasks": {"state": "done", "at": "2026-12-02T10:00:03Z", "tasks": 4460, "changed": 4460, "deleted": 0},
    "order": {"state": "done", "at": "2026-12-02T10:04:12Z", "version": "alrank-label-v3-r7", "pushed": 100},
    "annotations": None,
}

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

POTATO_CONFIG = """annotation_task_name: sentiment-al
annotation_schemes:
  - annotation_type: radio
    name: sentiment
    labels: [positive, negative, neutral]
active_learning:
  enabled: true
  min_instances_for_training: 20
  update_frequency: 10
  classifier_name: sklearn.linear_model.LogisticRegression
  vectorizer_name: sklearn.feature_extraction.text.TfidfVectorizer
  vectorizer_kwargs: {max_features: 1000, stop_words: english}
  random_sample_percent: 20
"""

POTATO_CREATED = {
    **PROJECT_CREATED,
    "notes": ["active_learning.random_sample_percent: 20 read as 20% (a fraction of 0.2)"],
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
