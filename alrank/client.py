"""A Python client for alrank's HTTP API.

    from alrank.client import Client
    al = Client()                      # ALRANK_URL and ALRANK_API_KEY from the environment
    batch = al.next("reviews", schema="sentiment", annotator="ana")

Every operation of ``openapi.yaml`` has a method (``tests/test_client.py`` holds the two
to each other). Bulk uploads are cut into requests the server accepts
(``MAX_ITEMS_PER_REQUEST`` and ``MAX_BODY_BYTES``). Answers of 429 (a key's rate limit)
and 503 (storage unreachable) are retried with back-off, honouring ``Retry-After``; any
other error raises ``ApiError`` with the server's problem document.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_ITEMS_PER_REQUEST = 10_000
"""The server's limit on items (and labels) in one request (``workers.defaults``)."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""The server's limit on a request body; chunks stay well inside it."""
CHUNK_BYTES = MAX_BODY_BYTES // 2
MAX_PREDICT_ITEMS = 1000
"""The server's limit on items in one prediction request."""
IMPORT_TIMEOUT = 3600.0
"""Seconds an import may take to answer once its file is sent (a pool of millions takes
minutes)."""

Progress = Callable[[int], None]
"""progress(n): n more records were accepted by the server."""


class ApiError(Exception):
    """The server refused a request; ``status``, ``title`` and ``detail`` come from its
    problem document (RFC 9457), ``body`` is the whole of it."""

    def __init__(self, status: int, title: str, detail: str, body: dict | None = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}


class Unreachable(Exception):
    """The server could not be reached (or kept answering 429/503) within the retries."""


def retry_policy(total: int = 6, backoff: float = 0.5) -> Retry:
    """Retries for 429 and 503 (and connection errors), honouring Retry-After; every
    operation alrank has is safe to send again after one of those."""
    return Retry(
        total=total,
        connect=total,
        read=0,
        status=total,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=(429, 503),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class Client:
    """One alrank service, reached at ``url`` with ``key`` (``ALRANK_URL`` and
    ``ALRANK_API_KEY`` when not given)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        timeout: float = 60.0,
        retries: Retry | None = None,
    ) -> None:
        self.url = (url or os.environ.get("ALRANK_URL") or DEFAULT_URL).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retries if retries is not None else retry_policy())
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        key = key if key is not None else os.environ.get("ALRANK_API_KEY")
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    # -- plumbing -------------------------------------------------------------------

    def request(self, method: str, path: str, *, raw: bool = False, **kwargs) -> Any:
        """Send one request; the decoded JSON answer (None for 204), or the response
        itself with ``raw``."""
        try:
            kwargs.setdefault("timeout", self.timeout)
            answer = self.session.request(method, self.url + path, **kwargs)
        except requests.exceptions.RetryError as exc:
            raise Unreachable(f"{method} {self.url}{path}: still refused after retries ({exc})") from exc
        except requests.RequestException as exc:
            raise Unreachable(f"{method} {self.url}{path}: {exc}") from exc
        if answer.status_code >= 400:
            try:
                body = answer.json()
            except ValueError:
                body = {"title": answer.reason, "detail": answer.text[:500]}
            if answer.status_code in (429, 503):
                raise Unreachable(f"{method} {path}: {answer.status_code} {body.get('detail', '')}")
            raise ApiError(answer.status_code, body.get("title", answer.reason), body.get("detail", ""), body)
        if raw:
            return answer
        if answer.status_code == 204 or not answer.content:
            return None
        return answer.json()

    # -- projects -------------------------------------------------------------------

    def create_project(self, project: dict) -> dict:
        """Create a project (admin key); the answer carries its first key, a manager's."""
        return self.request("POST", "/v1/projects", json=project)

    def create_project_from_potato(self, config_yaml: str, name: str | None = None) -> dict:
        """Create a project from a whole Potato config file (YAML text)."""
        params = {"name": name} if name else None
        headers = {"Content-Type": "application/yaml"}
        return self.request(
            "POST", "/v1/projects/potato", data=config_yaml.encode(), headers=headers, params=params
        )

    def projects(self) -> list[str]:
        return self.request("GET", "/v1/projects")["projects"]

    def project(self, project: str) -> dict:
        return self.request("GET", f"/v1/projects/{project}")

    def update_project(self, project: str, **changes) -> dict:
        """Change settings, e.g. ``active_learning={"update_frequency": 25}``."""
        return self.request("PATCH", f"/v1/projects/{project}", json=changes)

    def delete_project(self, project: str) -> None:
        self.request("DELETE", f"/v1/projects/{project}")

    def retire_potato_secret(self, project: str) -> None:
        """Retire the project's Potato webhook secret."""
        self.request("DELETE", f"/v1/projects/{project}/potato")

    def disconnect_label_studio(self, project: str) -> None:
        """Retire the project's Label Studio backend URL."""
        self.request("DELETE", f"/v1/projects/{project}/label-studio")

    # -- keys -----------------------------------------------------------------------

    def create_key(self, project: str, name: str, role: str = "annotator", **fields) -> dict:
        return self.request(
            "POST", f"/v1/projects/{project}/keys", json={"name": name, "role": role, **fields}
        )

    def keys(self, project: str) -> list[dict]:
        return self.request("GET", f"/v1/projects/{project}/keys")["keys"]

    def rotate_key(self, project: str, key_id: str) -> dict:
        return self.request("POST", f"/v1/projects/{project}/keys/{key_id}/rotate")

    def revoke_key(self, project: str, key_id: str) -> None:
        self.request("DELETE", f"/v1/projects/{project}/keys/{key_id}")

    # -- the pool -------------------------------------------------------------------

    def upload_items(self, project: str, items: Iterable[dict], progress: Progress | None = None) -> dict:
        """Insert or replace items, any number, in requests the server accepts; returns the
        totals ``created``, ``updated`` and the final ``pool_size``."""
        totals = {"created": 0, "updated": 0, "pool_size": 0}
        for chunk in chunked(items):
            answer = self.request("POST", f"/v1/projects/{project}/items", json={"items": chunk})
            totals["created"] += answer["created"]
            totals["updated"] += answer["updated"]
            totals["pool_size"] = answer["pool_size"]
            if progress:
                progress(len(chunk))
        return totals

    def item(self, project: str, item: str) -> dict:
        return self.request("GET", f"/v1/projects/{project}/items/{item}")

    def delete_item(self, project: str, item: str) -> None:
        self.request("DELETE", f"/v1/projects/{project}/items/{item}")

    # -- labels and batches -----------------------------------------------------------

    def push_labels(self, project: str, labels: Iterable[dict], progress: Progress | None = None) -> dict:
        """Store labels (``item``, ``schema``, ``value``, ``annotator``), any number;
        returns ``received``, ``new`` and the retrain jobs they triggered."""
        totals: dict[str, Any] = {"received": 0, "new": 0, "training_jobs": {}}
        for chunk in chunked(labels):
            answer = self.request("POST", f"/v1/projects/{project}/labels", json={"labels": chunk})
            totals["received"] += answer["received"]
            totals["new"] += answer["new"]
            totals["training_jobs"].update(answer["training_jobs"])
            if progress:
                progress(len(chunk))
        return totals

    def labels(self, project: str, **filters) -> Iterator[dict]:
        """Every label (filters: ``schema``, ``annotator``, ``updated_since``), page by page."""
        params = {k: v for k, v in filters.items() if v is not None}
        while True:
            page = self.request("GET", f"/v1/projects/{project}/labels", params={**params, "limit": 1000})
            yield from page["labels"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def items(self, project: str, vectors: bool = False) -> Iterator[dict]:
        """Every item of the pool, page by page, in id order."""
        params: dict[str, Any] = {"limit": 1000, "vectors": str(vectors).lower()}
        while True:
            page = self.request("GET", f"/v1/projects/{project}/items", params=params)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def export_labels(self, project: str, **filters) -> tuple[int, Iterator[bytes]]:
        """The labels as JSON Lines (each with its item's text), streamed: the count of
        labels when the export began, and the lines."""
        params = {k: v for k, v in filters.items() if v is not None}
        answer = self.request(
            "GET", f"/v1/projects/{project}/labels.jsonl", params=params, raw=True, stream=True
        )
        return int(answer.headers.get("X-Total-Count", 0)), lines_of(answer)

    def export_project(self, project: str, keys: bool = False) -> tuple[int, Iterator[bytes]]:
        """The whole project as export lines (``projects export``), streamed: its item count
        and the lines."""
        answer = self.request(
            "GET",
            f"/v1/projects/{project}/export",
            params={"keys": str(keys).lower()},
            raw=True,
            stream=True,
        )
        return int(answer.headers.get("X-Total-Count", 0)), lines_of(answer)

    def import_project(
        self, export: IO[bytes] | Iterable[bytes], name: str | None = None, keys: bool = True
    ) -> dict:
        """Create a project from an export read from ``export`` (streamed as it is read)."""
        params: dict[str, Any] = {"keys": str(keys).lower()}
        if name:
            params["name"] = name
        return self.request(
            "POST",
            "/v1/projects/import",
            params=params,
            data=export,
            headers={"Content-Type": "application/x-ndjson"},
            timeout=(self.timeout, IMPORT_TIMEOUT),
        )

    def delete_label(self, project: str, schema: str, item: str, annotator: str | None = None) -> None:
        params = {"annotator": annotator} if annotator else None
        self.request("DELETE", f"/v1/projects/{project}/labels/{schema}/{item}", params=params)

    def next(self, project: str, schema: str, annotator: str, size: int | None = None) -> dict:
        """The next batch for an annotator (its items are leased to them)."""
        params: dict[str, Any] = {"schema": schema, "annotator": annotator}
        if size is not None:
            params["size"] = size
        return self.request("GET", f"/v1/projects/{project}/next", params=params)

    def release(self, project: str, schema: str, annotator: str, items: list[str] | None = None) -> int:
        body: dict[str, Any] = {"schema": schema, "annotator": annotator}
        if items is not None:
            body["items"] = items
        return self.request("POST", f"/v1/projects/{project}/leases/release", json=body)["released"]

    def ranking(self, project: str, schema: str, limit: int = 20) -> dict:
        return self.request(
            "GET", f"/v1/projects/{project}/ranking", params={"schema": schema, "limit": limit}
        )

    # -- training, models, metrics ----------------------------------------------------

    def predict(self, project: str, schema: str, items: list[dict]) -> list[dict]:
        """The serving model's ``label``, ``confidence`` and ``probabilities`` for each item
        (``text`` and/or ``vector``; in the pool or not), in requests the server accepts."""
        out: list[dict] = []
        for start in range(0, len(items), MAX_PREDICT_ITEMS):
            answer = self.request(
                "POST",
                f"/v1/projects/{project}/predict",
                params={"schema": schema},
                json={"items": items[start : start + MAX_PREDICT_ITEMS]},
            )
            out += answer["predictions"]
        return out

    def label_issues(self, project: str, schema: str, limit: int = 100) -> dict:
        """The labels the data contradicts, worst first, as the last retrain found them."""
        return self.request(
            "GET", f"/v1/projects/{project}/label-issues", params={"schema": schema, "limit": limit}
        )

    def train(self, project: str, schema: str) -> dict:
        """Ask for a retrain now; returns the job reference (``job``, ``status_url``)."""
        return self.request("POST", f"/v1/projects/{project}/train", params={"schema": schema})

    def job(self, job: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job}")

    def wait(
        self,
        job: str,
        timeout: float = 3600,
        every: float = 0.5,
        on_progress: Callable[[dict], None] | None = None,
    ) -> dict:
        """Follow a job until it ends; ``on_progress`` hears each state it is seen in."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job(job)
            if on_progress:
                on_progress(state)
            if state["status"] in ("finished", "failed", "stopped", "canceled"):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still {state['status']} after {timeout:.0f} s")
            time.sleep(every)

    def models(self, project: str, schema: str) -> list[dict]:
        return self.request("GET", f"/v1/projects/{project}/models", params={"schema": schema})["models"]

    def metrics(self, project: str, schema: str) -> dict:
        return self.request("GET", f"/v1/projects/{project}/metrics", params={"schema": schema})

    def metrics_png(self, project: str, schema: str) -> bytes:
        answer = self.request(
            "GET", f"/v1/projects/{project}/metrics.png", params={"schema": schema}, raw=True
        )
        return answer.content

    # -- simulations ------------------------------------------------------------------

    def simulate(self, request: dict) -> dict:
        """Start a simulation (``POST /v1/simulations``); returns it with its id."""
        return self.request("POST", "/v1/simulations", json=request)

    def simulation(self, sim: str) -> dict:
        return self.request("GET", f"/v1/simulations/{sim}")

    def simulation_file(self, sim: str, name: str) -> bytes:
        return self.request("GET", f"/v1/simulations/{sim}/{name}", raw=True).content

    def delete_simulation(self, sim: str) -> None:
        self.request("DELETE", f"/v1/simulations/{sim}")

    # -- probes -----------------------------------------------------------------------

    def prometheus_metrics(self) -> str:
        """``GET /metrics``: the Prometheus text (the admin key)."""
        return self.request("GET", "/metrics", raw=True).text

    def health(self) -> dict:
        return self.request("GET", "/healthz")

    def ready(self) -> dict:
        return self.request("GET", "/readyz")


def lines_of(answer: requests.Response) -> Iterator[bytes]:
    """The lines of a streamed answer as they arrive, each with its newline."""
    pending = b""
    for chunk in answer.iter_content(1 << 16):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def chunked(records: Iterable[dict]) -> Iterator[list[dict]]:
    """Records in lists the server accepts: at most ``MAX_ITEMS_PER_REQUEST`` each, and
    about ``CHUNK_BYTES`` of JSON at most."""
    chunk: list[dict] = []
    size = 0
    for record in records:
        n = len(json.dumps(record)) + 2  # as requests sends it: ASCII, non-ASCII escaped
        if chunk and (len(chunk) >= MAX_ITEMS_PER_REQUEST or size + n > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += n
    if chunk:
        yield chunk
