"""Moving a project between deployments: a streamed export and import.

An export is JSON Lines, one object a line, written and read a page at a time so a pool of
millions moves in bounded memory:

1. ``{"alrank": "project", "format": 1, "exported_at", "project": {settings and schemas}}``
2. per schema, ``{"schema_state": name, ...}``: its model history (every version's record
   and gain over random, the newest version's stop-set predictions), its evaluation sample
   and uniform draws, annotators' activity;
3. per item, ``{"item": id, "text", "metadata", "vector": base64 float32 or absent}``;
4. per labelled item and schema, ``{"labelled": item, "schema", "values": {annotator:
   value}, "times": {annotator: Unix ms}}``;
5. with ``keys``, per API key ``{"api_key": id, "record": {...}}``: the secrets' keyed
   hashes, which work only where the admin key is the same (the hashes are keyed by it);
6. ``{"end": true, "items": n, "labels": m}``: what was written, so an import can tell a
   whole file from a cut one.

Connections to Label Studio and Potato are not carried: they name one deployment's URLs
and secrets; connect the imported project again. An export taken while labels arrive holds
each row as it was when its page was read, with the listings' guarantees
(:mod:`workers.store.listing`).

An import writes everything under the project's keys, makes the project visible last, and
on any error (a bad line, a cut file, a name taken meanwhile) removes what it wrote.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from redis import Redis

from workers import limits
from workers.exceptions import Conflict, InvalidInput
from workers.settings import check_value
from workers.store import Store, check_name, keys, now_iso
from workers.store._codec import glob_escape, raw, text

FORMAT = 1
"""The export format this version writes and reads."""

CHUNK = 1000
"""Rows read or written per round trip to Redis."""

SCHEMA_STATE: dict[str, tuple[str, Callable[[str, str], str]]] = {
    "models": ("list", keys.models),
    "gains": ("hash", keys.gains),
    "model_sequence": ("string", keys.model_sequence),
    "eval_sample": ("list", keys.eval_sample),
    "eval_sample_head": ("string", keys.eval_sample_head),
    "evaluation": ("set", keys.evaluation),
    "random_draws": ("set", keys.random_draws),
    "activity": ("hash", keys.activity),
    "activity_hours": ("hash", keys.activity_hours),
    "asked": ("string", keys.asked),
}
"""What a schema carries besides its labels: the key's type and name."""


def _read(redis: Redis, kind: str, key: str):
    if kind == "list":
        return [text(v) for v in redis.lrange(key, 0, -1)]
    if kind == "hash":
        return {text(k): text(v) for k, v in redis.hgetall(key).items()}
    if kind == "set":
        return sorted(text(v) for v in redis.smembers(key))
    found = redis.get(key)
    return text(found) if found is not None else None


def _write(pipe, kind: str, key: str, value) -> None:
    if value is None or value == [] or value == {}:
        return
    if not isinstance(value, list | dict | str) or (kind in ("list", "set") and not isinstance(value, list)):
        raise InvalidInput(f"{key}: not a {kind}")
    if kind == "list":
        pipe.rpush(key, *value)
    elif kind == "hash":
        pipe.hset(key, mapping=value)
    elif kind == "set":
        pipe.sadd(key, *value)
    else:
        pipe.set(key, value)


def line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def export_project(store: Store, name: str, with_keys: bool = False) -> Iterator[bytes]:
    """The project as export lines (each ending in a newline), read a page at a time."""
    redis = store.redis
    project = store.get_project(name)
    schemas = [s["name"] for s in project["schemas"]]
    yield line({"alrank": "project", "format": FORMAT, "exported_at": now_iso(), "project": project})
    for schema in schemas:
        state = {field: _read(redis, kind, fn(name, schema)) for field, (kind, fn) in SCHEMA_STATE.items()}
        latest = store.latest_model(name, schema)
        stop = store.stop_predictions(name, schema, latest["version"]) if latest else None
        yield line({"schema_state": schema, **state, "stop_predictions": stop})
    items = 0
    for page in store.iter_item_pages(name, vectors=True, size=CHUNK):
        out = []
        for item_id, doc, vec in page:
            row = {"item": item_id, "text": doc.get("text"), "metadata": doc.get("metadata", {})}
            if vec is not None:
                row["vector"] = base64.b64encode(vec).decode("ascii")
            out.append(line(row))
        items += len(page)
        yield b"".join(out)
    labels = 0
    for schema in schemas:
        for labelled in _labelled_pages(redis, name, schema):
            labels += sum(len(values) for _, values, _ in labelled)
            yield b"".join(
                line({"labelled": item, "schema": schema, "values": values, "times": times})
                for item, values, times in labelled
            )
    if with_keys:
        for key_id in sorted(text(k) for k in redis.smembers(keys.project_keys(name))):
            record = store.key_record(key_id)
            if record is not None:
                yield line({"api_key": key_id, "record": record})
    yield line({"end": True, "items": items, "labels": labels})


def _labelled_pages(redis: Redis, project: str, schema: str) -> Iterator[list[tuple[str, dict, dict]]]:
    start = "-"
    while True:
        ids = [text(i) for i in redis.zrangebylex(keys.labelled_index(project, schema), start, "+", 0, CHUNK)]
        if not ids:
            return
        start = "(" + ids[-1]
        values = redis.hmget(keys.labels(project, schema), ids)
        times = redis.hmget(keys.label_times(project, schema), ids)
        yield [
            (item_id, json.loads(v), json.loads(t) if t is not None else {})
            for item_id, v, t in zip(ids, values, times, strict=True)
            if v is not None
        ]


def _kind(obj: dict) -> str:
    for kind in ("item", "labelled", "schema_state", "api_key", "end", "alrank"):
        if kind in obj:
            return kind
    return "unknown"


class Importer:
    """Writes the lines of an export into a deployment; ``run`` returns what it imported."""

    def __init__(self, store: Store, rename: str | None = None, with_keys: bool = True) -> None:
        self.store = store
        self.redis = store.redis
        self.rename = rename
        self.with_keys = with_keys
        self.project: dict | None = None
        self.name = ""
        self.items = 0
        self.labels = 0
        self.api_keys = 0
        self.key_ids: list[str] = []
        self.pipe = self.redis.pipeline(transaction=False)
        self.pending = 0

    def run(self, lines: Iterable[bytes]) -> dict:
        number = 0
        ended = False
        try:
            for number, raw_line in enumerate(lines, start=1):  # noqa: B007 (reported on error)
                if not raw_line.strip():
                    continue
                if ended:
                    raise InvalidInput("the export goes on after its end line")
                try:
                    obj = json.loads(raw_line)
                except (ValueError, RecursionError) as exc:
                    raise InvalidInput(f"not a JSON line: {exc}") from None
                if not isinstance(obj, dict):
                    raise InvalidInput("each line is a JSON object")
                try:
                    ended = self.take(obj)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    # a field missing or of the wrong type: not a line an export writes
                    raise InvalidInput(
                        f"a malformed {_kind(obj)} line ({type(exc).__name__}: {exc})"
                    ) from None
            if self.project is None:
                raise InvalidInput("the file is empty: it is not an alrank export")
            if not ended:
                raise InvalidInput(
                    f"the export is cut short: its end line is missing after {self.items} items "
                    f"and {self.labels} labels; export it again"
                )
            self.flush()
            self.publish()
        except InvalidInput as exc:
            self.remove()
            where = f"line {number}: " if number else ""
            raise InvalidInput(f"{where}{exc}") from None
        except BaseException:
            self.remove()
            raise
        return {"project": self.name, "items": self.items, "labels": self.labels, "api_keys": self.api_keys}

    def take(self, obj: dict) -> bool:
        """Write one line's object; True at the end line."""
        if self.project is None:
            self.start(obj)
        elif "item" in obj:
            self.item(obj)
        elif "labelled" in obj:
            self.label(obj)
        elif "schema_state" in obj:
            self.schema_state(obj)
        elif "api_key" in obj:
            self.api_key(obj)
        elif obj.get("end") is True:
            if obj.get("items") != self.items or obj.get("labels") != self.labels:
                raise InvalidInput(
                    f"the end line counts {obj.get('items')} items and {obj.get('labels')} labels; "
                    f"the file holds {self.items} and {self.labels}"
                )
            return True
        else:
            raise InvalidInput(f"an object of no known kind (keys {sorted(obj)[:5]})")
        if self.pending >= CHUNK:
            self.flush()
        return False

    def start(self, obj: dict) -> None:
        if obj.get("alrank") != "project" or not isinstance(obj.get("project"), dict):
            raise InvalidInput("this is not an alrank project export (its first line says otherwise)")
        if obj.get("format") != FORMAT:
            raise InvalidInput(f"export format {obj.get('format')!r}; this version reads format {FORMAT}")
        project = dict(obj["project"])
        name = self.rename or project.get("name", "")
        check_name("project", name)
        project["name"] = name
        if self.redis.exists(keys.config(name)) or self.redis.sismember(keys.projects(), name):
            raise Conflict(f"project {name!r} already exists; import under another name")
        if next(self.redis.scan_iter(match=glob_escape(keys.project(name)) + "*", count=1000), None):
            raise Conflict(f"project {name!r} has data left in Redis; delete it first")
        self.project, self.name = project, name
        self.schemas = {s["name"]: s for s in project.get("schemas", [])}

    def item(self, obj: dict) -> None:
        item_id = obj["item"]
        if not isinstance(item_id, str) or not 0 < len(item_id) <= limits.MAX_ID_CHARS:
            raise InvalidInput("an item id is a string of 1-512 characters")
        if not isinstance(obj.get("metadata", {}), dict):
            raise InvalidInput(f"item {item_id!r}: metadata is an object")
        doc = {"text": obj.get("text"), "metadata": obj.get("metadata") or {}}
        p = self.name
        self.pipe.hset(keys.items(p), item_id, json.dumps(doc))
        self.pipe.zadd(keys.item_index(p), {item_id: 0})
        if obj.get("vector") is not None:
            try:
                vec = base64.b64decode(obj["vector"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidInput(f"item {item_id!r}: vector is not base64") from None
            dim = self.project.get("vector_dim") if self.project else None
            if dim is None or len(vec) != 4 * dim or not np.isfinite(np.frombuffer(vec, np.float32)).all():
                raise InvalidInput(f"item {item_id!r}: its vector is not {dim} finite float32 values")
            self.pipe.hset(keys.vectors(p), item_id, vec)
        self.items += 1
        self.pending += 1

    def label(self, obj: dict) -> None:
        item_id, schema = obj["labelled"], str(obj.get("schema"))
        values, times = obj.get("values"), obj.get("times") or {}
        if schema not in self.schemas:
            raise InvalidInput(
                f"labels of item {item_id!r} answer schema {schema!r}, which the project lacks"
            )
        if not isinstance(values, dict) or not values or not isinstance(times, dict):
            raise InvalidInput(f"labels of item {item_id!r}: values is an object of annotator -> label")
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in times.values()):
            raise InvalidInput(f"labels of item {item_id!r}: times are Unix milliseconds")
        for value in values.values():
            check_value(self.schemas[schema], value, self.labels)
        p = self.name
        self.pipe.hset(keys.labels(p, schema), item_id, json.dumps(values))
        self.pipe.hset(keys.annotator_counts(p, schema), item_id, len(values))
        if times:
            self.pipe.hset(keys.label_times(p, schema), item_id, json.dumps(times))
        self.pipe.zadd(keys.labelled_index(p, schema), {item_id: 0})
        self.labels += len(values)
        self.pending += 1

    def schema_state(self, obj: dict) -> None:
        schema = obj["schema_state"]
        if schema not in self.schemas:
            raise InvalidInput(f"state of schema {schema!r}, which the project lacks")
        for field, (kind, fn) in SCHEMA_STATE.items():
            _write(self.pipe, kind, fn(self.name, schema), obj.get(field))
        models = obj.get("models") or []
        if obj.get("stop_predictions") is not None and models:
            version = json.loads(models[-1])["version"]
            self.pipe.set(
                keys.stop_predictions(self.name, schema, version), json.dumps(obj["stop_predictions"])
            )
        self.pending += 1

    def api_key(self, obj: dict) -> None:
        if not self.with_keys:
            return
        record = {**obj["record"], "project": self.name}
        if self.redis.hexists(keys.api_keys(), obj["api_key"]):
            raise Conflict(f"API key {obj['api_key']!r} exists in this deployment already")
        self.store.save_key(self.name, obj["api_key"], record)
        self.key_ids.append(obj["api_key"])
        self.api_keys += 1

    def flush(self) -> None:
        if self.pending:
            self.pipe.execute()
            self.pending = 0

    def publish(self) -> None:
        """Make the project visible: its settings, then its name in the list of projects."""
        assert self.project is not None
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(keys.generation(self.name))
        for schema in self.schemas:
            pipe.incr(keys.label_revision(self.name, schema))
        pipe.set(keys.config(self.name), json.dumps(self.project))
        pipe.sadd(keys.projects(), self.name)
        if not pipe.execute()[-1]:
            raise Conflict(f"project {self.name!r} was created while the import ran")

    def remove(self) -> None:
        """Delete what an import that failed wrote."""
        self.pipe.reset()
        if not self.name or self.redis.sismember(keys.projects(), self.name):
            return  # nothing written yet, or the name is another's now: leave it be
        if self.key_ids:
            self.redis.hdel(keys.api_keys(), *self.key_ids)
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=glob_escape(keys.project(self.name)) + "*", count=1000):
            batch.append(raw(key))
            if len(batch) >= CHUNK:
                self.redis.unlink(*batch)
                batch = []
        if batch:
            self.redis.unlink(*batch)
