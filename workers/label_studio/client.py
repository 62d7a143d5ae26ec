"""Label Studio's REST API, as far as alrank uses it.

Requests go through one ``requests`` session whose adapter retries connection errors and
429/5xx answers with exponential back-off (urllib3's ``Retry``), and every call has a
timeout, so a Label Studio that is down costs a sync job seconds, never a hung worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TIMEOUT_SECONDS = 15
RETRIES = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=None,  # every method: the calls alrank makes are safe to repeat
    respect_retry_after_header=True,
    raise_on_status=False,
)


class LabelStudioError(RuntimeError):
    """Label Studio could not be reached, or refused a call."""


class LabelStudio:
    """A client for one Label Studio, authenticated with a user's API token.

    A legacy token (40 hex characters) is sent as ``Token <token>``; a personal access
    token (a JWT refresh token) is first exchanged for an access token."""

    def __init__(self, url: str, token: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=RETRIES)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if token.count(".") == 2:
            access = self._call("POST", "/api/token/refresh", json={"refresh": token})["access"]
            self.session.headers["Authorization"] = f"Bearer {access}"
        else:
            self.session.headers["Authorization"] = f"Token {token}"

    def _call(self, method: str, path: str, **kwargs):
        try:
            answer = self.session.request(method, self.url + path, timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as exc:
            raise LabelStudioError(f"{method} {self.url}{path}: {exc}") from exc
        if answer.status_code >= 400:
            raise LabelStudioError(f"{method} {self.url}{path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    def tasks(self, project: int, page_size: int = 1000) -> Iterator[tuple[list[dict], int]]:
        """The project's tasks, a page at a time, each with the total."""
        page = 1
        while True:
            doc = self._call(
                "GET",
                "/api/tasks/",
                params={"project": project, "page": page, "page_size": page_size, "fields": "task_only"},
            )
            tasks = doc.get("tasks") or []
            yield tasks, int(doc.get("total") or 0)
            if not tasks or page * page_size >= int(doc.get("total") or 0):
                return
            page += 1

    def annotated_tasks(self, project: int) -> list[dict]:
        """Every task with annotations, with them (Label Studio's JSON export)."""
        return self._call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"}) or []

    def import_predictions(self, project: int, predictions: list[dict]) -> None:
        self._call("POST", f"/api/projects/{project}/import/predictions", json=predictions)

    def set_model_version(self, project: int, version: str) -> None:
        self._call("PATCH", f"/api/projects/{project}", json={"model_version": version})

    def project(self, project: int) -> dict:
        return self._call("GET", f"/api/projects/{project}")

    def delete_predictions(self, project: int, version: str) -> None:
        """Remove every prediction of one model version."""
        self._call("DELETE", f"/api/projects/{project}/model-versions/", json={"model_version": version})
