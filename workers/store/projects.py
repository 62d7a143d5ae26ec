"""Projects: their settings, as JSON, and the set of their names."""

from __future__ import annotations

import json

from redis import Redis

from workers.exceptions import Conflict, NotFound
from workers.store import keys
from workers.store._codec import glob_escape, now_iso, text


class Projects:
    redis: Redis

    def create_project(self, project: dict) -> dict:
        name = project["name"]
        if not self.redis.sadd(keys.projects(), name):
            raise Conflict(f"project {name!r} already exists")
        project = {**project, "created_at": now_iso(), "settings_rev": 1}
        self.redis.set(keys.config(name), json.dumps(project))
        return project

    def get_project(self, name: str) -> dict:
        raw = self.redis.get(keys.config(name))
        if raw is None:
            raise NotFound(f"no project named {name!r}")
        return json.loads(raw)

    def save_project(self, project: dict) -> dict:
        project = {**project, "settings_rev": project.get("settings_rev", 0) + 1}
        self.redis.set(keys.config(project["name"]), json.dumps(project))
        return project

    def list_projects(self) -> list[str]:
        return sorted(text(m) for m in self.redis.smembers(keys.projects()))

    def delete_project(self, name: str) -> None:
        self.get_project(name)
        self.redis.srem(keys.projects(), name)
        ids = list(self.redis.smembers(keys.project_keys(name)))
        if ids:  # its API keys stop working with it
            self.redis.hdel(keys.api_keys(), *ids)
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=glob_escape(keys.project(name)) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.redis.unlink(*batch)
                batch = []
        if batch:
            self.redis.unlink(*batch)
