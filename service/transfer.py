"""Export and import of whole projects, streamed both ways (:mod:`workers.transfer`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import marshmallow as ma
from flask import Flask, Response, request
from flask.views import MethodView
from werkzeug.exceptions import Forbidden

from service import examples
from service.auth import principal
from service.bodies import Blueprint
from service.common import load_project, trigger_refresh
from service.extensions import api, backend
from workers import limits
from workers.transfer import Importer, export_project

blp = Blueprint("transfer", __name__, url_prefix="/v1/projects", description="Moving projects")

NDJSON = "application/x-ndjson"


class ExportQuery(ma.Schema):
    keys = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Carry the project's API keys (their keyed hashes; the admin key only)"},
    )


class ImportQuery(ma.Schema):
    name = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(limits.NAME_PATTERN, error="use 1-64 letters, digits, '_', '.' or '-'"),
        metadata={"description": "Import under this name instead of the exported one"},
    )
    keys = ma.fields.Boolean(
        load_default=True, metadata={"description": "Import the API keys the export carries, if any"}
    )


class ImportResultSchema(ma.Schema):
    project = ma.fields.String(metadata={"description": "The imported project's name"})
    items = ma.fields.Integer(metadata={"description": "Items imported"})
    labels = ma.fields.Integer(metadata={"description": "Labels imported (item, annotator pairs)"})
    api_keys = ma.fields.Integer(metadata={"description": "API keys imported"})
    training_jobs = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Per schema, the retrain queued to rank the imported pool"},
    )


@blp.route("/<project>/export")
class Export(MethodView):
    @blp.arguments(ExportQuery, location="query")
    @blp.response(200, content_type=NDJSON)
    @blp.doc(
        responses={
            "200": {
                "description": "The project as JSON Lines (see workers/transfer.py for the lines)",
                "content": {NDJSON: {"example": examples.EXPORT_LINES}},
            }
        }
    )
    def get(self, query, project):
        """The whole project, streamed: settings, schemas and their model history, items,
        labels with annotators and times (``alrank projects export``)."""
        if query["keys"] and not principal().is_admin:
            raise Forbidden("only the admin key may export API keys")
        load_project(project)
        store = backend().store
        return Response(
            export_project(store, project, with_keys=query["keys"]),
            mimetype=NDJSON,
            headers={
                "Content-Disposition": f'attachment; filename="{project}.alrank"',
                "X-Total-Count": str(store.item_count(project)),
            },
        )


@blp.route("/import")
class Import(MethodView):
    @blp.arguments(ImportQuery, location="query")
    @blp.response(201, ImportResultSchema, example=examples.IMPORT_RESULT)
    @blp.doc(
        requestBody={
            "required": True,
            "description": "An export (GET .../export), as it came; any size: it is read a line at a time",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        }
    )
    def post(self, query):
        """Create a project from an export, streamed in; a bad or cut file leaves nothing
        behind. Each schema is retrained at once, to rank the imported pool."""
        # no cap on the body: it is read a block at a time, however long the file (None
        # would mean "the app's cap" here)
        request.max_content_length = sys.maxsize
        importer = Importer(backend().store, query["name"], query["keys"])
        result = importer.run(lines_of(request.stream))
        proj = load_project(result["project"])
        jobs = {s["name"]: trigger_refresh(proj["name"], s["name"], "imported") for s in proj["schemas"]}
        return {**result, "training_jobs": jobs}


def lines_of(stream, block: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a request body, read a block at a time (a line at a time is several
    times slower through gunicorn's chunked reader)."""
    pending = b""
    while chunk := stream.read(block):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
