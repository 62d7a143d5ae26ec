"""Projects: label schemas and active-learning settings."""

from __future__ import annotations

import marshmallow as ma
import yaml
from flask import Flask, current_app, request
from flask.views import MethodView

from service import examples, examples_tools, label_studio, potato
from service.auth import principal
from service.bodies import Blueprint
from service.common import load_project, trigger_refresh
from service.errors import answers_404
from service.extensions import api, backend
from service.keys import issue_key
from service.project_bodies import (
    NoAliasLoader,
    PotatoProjectCreatedSchema,
    PotatoQuery,
    ProjectCreatedSchema,
    ProjectCreateSchema,
    ProjectListSchema,
    ProjectPatchSchema,
    ProjectSchema,
)
from workers.exceptions import InvalidInput
from workers.features import files as feature_files
from workers.potato import project_from_potato
from workers.settings import check_schemas, resolve_active_learning
from workers.store import check_name

blp = Blueprint("projects", __name__, url_prefix="/v1/projects", description="Projects and their settings")


RANKING_SHOWN = ("ranking_id", "strategy", "model_version", "published_at", "ranked", "head", "labelled")
"""What a project's counts show of each schema's published ranking."""


def describe(project: dict) -> dict:
    """The project as the API shows it, with counts per schema."""
    store = backend().store
    n_items = store.item_count(project["name"])
    counts = {}
    for schema in project["schemas"]:
        c = store.counts(project, schema["name"])
        latest = store.latest_model(project["name"], schema["name"])
        ranking = store.ranking_meta(project["name"], schema["name"])
        if ranking is not None:
            ranking = {k: ranking[k] for k in RANKING_SHOWN if k in ranking}
        counts[schema["name"]] = {
            **c,
            "unlabelled": max(n_items - c["labelled"], 0),
            "model_version": latest["version"] if latest else None,
            "ranking": ranking,
        }
    return {
        **project,
        "items": n_items,
        "counts": counts,
        "label_studio": label_studio.manager_view(project["name"]),
        "potato": potato.manager_view(project["name"]) if principal().role != "annotator" else None,
    }


@blp.route("")
class Projects(MethodView):
    @blp.arguments(ProjectCreateSchema, example=examples.PROJECT_CREATE)
    @blp.response(201, ProjectCreatedSchema, example=examples.PROJECT_CREATED)
    def post(self, body):
        """Create a project with its label schemas and active-learning settings (admin key);
        the answer carries the project's first API key, a manager's, once."""
        return create(body)

    @blp.response(200, ProjectListSchema, example=examples.PROJECT_LIST)
    def get(self):
        """List the names of the projects this key may see."""
        who = principal()
        return {"projects": [p for p in backend().store.list_projects() if who.may_see(p)]}


def create(body: dict) -> dict:
    check_name("project", body["name"])
    check_schemas(body["schemas"])
    body["active_learning"] = resolve_active_learning(body["schemas"], body["active_learning"])
    project = backend().store.create_project(body)
    first_key = None
    if current_app.config["AUTH"]:
        first_key = issue_key(project["name"], "first key", "manager", [])
    return {**describe(project), "api_key": first_key}


@blp.route("/potato")
class PotatoProjects(MethodView):
    @blp.arguments(PotatoQuery, location="query")
    @blp.doc(
        requestBody={
            "required": True,
            "description": "A whole Potato config file (YAML), as Potato reads it",
            "content": {
                "application/yaml": {"schema": {"type": "string"}, "example": examples_tools.POTATO_CONFIG}
            },
        }
    )
    @blp.response(201, PotatoProjectCreatedSchema, example=examples_tools.POTATO_CREATED)
    def post(self, query):
        """Create a project from a Potato config (admin key): its annotation_task_name names
        it, its annotation_schemes become schemas, and every key of its active_learning
        block is honoured, mapped, or refused with the reason (422); notes say which."""
        try:
            # a SafeLoader that also refuses aliases
            config = yaml.load(request.get_data(as_text=True), Loader=NoAliasLoader)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"the body is not YAML: {exc}") from exc
        body, notes = project_from_potato(config, query.get("name"))
        try:
            body = ProjectCreateSchema().load(body)
        except ma.ValidationError as exc:
            raise InvalidInput(f"the config maps to settings alrank refuses: {exc.messages}") from exc
        return {**create(body), "notes": notes}


@blp.route("/<project>")
class Project(MethodView):
    @blp.response(200, ProjectSchema, example=examples.PROJECT)
    def get(self, project):
        """A project's settings and its counts per schema."""
        return describe(load_project(project))

    @blp.arguments(ProjectPatchSchema, example=examples.PROJECT_PATCH)
    @blp.response(200, ProjectSchema, example=examples.PROJECT)
    def patch(self, body, project):
        """Change settings; active-learning keys not given keep their values."""
        current = load_project(project)
        if "label_studio" in body:
            label_studio.save_settings(current, body.pop("label_studio"))
        if "potato" in body:
            potato.save_settings(current, body.pop("potato"))
        if not body:
            return describe(current)
        if "active_learning" in body:
            body["active_learning"] = resolve_active_learning(
                current["schemas"], body["active_learning"], current["active_learning"]
            )
        saved = backend().store.save_project({**current, **body})
        if "active_learning" in body:
            for schema in saved["schemas"]:
                trigger_refresh(project, schema["name"], "settings changed")
        return describe(saved)

    @blp.response(204)
    @answers_404(blp, "no project named 'reviews'")
    def delete(self, project):
        """Delete a project with its items, labels, models and rankings."""
        store = backend().store
        config = store.get_project(project)
        store.delete_project(project)
        feature_files.forget(config)


@blp.route("/<project>/label-studio")
class LabelStudioConnection(MethodView):
    @blp.response(204)
    @answers_404(blp, "project 'reviews' has no Label Studio connection")
    def delete(self, project):
        """Disconnect Label Studio: the backend URL stops working at once (the next one shown
        has a new secret), and what Label Studio sent at setup is forgotten. Items and labels
        stay."""
        load_project(project)
        backend().store.forget_label_studio(project)


@blp.route("/<project>/potato")
class PotatoConnection(MethodView):
    @blp.response(204)
    @answers_404(blp, "project 'reviews' has no Potato connection")
    def delete(self, project):
        """Retire the project's Potato webhook secret: deliveries signed with it get 401 at
        once, and the next one shown is new (put it in the Potato config again)."""
        load_project(project)
        backend().store.forget_potato(project)


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
