"""A project's Label Studio connection and the annotations that became its labels."""

from __future__ import annotations

import json
import secrets

from redis import Redis

from workers.store import keys
from workers.store._codec import text

JSON_FIELDS = ("config", "settings", "tasks", "order", "annotations")
"""Connection fields stored as JSON; the others (nonce, url, token, project) are strings."""


class LabelStudioLinks:
    redis: Redis

    def label_studio(self, project: str) -> dict:
        """The project's Label Studio connection: ``nonce`` (part of the backend URL's
        secret), and once Label Studio has called ``/setup``: its ``url``, the ``token``
        alrank reads its API with, its ``project`` id and the parsed label ``config``; the
        ``settings`` a manager set; the last ``tasks``, ``order`` and ``annotations`` sync."""
        raw = self.redis.hgetall(keys.label_studio(project))
        link = {text(k): text(v) for k, v in raw.items()}
        for name in JSON_FIELDS:
            if name in link:
                link[name] = json.loads(link[name])
        return link

    def label_studio_nonce(self, project: str) -> str:
        """The nonce the project's backend URL secret is derived from, made on first use."""
        key = keys.label_studio(project)
        self.redis.hsetnx(key, "nonce", secrets.token_hex(8))
        return text(self.redis.hget(key, "nonce") or b"")

    def save_label_studio(self, project: str, /, **fields) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for name, value in fields.items():
            pipe.hset(
                keys.label_studio(project), name, json.dumps(value) if name in JSON_FIELDS else str(value)
            )
        pipe.execute()

    def forget_label_studio(self, project: str) -> None:
        """Disconnect: a new nonce (the old backend URL stops working), nothing remembered."""
        self.redis.delete(keys.label_studio(project))

    def label_studio_annotation(self, project: str, annotation_id: str) -> dict | None:
        raw = self.redis.hget(keys.label_studio_annotations(project), annotation_id)
        return json.loads(raw) if raw is not None else None

    def label_studio_annotations(self, project: str) -> dict[str, dict]:
        raw = self.redis.hgetall(keys.label_studio_annotations(project))
        return {text(k): json.loads(v) for k, v in raw.items()}

    def remember_label_studio_annotation(self, project: str, annotation_id: str, record: dict) -> None:
        """What annotation ``annotation_id`` became: ``{"item", "annotator", "schemas"}``."""
        self.redis.hset(keys.label_studio_annotations(project), annotation_id, json.dumps(record))

    def forget_label_studio_annotation(self, project: str, annotation_id: str) -> None:
        self.redis.hdel(keys.label_studio_annotations(project), annotation_id)
