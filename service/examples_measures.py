"""Examples of the OpenAPI document: the metrics, agreement, label issues and
simulations, as the service answers them (``service.openapi``)."""

from __future__ import annotations

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
