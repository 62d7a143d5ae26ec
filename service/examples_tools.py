"""Examples of the OpenAPI document: Label Studio's ML-backend calls and Potato's
configs, as the tools send them (``service.openapi``)."""

from __future__ import annotations

from service.examples import PROJECT_CREATED

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
