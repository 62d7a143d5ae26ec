"""Predictions for any items: the serving model's labels, without training.

The model is the one ``GET /next`` serves from (the published ranking's version); the items
need not be in the pool. Texts get the columns that model was trained on: the TF-IDF
vocabulary fitted on the pool at that time, the same embedding, then the client's vector.
Loaded models and their feature parts are kept per process, so only the first request after
a retrain reads them from Redis.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import marshmallow as ma
import numpy as np
from flask import Flask
from flask.views import MethodView

from service import examples
from service.bodies import Blueprint
from service.common import load_project, load_schema
from service.extensions import api, backend
from service.items import TextOrVectorSchema
from workers import limits
from workers.exceptions import Conflict, InvalidInput
from workers.features import Featurizer
from workers.models import Model, load_model, predictions
from workers.store.rankings import RankingEntry

blp = Blueprint("predictions", __name__, url_prefix="/v1/projects", description="Predictions for any items")

LOADED = 8
"""Model versions (with their feature parts) an API process keeps loaded."""


class PredictQuery(ma.Schema):
    schema = ma.fields.String(
        required=True, metadata={"description": "Label schema name", "example": "sentiment"}
    )


class PredictItemSchema(TextOrVectorSchema):
    id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=limits.MAX_ID_CHARS),
        metadata={"description": "Any id of yours, returned with the prediction"},
    )


class PredictBodySchema(ma.Schema):
    items = ma.fields.List(
        ma.fields.Nested(PredictItemSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=limits.MAX_PREDICT_ITEMS),
        metadata={
            "description": f"Items to predict (at most {limits.MAX_PREDICT_ITEMS:,}); "
            "they need not be in the pool"
        },
    )


class ItemPredictionSchema(ma.Schema):
    id = ma.fields.String(allow_none=True, metadata={"description": "The id sent with the item, if any"})
    label = ma.fields.Raw(metadata={"description": "Predicted label (a list for multi-label)"})
    confidence = ma.fields.Float(
        metadata={"description": "The model's probability for that label, calibrated"}
    )
    probabilities = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Float(),
        metadata={"description": "Each label's probability (multi-label: each label's own)"},
    )


class PredictResultSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    model_version = ma.fields.Integer(metadata={"description": "The model that predicted: the one serving"})
    predictions = ma.fields.List(
        ma.fields.Nested(ItemPredictionSchema), metadata={"description": "One per item, in order"}
    )


_loaded: OrderedDict[str, tuple[Model, Featurizer]] = OrderedDict()
"""Loaded models and feature parts by the ranking's ``model_token``."""
_lock = threading.Lock()


def serving_model(project: str, schema: str) -> tuple[int, Model, Featurizer]:
    """The version ``GET /next`` serves from, its model and its feature parts."""
    store = backend().store
    meta = store.ranking_meta(project, schema)
    version = meta.get("model_version") if meta else None
    if version is None:
        raise Conflict(
            f"schema {schema!r} has no model yet: it is trained once it has enough labels "
            "(active_learning.min_instances_for_training)"
        )
    key = (meta or {}).get("model_token") or ""
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return (int(version), *_loaded[key])
    blob = store.featurizer(project, schema, int(version))
    if blob is None:
        raise Conflict(
            f"model version {version} was trained before predictions were kept; the next retrain "
            "makes one that predicts (POST .../train)"
        )
    loaded = (
        load_model(store.model_state(project, schema, int(version))),
        Featurizer.from_bytes(blob),
    )
    with _lock:
        if key:
            _loaded[key] = loaded
        while len(_loaded) > LOADED:
            _loaded.popitem(last=False)
    return (int(version), *loaded)


def fill_past_head(project: str, schema: str, ids: list[str], meta: dict | None, entries: list) -> None:
    """Give entries to the open items among ``ids`` that a ranking of a large pool leaves
    out (it publishes its head only): the serving model's label and confidence, ranked just
    past the head. Labelled items and the evaluation sample stay without one."""
    if not meta or meta.get("model_version") is None or meta.get("head", meta["ranked"]) >= meta["ranked"]:
        return
    store = backend().store
    unranked = [k for k, e in enumerate(entries) if e is None]
    is_open = store.open_items(project, schema, [ids[k] for k in unranked])
    missing = [k for k, ok in zip(unranked, is_open, strict=True) if ok]
    if not missing:
        return
    try:
        _, model, featurizer = serving_model(project, schema)
    except Conflict:
        return  # a model kept from before predictions were: the next ranking has one
    docs = store.get_items(project, [ids[k] for k in missing])
    vectors = store.load_vectors(project, [ids[k] for k in missing], featurizer.vector_dim)
    x = featurizer.transform(
        [(d or {}).get("text") or "" for d in docs], list(vectors) if vectors is not None else None
    )
    labels, confidence = predictions(model, model.predict_proba(x))
    for k, label, c in zip(missing, labels, confidence, strict=True):
        entries[k] = RankingEntry(0.0, meta["head"] + 1, label, float(c))


@blp.route("/<project>/predict")
class Predict(MethodView):
    @blp.arguments(PredictQuery, location="query")
    @blp.arguments(PredictBodySchema, example=examples.PREDICT)
    @blp.response(200, PredictResultSchema, example=examples.PREDICT_RESULT)
    def post(self, query, body, project):
        """The serving model's label and confidence for each item, in or out of the pool;
        409 before the schema has a model."""
        proj = load_project(project)
        schema = load_schema(proj, query["schema"])["name"]
        items = body["items"]
        version, model, featurizer = serving_model(project, schema)
        vectors = [it.get("vector") for it in items]
        if featurizer.vector_dim is None and any(v is not None for v in vectors):
            raise InvalidInput(f"the model of project {project!r} was trained without vectors; send texts")
        bad = [k for k, v in enumerate(vectors) if v is not None and len(v) != featurizer.vector_dim]
        if bad:
            raise InvalidInput(
                f"vectors in project {project!r} have length {featurizer.vector_dim}; "
                f"item {bad[0]} has {len(vectors[bad[0]])}"
            )
        x = featurizer.transform([it.get("text") or "" for it in items], vectors)
        proba = model.predict_proba(x)
        labels, confidence = predictions(model, proba)
        return {
            "schema": schema,
            "model_version": version,
            "predictions": [
                {
                    "id": it.get("id"),
                    "label": label,
                    "confidence": float(c),
                    "probabilities": {cls: float(p) for cls, p in zip(model.classes, row, strict=True)},
                }
                for it, label, c, row in zip(items, labels, confidence, np.asarray(proba), strict=True)
            ],
        }


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
