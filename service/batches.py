"""Batches: the next items to label, leased to the annotator who asked."""

from __future__ import annotations

import time

import marshmallow as ma
from flask import Flask, jsonify
from flask.views import MethodView

from service import examples
from service.auth import require_annotator
from service.bodies import Blueprint
from service.common import annotator_field, load_project, load_schema
from service.extensions import api, backend
from service.telemetry import count_served
from workers import defaults, limits
from workers.settings import active_learning

blp = Blueprint("batches", __name__, url_prefix="/v1/projects", description="Next batches and leases")


class NextQuery(ma.Schema):
    schema = ma.fields.String(
        required=True, metadata={"description": "Label schema name", "example": "sentiment"}
    )
    annotator = annotator_field(required=True, example="ana")
    size = ma.fields.Integer(
        load_default=defaults.BATCH_SIZE,
        metadata={"description": "Items in the batch", "example": 10},
        validate=ma.validate.Range(
            1, limits.MAX_BATCH_SIZE, error=f"size must be between 1 and {limits.MAX_BATCH_SIZE}"
        ),
    )


class PredictionSchema(ma.Schema):
    label = ma.fields.Raw(metadata={"description": "Predicted label (a list for multi-label)"})
    confidence = ma.fields.Float(
        metadata={"description": "The model's probability for that label, calibrated"}
    )


class BatchItemSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The item's id"})
    text = ma.fields.String(allow_none=True, metadata={"description": "The item's text"})
    metadata = ma.fields.Dict(metadata={"description": "The item's metadata, as uploaded"})
    score = ma.fields.Float(
        allow_none=True, metadata={"description": "Strategy score (higher: more informative)"}
    )
    rank = ma.fields.Integer(allow_none=True, metadata={"description": "Position in the published ranking"})
    source = ma.fields.String(
        metadata={
            "description": "lease (held already), ranking, random (exploration), evaluation "
            "(the random evaluation sample), review (a label the data contradicts, for a second "
            "opinion), overlap (labelled by another annotator already, for agreement) or "
            "fallback (no ranking yet)"
        }
    )
    prediction = ma.fields.Nested(
        PredictionSchema,
        allow_none=True,
        metadata={
            "description": "The serving model's label and confidence, to pre-annotate (null before a model)"
        },
    )


class BatchSchema(ma.Schema):
    project = ma.fields.String(metadata={"description": "The project"})
    schema = ma.fields.String(metadata={"description": "The schema the batch is for"})
    annotator = ma.fields.String(metadata={"description": "Who the items are leased to"})
    strategy = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The strategy of the ranking the batch came from (random before one is published)"
        },
    )
    model_version = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The model version whose ranking the batch came from (null: none yet)"},
    )
    ranking_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The ranking the batch came from (null: none published yet)"},
    )
    lease_expires_at = ma.fields.String(metadata={"description": "When the batch's leases lapse (UTC)"})
    items = ma.fields.List(
        ma.fields.Nested(BatchItemSchema),
        metadata={"description": "The batch, best first; leased to the annotator"},
    )


class ReleaseSchema(ma.Schema):
    schema = ma.fields.String(required=True, metadata={"description": "The schema the leases are for"})
    annotator = annotator_field(required=True)
    items = ma.fields.List(
        ma.fields.String(),
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=limits.MAX_BATCH_SIZE * 10),
        metadata={"description": "Items to give back (default: all the annotator holds)"},
    )


class ReleaseResultSchema(ma.Schema):
    released = ma.fields.Integer(metadata={"description": "Leases given back"})


@blp.route("/<project>/next")
class Next(MethodView):
    @blp.arguments(NextQuery, location="query")
    @blp.response(200, BatchSchema, example=examples.BATCH)
    def get(self, query, project):
        """The next batch for an annotator, from the latest ranking; never waits for training."""
        require_annotator(query["annotator"])
        proj = load_project(project)
        schema = load_schema(proj, query["schema"])["name"]
        al = active_learning(proj)
        store = backend().store
        size = query["size"]
        batch = store.next_batch(
            project,
            schema,
            query["annotator"],
            size,
            proj["lease_seconds"],
            al["random_sample_percent"],
            al["min_annotations_per_instance"],
            al["eval_fraction"],
            al["overlap_share"],
            al["review_share"],
        )
        items = []
        for it in batch.items:
            entry = it.entry
            prediction = None
            if entry is not None and entry.label is not None:
                prediction = {"label": entry.label, "confidence": entry.confidence}
            items.append(
                {
                    "id": it.id,
                    "text": it.doc.get("text"),
                    "metadata": it.doc.get("metadata", {}),
                    "score": entry.score if entry else None,
                    "rank": entry.rank if entry else None,
                    "source": it.source,
                    "prediction": prediction,
                }
            )
        count_served([it.source for it in batch.items])
        meta = batch.ranking_meta
        expires = time.gmtime(time.time() + proj["lease_seconds"])
        # Built in BatchSchema's shape (a test holds it to that) and sent as is: dumping it
        # through marshmallow would cost a third of this hot path's CPU.
        return jsonify(
            {
                "project": project,
                "schema": schema,
                "annotator": query["annotator"],
                "strategy": meta["strategy"] if meta else "random",
                "model_version": meta["model_version"] if meta else None,
                "ranking_id": batch.ranking_id or None,
                "lease_expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", expires),
                "items": items,
            }
        )


class RankingQuery(ma.Schema):
    schema = ma.fields.String(
        required=True, metadata={"description": "Label schema name", "example": "sentiment"}
    )
    limit = ma.fields.Integer(
        load_default=20,
        validate=ma.validate.Range(1, limits.MAX_BATCH_SIZE),
        metadata={"description": "Items from the head of the ranking"},
    )


class RankedItemSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The item's id"})
    rank = ma.fields.Integer(metadata={"description": "Position in the ranking, 1 first"})
    score = ma.fields.Float(metadata={"description": "The strategy's score (higher: more informative)"})
    prediction = ma.fields.Dict(
        allow_none=True, metadata={"description": "The model's label and confidence (null before a model)"}
    )


class RankingSchema(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema"})
    ranking_id = ma.fields.String(
        allow_none=True, metadata={"description": "The published ranking (null: none)"}
    )
    strategy = ma.fields.String(allow_none=True, metadata={"description": "The strategy that ordered it"})
    model_version = ma.fields.Integer(
        allow_none=True, metadata={"description": "The model it was scored with"}
    )
    published_at = ma.fields.String(allow_none=True, metadata={"description": "When it was published (UTC)"})
    pool_size = ma.fields.Integer(
        allow_none=True, metadata={"description": "Items in the pool the ranking was built from"}
    )
    labelled = ma.fields.Integer(
        allow_none=True, metadata={"description": "Labelled items the ranking was built from"}
    )
    items = ma.fields.List(
        ma.fields.Nested(RankedItemSchema),
        metadata={"description": "The head of the ranking, still to be labelled, best first"},
    )


@blp.route("/<project>/ranking")
class PublishedRanking(MethodView):
    @blp.arguments(RankingQuery, location="query")
    @blp.response(200, RankingSchema, example=examples.RANKING)
    def get(self, query, project):
        """The head of the published ranking, without handing anything out: the items still
        to be labelled, best first (leased ones included), with the model's predictions."""
        proj = load_project(project)
        schema = load_schema(proj, query["schema"])["name"]
        store = backend().store
        needed = active_learning(proj)["min_annotations_per_instance"]
        meta, head = store.ranking_head(project, schema, query["limit"] * 2)
        counts = store.annotator_counts(project, schema, [item for item, _ in head])
        items = [
            {
                "id": item,
                "rank": entry.rank,
                "score": entry.score,
                "prediction": None
                if entry.label is None
                else {"label": entry.label, "confidence": entry.confidence},
            }
            for (item, entry), n in zip(head, counts, strict=True)
            if n < needed
        ][: query["limit"]]
        meta = meta or {}
        return {
            "schema": schema,
            "ranking_id": meta.get("ranking_id"),
            "strategy": meta.get("strategy"),
            "model_version": meta.get("model_version"),
            "published_at": meta.get("published_at"),
            "pool_size": meta.get("pool_size"),
            "labelled": meta.get("labelled"),
            "items": items,
        }


@blp.route("/<project>/leases/release")
class Release(MethodView):
    @blp.arguments(ReleaseSchema, example=examples.RELEASE)
    @blp.response(200, ReleaseResultSchema, example=examples.RELEASE_RESULT)
    def post(self, body, project):
        """Give leased items back to the pool (skipped, or the annotator is leaving)."""
        require_annotator(body["annotator"])
        proj = load_project(project)
        schema = load_schema(proj, body["schema"])["name"]
        released = backend().store.release(project, schema, body["annotator"], body["items"])
        return {"released": released}


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
