"""A Potato (2.12) project config as an alrank project.

``project_from_potato`` reads the whole config: its ``annotation_task_name`` names the
project, its ``annotation_schemes`` become schemas, and every key of its
``active_learning:`` block that Potato reads is honoured, mapped to alrank's equivalent, or
refused with a message that names the key and says why. What was done with each key comes
back as notes, so a team moving from Potato sees it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

from workers import limits
from workers.exceptions import InvalidInput

SAME = (
    "enabled",
    "min_annotations_per_instance",
    "min_instances_for_training",
    "update_frequency",
    "query_strategy",
    "hybrid_weights",
    "bald_params",
    "resolution_strategy",
    "max_instances_to_reorder",
    "calibrate_probabilities",
    "classifier_name",
    "vectorizer_name",
)
"""Keys alrank reads under Potato's name, with Potato's meaning."""

NOT_USED = {
    "cold_start_batch_size": "Potato reads it only for its LLM cold start, which alrank does not run",
    "icl_ensemble_params": "Potato reads it only with use_icl_ensemble, which alrank does not run",
    "annotation_routing": "Potato only logs routing statistics with it; alrank's metrics endpoint "
    "reports its own",
    "routing_thresholds": "Potato declares it but does not read it",
    "verification_sample_rate": "Potato declares it but does not read it",
    "confidence_method": "only Potato's config validator reads it",
    "database": "Potato ignores it",
    "schema_configs": "Potato does not read it",
    "model_persistence": "alrank keeps every model version in its store (GET /v1/projects/{project}/models), "
    "not as pickles in a folder",
    "model_persistence_enabled": "alrank keeps every model version in its store",
    "model_save_directory": "alrank keeps every model version in its store, not in a folder",
    "model_retention_count": "alrank keeps every model version in its store",
}
"""Keys with nothing to do in alrank, and why."""

OFFLINE = "alrank runs offline, with no model endpoint to call: there is no LLM it could ask"

CHOICE_TYPES = {"radio": False, "select": False, "multiselect": True}
"""Potato's annotation types that are a choice among labels, and whether several may be chosen."""


def project_from_potato(config: Any, name: str | None = None) -> tuple[dict, list[str]]:
    """The alrank project body for a Potato config, and a note per key on what became of it."""
    if not isinstance(config, dict):
        raise InvalidInput(
            "a Potato config is a YAML mapping (annotation_task_name, annotation_schemes, ...)"
        )
    notes: list[str] = []
    schemas = _schemas(config.get("annotation_schemes"), notes)
    project_name = name or _name(config.get("annotation_task_name"))
    block = config.get("active_learning") or {}
    if not isinstance(block, dict):
        raise InvalidInput("active_learning: expected a mapping of Potato's active-learning keys")
    al = _active_learning(block, notes)
    if config.get("assignment_strategy") not in (None, "active_learning"):
        notes.append(
            f"assignment_strategy {config['assignment_strategy']!r}: alrank serves its ranking to whoever "
            "asks for the next batch; the key is Potato's"
        )
    body = {"name": project_name, "schemas": schemas, "active_learning": al}
    if config.get("annotation_task_description"):
        body["description"] = str(config["annotation_task_description"])[:10_000]
    return body, notes


def _name(task_name: Any) -> str:
    if not task_name:
        raise InvalidInput("the config has no annotation_task_name: give the project a name (?name=...)")
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "-", str(task_name)).strip("-._")[:64]
    if not re.match(limits.NAME_PATTERN, cleaned):
        raise InvalidInput(f"annotation_task_name {task_name!r} makes no project name: give one (?name=...)")
    return cleaned


def _schemas(schemes: Any, notes: list[str]) -> list[dict]:
    if not isinstance(schemes, list) or not schemes:
        raise InvalidInput("annotation_schemes: a Potato config lists its annotation schemes there")
    out = []
    for k, scheme in enumerate(schemes):
        if not isinstance(scheme, dict) or not scheme.get("name"):
            raise InvalidInput(f"annotation_schemes[{k}] needs a name")
        kind = scheme.get("annotation_type")
        if kind == "likert":
            size = scheme.get("size")
            if not isinstance(size, int) or size < 2:
                raise InvalidInput(
                    f"annotation_schemes[{k}] ({scheme['name']}): a likert scheme needs a size of 2 or more"
                )
            out.append(
                {"name": scheme["name"], "labels": [str(v) for v in range(1, size + 1)], "multi_label": False}
            )
            notes.append(f"{scheme['name']}: a likert scale, ranked as {size} classes '1'..'{size}'")
            continue
        if kind not in CHOICE_TYPES:
            notes.append(
                f"{scheme['name']}: a {kind} scheme is not a choice among labels, "
                "so alrank does not rank for it"
            )
            continue
        labels = [_label(v) for v in scheme.get("labels") or []]
        if len(set(labels)) < 2:
            raise InvalidInput(
                f"annotation_schemes[{k}] ({scheme['name']}): needs at least two distinct labels"
            )
        out.append({"name": scheme["name"], "labels": labels, "multi_label": CHOICE_TYPES[kind]})
    if not out:
        raise InvalidInput(
            "annotation_schemes: none is a choice among labels (radio, select, multiselect or likert), "
            "so there is nothing for alrank to rank for"
        )
    return out


def _label(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("key") or "")
    return str(value)


def _active_learning(block: dict, notes: list[str]) -> dict:
    al: dict[str, Any] = {}
    for key, value in block.items():
        if key in SAME:
            al[key] = value
        elif key in HANDLERS:
            HANDLERS[key](value, al, notes)
        elif key in NOT_USED:
            notes.append(f"active_learning.{key}: not used; {NOT_USED[key]}")
        else:
            notes.append(f"active_learning.{key}: not a key Potato 2.12 reads; ignored")
    if "schema_names" in al and not al["schema_names"]:
        al["schema_names"] = None  # Potato: every learnable scheme
    _models(al, notes)
    return al


SVC_KERNELS = {"rbf": "svc", "linear": "linear_svm"}
"""SVC's kernels alrank trains: RBF as ``svc``, linear as ``linear_svm``."""

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def _svc(al: dict, params: dict, notes: list[str]) -> None:
    """Potato's SVC: its kernel picks alrank's model; probability is always on here."""
    kernel = params.pop("kernel", "rbf")
    if kernel not in SVC_KERNELS:
        raise InvalidInput(
            f"active_learning.classifier_kwargs.kernel {kernel!r}: alrank trains SVC's rbf kernel "
            "(as svc) and its linear one (as linear_svm)"
        )
    al["classifier_name"] = SVC_KERNELS[kernel]
    if kernel == "linear":
        params.pop("gamma", None)
        notes.append("active_learning.classifier_name: SVC with the linear kernel trains as linear_svm")
    if "probability" in params:
        params.pop("probability")
        notes.append(
            "active_learning.classifier_kwargs.probability: not used; alrank always calibrates the "
            "model's probabilities (a temperature fitted by cross-validation)"
        )
    if params:
        al["classifier_params"] = params


def _models(al: dict, notes: list[str]) -> None:
    """Potato's model and feature names that alrank has under another name, or not at all."""
    classifier = al.get("classifier_name")
    params = al.get("classifier_params")
    if classifier is None and params:
        # hyperparameters without a name are Potato's default model's
        al["classifier_name"] = "logistic_regression"
    if classifier == "sklearn.svm.SVC":
        _svc(al, params or {}, notes)
    if params and "n_jobs" in params:
        params.pop("n_jobs")
        notes.append(
            "active_learning.classifier_kwargs.n_jobs: not used; each worker trains on one core, "
            "and more workers use more cores"
        )
    if params and "random_state" in params:
        params.pop("random_state")
        notes.append(
            "active_learning.classifier_kwargs.random_state: not used; alrank seeds each model from its "
            "inputs, so a retrain on the same labels gives the same ranking"
        )
    vectorizer = al.get("vectorizer_name")
    if vectorizer == "sklearn.feature_extraction.text.CountVectorizer":
        raise InvalidInput(
            "active_learning.vectorizer_name CountVectorizer: alrank's word features are TF-IDF (counts "
            "weighted by rarity, which linear models on short texts learn from better); use TfidfVectorizer"
        )
    if vectorizer == "sentence-transformers":
        al["vectorizer_name"] = "minilm"
        model = (al.get("vectorizer_params") or {}).pop("model_name", MINILM_NAMES[0])
        if model not in MINILM_NAMES:
            raise InvalidInput(
                f"active_learning.vectorizer_params.model_name {model!r}: alrank embeds with "
                "all-MiniLM-L6-v2 only, shipped in a package (it downloads nothing)"
            )
        if not al["vectorizer_params"]:
            al["vectorizer_params"] = None
        notes.append(
            "active_learning.vectorizer_name: sentence-transformers mapped to minilm (all-MiniLM-L6-v2)"
        )


def _percent(value: Any, al: dict, notes: list[str]) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 100:
        raise InvalidInput(
            f"active_learning.random_sample_percent: {value!r} is neither a fraction (0.2) nor a percent (20)"
        )
    if value > 1:
        al["random_sample_percent"] = value / 100
        notes.append(
            f"active_learning.random_sample_percent: {value} read as {value}% (a fraction of {value / 100})"
        )
    else:
        al["random_sample_percent"] = float(value)


def _params(target: str) -> Callable[[Any, dict, list[str]], None]:
    def merge(value: Any, al: dict, notes: list[str]) -> None:
        if not isinstance(value, dict):
            raise InvalidInput(f"{target}: expected a mapping of hyperparameters")
        al[target] = {**(al.get(target) or {}), **value}

    return merge


def _nested(kind: str) -> Callable[[Any, dict, list[str]], None]:
    """Potato's nested ``classifier: {name, hyperparameters}`` (and ``vectorizer:``)."""

    def read(value: Any, al: dict, notes: list[str]) -> None:
        if not isinstance(value, dict):
            raise InvalidInput(f"active_learning.{kind}: expected {{name, hyperparameters}}")
        if value.get("name"):
            al[f"{kind}_name"] = value["name"]
        if value.get("hyperparameters"):
            _params(f"{kind}_params")(value["hyperparameters"], al, notes)

    return read


def _schema_names(value: Any, al: dict, notes: list[str]) -> None:
    al["schema_names"] = list(value) if value else None


def _cold_start(value: Any, al: dict, notes: list[str]) -> None:
    if value == "llm":
        raise InvalidInput(
            f"active_learning.cold_start_strategy: llm cannot be honoured; {OFFLINE}. Use random"
        )
    if value != "random":
        raise InvalidInput(
            f"active_learning.cold_start_strategy: {value!r} is not one of Potato's (random, llm)"
        )
    al["cold_start_strategy"] = "random"


def _llm_switch(key: str) -> Callable[[Any, dict, list[str]], None]:
    def check(value: Any, al: dict, notes: list[str]) -> None:
        enabled = value.get("enabled") if isinstance(value, dict) else value
        if enabled:
            raise InvalidInput(f"active_learning.{key}: an LLM cannot be honoured; {OFFLINE}")
        notes.append(f"active_learning.{key}: off, as alrank is")

    return check


HANDLERS: dict[str, Callable[[Any, dict, list[str]], None]] = {
    "random_sample_percent": _percent,
    "schema_names": _schema_names,
    "classifier_kwargs": _params("classifier_params"),
    "classifier_params": _params("classifier_params"),
    "vectorizer_kwargs": _params("vectorizer_params"),
    "vectorizer_params": _params("vectorizer_params"),
    "classifier": _nested("classifier"),
    "vectorizer": _nested("vectorizer"),
    "cold_start_strategy": _cold_start,
    "use_icl_ensemble": _llm_switch("use_icl_ensemble"),
    "llm": _llm_switch("llm"),
    "llm_enabled": _llm_switch("llm_enabled"),
    "llm_config": lambda value, al, notes: notes.append(
        "active_learning.llm_config: not used; alrank runs no LLM"
    ),
}
"""Keys whose value alrank turns into its own settings."""


# --- Potato's outgoing webhooks: annotations in ---------------------------------------------

SIGNATURE_TOLERANCE_SECONDS = 300
"""How far a webhook's timestamp may be from now: an older delivery replayed is refused."""


def signature_matches(secret: str, webhook_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    """A Standard Webhooks signature, as Potato signs its deliveries: ``v1,`` and the base64
    HMAC-SHA256 of ``id.timestamp.body`` under the endpoint's secret. The header may list
    several signatures, space-separated; one match is enough."""
    digest = hmac.new(secret.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    return any(hmac.compare_digest(expected, s) for s in signatures.split())


def fresh(timestamp: str, now: float) -> bool:
    try:
        return abs(now - int(timestamp)) <= SIGNATURE_TOLERANCE_SECONDS
    except ValueError:
        return False


def webhook_labels(project: dict, data: dict) -> tuple[list[dict], list[str]]:
    """The labels an ``annotation.created``/``updated`` delivery carries, and what was left
    out. Potato sends the annotator's choices as ``{"schema:::label": "true"}``; a schema
    alrank does not have, or a label it does not know, is left out and said so."""
    schemas = {s["name"]: s for s in project["schemas"]}
    chosen: dict[str, list[str]] = {}
    skipped = []
    for key, given in (data.get("annotations") or {}).items():
        if ":::" not in key or given in (None, "", False, "false"):
            continue
        schema, label = key.split(":::", 1)
        if schema not in schemas:
            skipped.append(f"{key}: no schema {schema!r} in the project")
        elif label not in schemas[schema]["labels"]:
            skipped.append(f"{key}: {label!r} is not a label of {schema!r}")
        else:
            chosen.setdefault(schema, []).append(label)
    labels = []
    for schema, values in chosen.items():
        value: Any = values if schemas[schema]["multi_label"] else values[-1]
        labels.append(
            {
                "item": str(data["instance_id"]),
                "schema": schema,
                "value": value,
                "annotator": str(data["user_id"]),
            }
        )
    return labels, skipped
