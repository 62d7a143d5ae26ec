"""Model versions: their metadata in order, their state, their stop-set predictions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import WatchError

from workers import defaults
from workers.exceptions import NotFound
from workers.store import keys
from workers.store._codec import raw


class Models:
    redis: Redis

    def next_model_version(self, project: str, schema: str) -> int:
        """A new version number; a job that fails after taking one leaves a gap."""
        return int(self.redis.incr(keys.model_sequence(project, schema)))

    def save_model_state(self, project: str, schema: str, version: int, state: bytes) -> None:
        """Version ``version``'s model, as ``Model.to_bytes`` wrote it. Only the serving
        version's is read (predictions), and a forest's takes megabytes: the one saved before
        stays for ``RANKING_GRACE_SECONDS`` (requests that read the older ranking), then
        expires, as the feature parts do."""
        self._save_latest(
            lambda v: keys.model(project, schema, v), keys.model_latest(project, schema), version, state
        )

    def save_featurizer(self, project: str, schema: str, version: int, blob: bytes) -> None:
        """Version ``version``'s feature parts; the one saved before it stays readable for
        ``RANKING_GRACE_SECONDS`` (requests that read the older ranking), then expires."""
        self._save_latest(
            lambda v: keys.featurizer(project, schema, v),
            keys.featurizer_latest(project, schema),
            version,
            blob,
        )

    def _save_latest(self, key_of: Callable[[int], str], latest: str, version: int, blob: bytes) -> None:
        """Write version ``version``'s key, name it the latest in ``latest``, and let the
        previous latest version's key expire after the grace period."""
        previous = self.redis.getset(latest, version)
        pipe = self.redis.pipeline()
        pipe.set(key_of(version), blob)
        if previous is not None and int(previous) != version:
            pipe.expire(key_of(int(previous)), defaults.RANKING_GRACE_SECONDS)
        pipe.execute()

    def featurizer(self, project: str, schema: str, version: int) -> bytes | None:
        blob = self.redis.get(keys.featurizer(project, schema, version))
        return raw(blob) if blob is not None else None

    def add_model(self, project: str, schema: str, meta: dict) -> dict:
        """List a model version (its state saved and its ranking published already)."""
        self.redis.rpush(keys.models(project, schema), json.dumps(meta))
        return meta

    def list_models(self, project: str, schema: str) -> list[dict]:
        """Every version's metadata, in order, each with its gain over random where one was
        estimated for it."""
        models = [json.loads(m) for m in self.redis.lrange(keys.models(project, schema), 0, -1)]
        found = self.gains(project, schema)
        for m in models:
            if m["version"] in found:
                m["gain"], m["gain_seconds"] = found[m["version"]]
        return models

    def save_gain(self, project: str, schema: str, version: int, gain: dict, seconds: float) -> None:
        """The gain over random estimated for ``version`` (after its ranking was published)."""
        record = json.dumps({"gain": gain, "seconds": seconds})
        self.redis.hset(keys.gains(project, schema), str(version), record)

    def gains(self, project: str, schema: str) -> dict[int, tuple[dict, float]]:
        """Each version's gain estimate and the seconds it took, by version."""
        out = {}
        for version, record in self.redis.hgetall(keys.gains(project, schema)).items():
            found = json.loads(record)
            out[int(version)] = (found["gain"], found["seconds"])
        return out

    def save_model_choice(self, project: str, schema: str, choice: dict) -> None:
        """The kind ``auto`` chose by its last comparison, which the retrains after it train;
        a comparison made on fewer labels (one that ran late) does not replace it."""
        key = keys.model_choice(project, schema)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    held = pipe.get(key)
                    if held is not None and json.loads(held).get("labels", 0) > choice.get("labels", 0):
                        return
                    pipe.multi()
                    pipe.set(key, json.dumps(choice))
                    pipe.execute()
                    return
                except WatchError:  # another comparison landed meanwhile: look again
                    continue

    def model_choice(self, project: str, schema: str) -> dict | None:
        held = self.redis.get(keys.model_choice(project, schema))
        return json.loads(held) if held is not None else None

    def latest_model(self, project: str, schema: str) -> dict | None:
        meta = self.redis.lindex(keys.models(project, schema), -1)
        return json.loads(meta) if meta is not None else None

    def model_state(self, project: str, schema: str, version: int) -> bytes:
        state = self.redis.get(keys.model(project, schema, version))
        if state is None:
            raise NotFound(f"no model version {version} for schema {schema!r}")
        return raw(state)

    def save_stop_predictions(self, project: str, schema: str, version: int, preds: dict[str, Any]) -> None:
        self.redis.set(keys.stop_predictions(project, schema, version), json.dumps(preds))

    def stop_predictions(self, project: str, schema: str, version: int) -> dict[str, Any] | None:
        preds = self.redis.get(keys.stop_predictions(project, schema, version))
        return json.loads(preds) if preds is not None else None
