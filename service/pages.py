"""The project page: what a project lead opens in a browser.

Server-rendered HTML (Jinja2, no JavaScript, nothing fetched from outside): the pool and the
labels per schema, the annotators and their pace, the learning curve with its band, the
labels saved over random, the stopping signal, the model versions, the ranking's age, the
queue and the workers, and the connected tools. A browser signs in with HTTP Basic, the
key as the password (any user name), which the API accepts everywhere: a missing or wrong
key gets a 401 whose page says how, and the browser asks for the key. A key sees only its
own project's page (another's is a 404, as in the API); ``/v1/page`` lists the projects the
key may see.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import marshmallow as ma
from flask import Flask, Response, render_template, request, url_for
from flask.views import MethodView
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from service import examples
from service.auth import principal
from service.bodies import Blueprint
from service.common import load_project
from service.errors import answers_404
from service.extensions import api, backend
from service.health import _alive
from service.metrics import metrics_of
from service.projects import describe
from workers import defaults

blp = Blueprint("pages", __name__, url_prefix="/v1", description="The project page, for a browser")


class PageQuery(ma.Schema):
    schema = ma.fields.String(metadata={"description": "The schema to show (default: the first)"})


def ago(stamp: str | float | None, now: float) -> str:
    """'4 min ago' for an ISO-8601 UTC time or a Unix time."""
    if stamp is None:
        return "never"
    if isinstance(stamp, str):
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return stamp
    else:
        at = float(stamp)
    seconds = max(0, int(now - at))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def queues_and_workers() -> dict:
    b = backend()
    names = (defaults.QUEUE_NAME, defaults.SYNC_QUEUE_NAME, defaults.SIMULATION_QUEUE_NAME)
    queues = [
        {"name": n, "waiting": Queue(n, connection=b.redis, serializer=JSONSerializer).count} for n in names
    ]
    workers = [w for w in Worker.all(connection=b.redis) if _alive(w)]
    return {
        "queues": queues,
        "workers": len(workers),
        "busy": sum(1 for w in workers if w.get_state() == "busy"),
    }


def schema_view(project: dict, described: dict, schema: str, now: float) -> dict:
    store = backend().store
    name = project["name"]
    metrics = metrics_of(name, schema)
    models = store.list_models(name, schema)
    counts = described["counts"][schema]
    ranking = counts.get("ranking")
    latest = models[-1] if models else None
    sample = store.eval_sample(name, schema)
    labels = store.load_labels(name, schema)
    eval_labelled = sum(1 for i in sample if i in labels) + sum(
        1 for i in store.eval_items(name, schema) - set(sample) if i in labels
    )
    trained_on = (latest or {}).get("training_size", 0)
    activity = store.activity(name, schema, now)
    quality = store.quality(name, schema)
    annotators = sorted(
        (
            {
                "name": a,
                "labels": int(r.get("labels", 0)),
                "last_hour": r["last_hour"],
                "last_day": r["last_day"],
                "last": ago(r.get("last"), now),
            }
            for a, r in activity.items()
        ),
        key=lambda r: -r["labels"],
    )
    return {
        "name": schema,
        "metrics": metrics,
        "models": list(reversed(models)),
        "latest": latest,
        "counts": counts,
        "ranking": ranking,
        "ranking_age": ago(ranking.get("published_at"), now) if ranking else None,
        "labels_since_model": max(0, counts["with_any_label"] - trained_on - eval_labelled)
        if latest
        else None,
        "eval_labelled": eval_labelled,
        "eval_size": len(sample),
        "annotators": annotators,
        "quality": (metrics["agreement"] or {}).get("per_annotator", {}),
        "label_issues": len(quality["label_issues"]["issues"]) if quality else None,
        "issues_url": url_for("quality.LabelIssues", project=name, schema=schema),
        "job": store.job_markers(name, schema),
        "png": url_for("metrics.MetricsPlot", project=name, schema=schema),
    }


@blp.route("/projects/<project>/page")
class ProjectPage(MethodView):
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, content_type="text/html")
    @answers_404(blp, "no project named 'reviews'")
    def get(self, query, project):
        """The project page (HTML): pool, labels, annotators, the learning curve with its 95%
        band, labels saved over random, the stopping signal, models, ranking, queue and tools.
        A browser signs in with HTTP Basic, the key as the password."""
        proj = load_project(project)
        now = time.time()
        described = describe(proj)
        names = [s["name"] for s in proj["schemas"]]
        chosen = query.get("schema") or names[0]
        if chosen not in names:
            chosen = names[0]
        html = render_template(
            "project.html",
            project=proj,
            described=described,
            schemas=names,
            view=schema_view(proj, described, chosen, now),
            system=queues_and_workers(),
            label_studio=described.get("label_studio"),
            potato=described.get("potato"),
            ago=lambda s: ago(s, now),
            generated=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
        return Response(html, mimetype="text/html")


@blp.route("/page")
class IndexPage(MethodView):
    @blp.response(200, content_type="text/html")
    @blp.doc(responses={"200": {"content": {"text/html": {"example": examples.INDEX_PAGE}}}})
    def get(self):
        """The projects this key may see, each linked to its page (HTML)."""
        store = backend().store
        who = principal()
        names = sorted(store.list_projects()) if who.is_admin else [p for p in [who.project] if p]
        projects = []
        for n in names:
            try:
                projects.append(describe(store.get_project(n)))
            except Exception:
                continue
        return Response(render_template("index.html", projects=projects), mimetype="text/html")


PROBLEM = "application/problem+json"

BROWSER_ANSWERS = {
    401: "Sign in to see this page",
    403: "This key may not see this page",
    404: "This key sees no such project",
}
"""The pages' refusals, said in HTML to a person instead of as a problem document."""


def as_page(response: Response) -> Response:
    """A refusal of a page request (no key, a wrong one, another project's) as an HTML page,
    with the status and headers (the Basic challenge) it had, for a client that prefers
    HTML (a browser); any other client gets the problem document, as from the whole API."""
    if request.blueprint != "pages" or response.status_code not in BROWSER_ANSWERS:
        return response
    if request.accept_mimetypes.best_match([PROBLEM, "text/html"]) != "text/html":
        return response
    if response.mimetype != PROBLEM:
        return response
    html = render_template("signin.html", message=BROWSER_ANSWERS[response.status_code])
    response.set_data(html)
    response.mimetype = "text/html"
    return response


def init_app(app: Flask) -> None:
    api.register_blueprint(blp)
    app.after_request(as_page)
