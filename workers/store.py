"""The Redis data layout and every operation on it.

All keys live under ``alrank:``; a project's keys under ``alrank:p:{project}:``, a schema's
under ``alrank:p:{project}:s:{schema}:``. Operations that must not interleave (label
upserts, leasing a batch, publishing a ranking) run as Lua scripts, which Redis executes
atomically: two annotators asking at once can never lease the same item.

Layout of one project ``P`` and schema ``S`` (``pre = alrank:p:P:``, ``s = pre + s:S:``):

- ``alrank:projects`` SET of project names; ``pre + config`` the project as JSON.
- ``pre + items`` HASH item id -> JSON ``{"text", "metadata"}``;
  ``pre + vectors`` HASH item id -> float32 bytes; ``pre + gen`` pool generation.
- ``s + labels`` HASH item id -> JSON ``{annotator: value}``; ``s + nlab`` HASH item id ->
  number of annotators; ``s + rev`` label revision; ``s + since`` labels since the last
  retrain trigger.
- ``s + leases`` ZSET item id -> expiry (ms); ``s + owner`` HASH item id -> annotator;
  ``s + lease:{annotator}`` ZSET of that annotator's items.
- ``s + ranking`` the published ranking id R; ``s + r:R:order`` LIST of item ids, best
  first; ``s + r:R:explore`` LIST, a random permutation; ``s + r:R:info`` HASH item id ->
  JSON ``[score, rank, prediction, confidence]``; ``s + r:R:meta`` JSON; ``s + r:R:head:*``
  how much of each list is labelled and can be skipped.
- ``s + models`` LIST of model-version JSON; ``s + model:V`` the model's ``.npz`` bytes.
- ``s + jobstate`` HASH ``queued``/``running`` job ids, for coalescing retrain triggers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from redis import Redis

from workers import defaults
from workers.exceptions import Conflict, InvalidInput, NotFound
from workers.settings import active_learning

NAME_RE = re.compile(defaults.NAME_PATTERN)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def project_prefix(project: str) -> str:
    return f"{defaults.KEY_PREFIX}:p:{project}:"


def schema_prefix(project: str, schema: str) -> str:
    return f"{project_prefix(project)}s:{schema}:"


PROJECTS_KEY = f"{defaults.KEY_PREFIX}:projects"

# --- Lua scripts --------------------------------------------------------------------

# KEYS: items, labels, nlab, rev, since, leases, owner
# ARGV: schema prefix, labels an item needs, then triples (item, annotator, json value)
# Refuses the whole batch when any item is unknown; otherwise returns
# {new labels, labels since the last trigger, labelled items}.
_UPSERT_LABELS = """
local n = (#ARGV - 2) / 3
local needed = tonumber(ARGV[2])
local missing = {}
for i = 0, n - 1 do
  local item = ARGV[3 + 3 * i]
  if redis.call('HEXISTS', KEYS[1], item) == 0 then missing[#missing + 1] = item end
end
if #missing > 0 then return {-1, missing} end
local new = 0
for i = 0, n - 1 do
  local item, annot, value = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local raw = redis.call('HGET', KEYS[2], item)
  local byannot = raw and cjson.decode(raw) or {}
  if byannot[annot] == nil then
    new = new + 1
    redis.call('HINCRBY', KEYS[3], item, 1)
  end
  byannot[annot] = cjson.decode(value)
  redis.call('HSET', KEYS[2], item, cjson.encode(byannot))
  local owner = redis.call('HGET', KEYS[7], item)
  if owner == annot then
    redis.call('ZREM', KEYS[6], item)
    redis.call('HDEL', KEYS[7], item)
    redis.call('ZREM', ARGV[1] .. 'lease:' .. owner, item)
    -- still short of annotators: the next one to ask gets it first, at its rank
    if tonumber(redis.call('HGET', KEYS[3], item)) < needed then
      local rid = redis.call('GET', ARGV[1] .. 'ranking')
      if rid then
        local p = redis.call('HGET', ARGV[1] .. 'r:' .. rid .. ':pos', item)
        if p then redis.call('ZADD', ARGV[1] .. 'r:' .. rid .. ':returned', p, item) end
      end
    end
  end
end
redis.call('INCR', KEYS[4])
local since = redis.call('INCRBY', KEYS[5], new)
return {new, since, redis.call('HLEN', KEYS[2])}
"""

# KEYS: labels, nlab, rev ; ARGV: item, annotator ('' for all), schema prefix.
# Returns the number of labels removed; the item rejoins the ranking at its rank.
_DELETE_LABEL = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local removed = 0
if ARGV[2] == '' then
  for _ in pairs(cjson.decode(raw)) do removed = removed + 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  local byannot = cjson.decode(raw)
  if byannot[ARGV[2]] == nil then return 0 end
  byannot[ARGV[2]] = nil
  removed = 1
  if next(byannot) == nil then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(byannot))
    redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
  end
end
redis.call('INCR', KEYS[3])
local rid = redis.call('GET', ARGV[3] .. 'ranking')
if rid then
  local p = redis.call('HGET', ARGV[3] .. 'r:' .. rid .. ':pos', ARGV[1])
  if p then redis.call('ZADD', ARGV[3] .. 'r:' .. rid .. ':returned', p, ARGV[1]) end
end
return removed
"""

# Lease a batch. ARGV: schema prefix, items key, annotator, size, lease ms, explore count,
# labels needed per item, fallback sample size, evaluation count.
#
# Each list of the published ranking has a frontier: items before it have been handed out
# (or were done) once already. An item handed out comes back through the ranking's
# ``returned`` ZSET (scored by rank) when its lease is released or lapses, so a request
# looks at the few returned items and then at the frontier, never rescanning the leased
# head of the ranking.
#
# Returns {ranking id or '', ranking meta or '', then per item: id, source, item JSON,
# ranking info JSON or ''}; sources: 'lease' (already held), 'ranking', 'random'
# (exploration), 'fallback' (no ranking published yet).
_NEXT_BATCH = """
local pre, items, annot = ARGV[1], ARGV[2], ARGV[3]
local size, lease_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local n_explore, needed = tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nlab, leases, owner = pre .. 'nlab', pre .. 'leases', pre .. 'owner'
local mine = pre .. 'lease:' .. annot
local rid = redis.call('GET', pre .. 'ranking') or ''
local r = pre .. 'r:' .. rid .. ':'
local returned, pos = r .. 'returned', r .. 'pos'
local out, chosen, taken = {}, {}, 0

-- 0. lapsed leases: their items return to the pool at their rank
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', leases, id)
  redis.call('HDEL', owner, id)
  if rid ~= '' then
    local p = redis.call('HGET', pos, id)
    if p then redis.call('ZADD', returned, p, id) end
  end
end

local function done(id)
  local n = tonumber(redis.call('HGET', nlab, id) or '0')
  if n >= needed or redis.call('HEXISTS', items, id) == 0 then return true end
  -- an item that needs another annotator is never handed back to one who labelled it
  if n > 0 then
    local raw = redis.call('HGET', pre .. 'labels', id)
    if raw and cjson.decode(raw)[annot] ~= nil then return true end
  end
  return false
end
local function free(id)
  if chosen[id] then return false end
  return not redis.call('ZSCORE', leases, id) or redis.call('HGET', owner, id) == annot
end
local function take(id, source)
  if source == 'evaluation' then redis.call('SADD', pre .. 'eval', id) end
  chosen[id] = true
  taken = taken + 1
  out[#out + 1] = id
  out[#out + 1] = source
end

-- 1. the annotator's own unexpired leases come back first
redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
for _, id in ipairs(redis.call('ZRANGE', mine, 0, -1)) do
  if taken >= size then break end
  if not done(id) and redis.call('HGET', owner, id) == annot then
    take(id, 'lease')
  else
    redis.call('ZREM', mine, id)
  end
end

-- 2. walk a published list from its frontier
local function walk(list, want, source)
  local head_key = r .. 'head:' .. list
  local head = tonumber(redis.call('GET', head_key) or '0')
  local len = redis.call('LLEN', r .. list)
  local got = 0
  while got < want and head < len do
    local chunk = redis.call('LRANGE', r .. list, head, head + 2 * (want - got) + 8)
    for _, id in ipairs(chunk) do
      head = head + 1
      if not done(id) and free(id) then
        take(id, source)
        got = got + 1
        if got >= want then break end
      end
    end
  end
  redis.call('SET', head_key, head)
end

-- 3. items handed out before and given back, best rank first
local function from_returned(want)
  local got = 0
  while got < want do
    local ids = redis.call('ZRANGE', returned, 0, want - got - 1)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      redis.call('ZREM', returned, id)
      if not done(id) and free(id) then
        take(id, 'ranking')
        got = got + 1
      end
    end
  end
end

if rid ~= '' then
  -- the evaluation share: uniform draws, kept out of the active-learning order
  local n_eval = math.min(tonumber(ARGV[9]), size - taken)
  if n_eval > 0 then walk('explore', n_eval, 'evaluation') end
  local explore = math.min(n_explore, size - taken)
  if explore > 0 then walk('explore', explore, 'random') end
  if size - taken > 0 then from_returned(size - taken) end
  if size - taken > 0 then walk('order', size - taken, 'ranking') end
  if size - taken > 0 then walk('explore', size - taken, 'random') end
end
if size - taken > 0 then
  -- no ranking yet, or it ran dry (items added since): sample the pool at random
  -- HRANDFIELD picks a uniform subset, but a small (listpack) hash returns it in upload
  -- order, so taking its head would favour the first items uploaded: shuffle it first
  local sample = redis.call('HRANDFIELD', items, tonumber(ARGV[8]))
  for i = #sample, 2, -1 do
    local j = math.random(i)
    sample[i], sample[j] = sample[j], sample[i]
  end
  for _, id in ipairs(sample) do
    if size - taken <= 0 then break end
    if not done(id) and free(id) then take(id, 'fallback') end
  end
end

-- item k of the batch expires k ms after the first, which keeps the batch's order
-- when the annotator asks again
local exp = now + lease_ms
for i = 1, #out, 2 do
  local id = out[i]
  redis.call('ZADD', leases, exp + (i - 1) / 2, id)
  redis.call('HSET', owner, id, annot)
  redis.call('ZADD', mine, exp + (i - 1) / 2, id)
end
if #out > 0 then redis.call('PEXPIRE', mine, lease_ms + #out) end

-- reply with everything the response needs, saving the caller a round trip
local meta = rid ~= '' and redis.call('GET', r .. 'meta') or ''
local reply = {rid, meta or ''}
for i = 1, #out, 2 do
  local id = out[i]
  reply[#reply + 1] = id
  reply[#reply + 1] = out[i + 1]
  reply[#reply + 1] = redis.call('HGET', items, id) or ''
  reply[#reply + 1] = rid ~= '' and redis.call('HGET', r .. 'info', id) or ''
end
return reply
"""

# ARGV: schema prefix, annotator, then item ids (none: all of the annotator's leases).
# Released items return to the pool at their rank.
_RELEASE = """
local pre, annot = ARGV[1], ARGV[2]
local mine = pre .. 'lease:' .. annot
local rid = redis.call('GET', pre .. 'ranking')
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', mine, 0, -1)
end
local released = 0
for _, id in ipairs(ids) do
  if redis.call('HGET', pre .. 'owner', id) == annot then
    redis.call('ZREM', pre .. 'leases', id)
    redis.call('HDEL', pre .. 'owner', id)
    released = released + 1
    if rid then
      local p = redis.call('HGET', pre .. 'r:' .. rid .. ':pos', id)
      if p then redis.call('ZADD', pre .. 'r:' .. rid .. ':returned', p, id) end
    end
  end
  redis.call('ZREM', mine, id)
end
return released
"""

# Coalesce retrain triggers. KEYS: jobstate; ARGV: candidate job id, ttl seconds.
# Returns {action, job id, job it must wait for or ''}.
_TRIGGER = """
local queued = redis.call('HGET', KEYS[1], 'queued')
if queued then return {'coalesced', queued, ''} end
local running = redis.call('HGET', KEYS[1], 'running') or ''
redis.call('HSET', KEYS[1], 'queued', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'enqueue', ARGV[1], running}
"""

# KEYS: jobstate; ARGV: job id, ttl. The job leaves the queue and starts running.
_JOB_STARTED = """
if redis.call('HGET', KEYS[1], 'queued') == ARGV[1] then redis.call('HDEL', KEYS[1], 'queued') end
redis.call('HSET', KEYS[1], 'running', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

_JOB_ENDED = """
if redis.call('HGET', KEYS[1], 'running') == ARGV[1] then redis.call('HDEL', KEYS[1], 'running') end
return 1
"""

# KEYS: jobstate; ARGV: field, job id. Clears the field only if it still names the job.
_FORGET_JOB = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


class RankingEntry(NamedTuple):
    """One item of a published ranking, as the refresh writes it and a batch reads it."""

    score: float
    """The strategy's score (higher: more informative)."""
    rank: int
    """Position in the ranking, 1 first."""
    label: Any
    """The model's predicted label (a list for multi-label), or None before a model."""
    confidence: float | None
    """The model's confidence in that label."""

    def to_json(self) -> str:
        return json.dumps(list(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> RankingEntry:
        return cls(*json.loads(raw))


@dataclass
class BatchItem:
    """One leased item: its stored document and its entry in the ranking (if any)."""

    id: str
    source: str
    doc: dict
    entry: RankingEntry | None


@dataclass
class Batch:
    """Items leased to one annotator, in order, with the ranking they came from."""

    ranking_id: str
    ranking_meta: dict | None
    items: list[BatchItem]


class Store:
    """Every read and write of alrank's state, over one Redis connection (passed in)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._upsert_labels = redis.register_script(_UPSERT_LABELS)
        self._delete_label = redis.register_script(_DELETE_LABEL)
        self._next_batch = redis.register_script(_NEXT_BATCH)
        self._release = redis.register_script(_RELEASE)
        self._trigger = redis.register_script(_TRIGGER)
        self._job_started = redis.register_script(_JOB_STARTED)
        self._job_ended = redis.register_script(_JOB_ENDED)
        self._forget_job = redis.register_script(_FORGET_JOB)

    # --- projects -------------------------------------------------------------------

    def create_project(self, project: dict) -> dict:
        name = project["name"]
        if not self.redis.sadd(PROJECTS_KEY, name):
            raise Conflict(f"project {name!r} already exists")
        project = {**project, "created_at": now_iso(), "settings_rev": 1}
        self.redis.set(project_prefix(name) + "config", json.dumps(project))
        return project

    def get_project(self, name: str) -> dict:
        raw = self.redis.get(project_prefix(name) + "config")
        if raw is None:
            raise NotFound(f"no project named {name!r}")
        return json.loads(raw)

    def save_project(self, project: dict) -> dict:
        project = {**project, "settings_rev": project.get("settings_rev", 0) + 1}
        self.redis.set(project_prefix(project["name"]) + "config", json.dumps(project))
        return project

    def list_projects(self) -> list[str]:
        return sorted(_text(m) for m in self.redis.smembers(PROJECTS_KEY))

    def delete_project(self, name: str) -> None:
        self.get_project(name)
        self.redis.srem(PROJECTS_KEY, name)
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=_glob_escape(project_prefix(name)) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.redis.unlink(*batch)
                batch = []
        if batch:
            self.redis.unlink(*batch)

    # --- items ----------------------------------------------------------------------

    def upsert_items(self, project: dict, items: list[dict]) -> dict:
        """Insert or replace items; returns counts of created and updated items."""
        pre = project_prefix(project["name"])
        pipe = self.redis.pipeline(transaction=True)
        for item in items:
            doc = {"text": item.get("text"), "metadata": item.get("metadata") or {}}
            pipe.hset(pre + "items", item["id"], json.dumps(doc))
            vec = item.get("vector")
            if vec is not None:
                pipe.hset(pre + "vectors", item["id"], np.asarray(vec, dtype=np.float32).tobytes())
            else:
                pipe.hdel(pre + "vectors", item["id"])
        pipe.incr(pre + "gen")
        results = pipe.execute()
        created = sum(int(r) for r in results[0:-1:2])
        return {"created": created, "updated": len(items) - created}

    def delete_item(self, project: dict, item_id: str) -> None:
        pre = project_prefix(project["name"])
        if not self.redis.hexists(pre + "items", item_id):
            raise NotFound(f"no item {item_id!r} in project {project['name']!r}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(pre + "items", item_id)
        pipe.hdel(pre + "vectors", item_id)
        for schema in project["schemas"]:
            sp = schema_prefix(project["name"], schema["name"])
            pipe.hdel(sp + "labels", item_id)
            pipe.hdel(sp + "nlab", item_id)
            pipe.incr(sp + "rev")
            pipe.zrem(sp + "leases", item_id)
            pipe.hdel(sp + "owner", item_id)
        pipe.incr(pre + "gen")
        pipe.execute()

    def item_count(self, project: str) -> int:
        return int(self.redis.hlen(project_prefix(project) + "items"))

    def get_items(self, project: str, ids: list[str]) -> list[dict | None]:
        if not ids:
            return []
        raws = self.redis.hmget(project_prefix(project) + "items", ids)
        return [json.loads(r) if r is not None else None for r in raws]

    def iter_items(self, project: str) -> Iterator[tuple[str, dict]]:
        for key, raw in self.redis.hscan_iter(project_prefix(project) + "items", count=5000):
            yield key.decode(), json.loads(raw)

    def load_vectors(self, project: str, ids: list[str], dim: int | None) -> np.ndarray | None:
        """One float32 row per id, zeros where an item has no vector; None when none has."""
        if not dim:
            return None
        key = project_prefix(project) + "vectors"
        if not self.redis.hlen(key):
            return None
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            for i, raw in enumerate(self.redis.hmget(key, chunk)):
                if raw is not None:
                    out[start + i] = np.frombuffer(_bytes(raw), dtype=np.float32)
        return out

    def feature_rows(self, project: str, part: str) -> bytes | None:
        """The cached rows of one feature part of the pool (see ``workers.features``)."""
        blob = self.redis.get(project_prefix(project) + "features:" + part)
        return _bytes(blob) if blob is not None else None

    def save_feature_rows(self, project: str, part: str, blob: bytes) -> None:
        self.redis.set(project_prefix(project) + "features:" + part, blob)

    def pool_generation(self, project: str) -> int:
        return int(self.redis.get(project_prefix(project) + "gen") or 0)

    # --- labels ---------------------------------------------------------------------

    def check_items_exist(self, project: str, ids: list[str]) -> None:
        key = project_prefix(project) + "items"
        unique = list(dict.fromkeys(ids))
        pipe = self.redis.pipeline(transaction=False)
        for item_id in unique:
            pipe.hexists(key, item_id)
        missing = [i for i, ok in zip(unique, pipe.execute(), strict=True) if not ok]
        if missing:
            _raise_unknown_items(missing)

    def upsert_labels(
        self, project: str, schema: str, labels: list[dict], needed: int = 1
    ) -> tuple[int, int, int]:
        """Store labels; returns (labels new to their item and annotator, labels since the
        last retrain trigger, items with a label). An item still short of its ``needed``
        annotators goes back to the head of the ranking for the next one."""
        pre = project_prefix(project)
        sp = schema_prefix(project, schema)
        argv: list[str | int] = [sp, needed]
        for label in labels:
            argv += [label["item"], label["annotator"], json.dumps(label["value"])]
        keys = [pre + "items"] + [sp + k for k in ("labels", "nlab", "rev", "since", "leases", "owner")]
        reply = self._upsert_labels(keys=keys, args=argv)
        if reply[0] == -1:
            _raise_unknown_items([m.decode() for m in reply[1]])
        return int(reply[0]), int(reply[1]), int(reply[2])

    def delete_label(self, project: str, schema: str, item: str, annotator: str | None) -> int:
        sp = schema_prefix(project, schema)
        keys = [sp + "labels", sp + "nlab", sp + "rev"]
        return int(self._delete_label(keys=keys, args=[item, annotator or "", sp]))

    def load_labels(self, project: str, schema: str) -> dict[str, dict[str, Any]]:
        key = schema_prefix(project, schema) + "labels"
        return {k.decode(): json.loads(v) for k, v in self.redis.hscan_iter(key, count=5000)}

    def item_labels(self, project: str, schema: str, item: str) -> dict[str, Any]:
        raw = self.redis.hget(schema_prefix(project, schema) + "labels", item)
        return json.loads(raw) if raw is not None else {}

    def eval_items(self, project: str, schema: str) -> set[str]:
        """Items handed out as part of the random evaluation sample."""
        return {_text(m) for m in self.redis.smembers(schema_prefix(project, schema) + "eval")}

    def save_stop_predictions(self, project: str, schema: str, version: int, preds: dict[str, Any]) -> None:
        self.redis.set(schema_prefix(project, schema) + f"stoppreds:{version}", json.dumps(preds))

    def stop_predictions(self, project: str, schema: str, version: int) -> dict[str, Any] | None:
        raw = self.redis.get(schema_prefix(project, schema) + f"stoppreds:{version}")
        return json.loads(raw) if raw is not None else None

    def label_revision(self, project: str, schema: str) -> int:
        return int(self.redis.get(schema_prefix(project, schema) + "rev") or 0)

    def reset_since(self, project: str, schema: str) -> None:
        self.redis.set(schema_prefix(project, schema) + "since", 0)

    # --- batches and leases ---------------------------------------------------------

    def next_batch(
        self,
        project: str,
        schema: str,
        annotator: str,
        size: int,
        lease_seconds: int,
        n_explore: int,
        labels_needed: int,
        n_eval: int = 0,
    ) -> Batch:
        reply = self._next_batch(
            keys=[],
            args=[
                schema_prefix(project, schema),
                project_prefix(project) + "items",
                annotator,
                size,
                lease_seconds * 1000,
                n_explore,
                labels_needed,
                max(4 * size, 50),
                n_eval,
            ],
        )
        rid, meta = _text(reply[0]), _text(reply[1])
        items = [
            BatchItem(
                _text(reply[k]),
                _text(reply[k + 1]),
                json.loads(reply[k + 2]),
                RankingEntry.from_json(reply[k + 3]) if reply[k + 3] else None,
            )
            for k in range(2, len(reply), 4)
            if reply[k + 2]  # deleted while being leased
        ]
        return Batch(rid, json.loads(meta) if meta else None, items)

    def ranking_meta(self, project: str, schema: str, rid: str | None = None) -> dict | None:
        sp = schema_prefix(project, schema)
        if rid is None:
            cur = self.redis.get(sp + "ranking")
            if cur is None:
                return None
            rid = _text(cur)
        raw = self.redis.get(sp + f"r:{rid}:meta")
        return json.loads(raw) if raw is not None else None

    def release(self, project: str, schema: str, annotator: str, items: list[str] | None) -> int:
        args = [schema_prefix(project, schema), annotator, *(items or [])]
        return int(self._release(keys=[], args=args))

    def counts(self, project: dict, schema: str) -> dict:
        sp = schema_prefix(project["name"], schema)
        now_ms = int(time.time() * 1000)
        needed = active_learning(project)["min_annotations_per_instance"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(sp + "labels")
        pipe.zcount(sp + "leases", f"({now_ms}", "+inf")
        pipe.hvals(sp + "nlab") if needed > 1 else pipe.hlen(sp + "nlab")
        labelled_any, leased, nlab = pipe.execute()
        done = sum(int(v) >= needed for v in nlab) if needed > 1 else int(nlab)
        return {"labelled": done, "with_any_label": int(labelled_any), "leased": int(leased)}

    # --- rankings -------------------------------------------------------------------

    def publish_ranking(
        self,
        project: str,
        schema: str,
        order: list[str],
        explore: list[str],
        entries: dict[str, RankingEntry],
        meta: dict,
    ) -> str:
        """Write a ranking under a fresh id, then switch to it in one step."""
        sp = schema_prefix(project, schema)
        rid = str(self.redis.incr(sp + "rseq"))
        r = sp + f"r:{rid}:"
        for key, values in (("order", order), ("explore", explore)):
            for start in range(0, len(values), 10_000):
                self.redis.rpush(r + key, *values[start : start + 10_000])
        fields = [(item, entry.to_json()) for item, entry in entries.items()]
        for start in range(0, len(fields), 10_000):
            self.redis.hset(r + "info", mapping=dict(fields[start : start + 10_000]))
        for start in range(0, len(order), 10_000):
            chunk = order[start : start + 10_000]
            self.redis.hset(r + "pos", mapping={item: start + k for k, item in enumerate(chunk)})
        meta = {**meta, "ranking_id": rid, "published_at": now_iso()}
        self.redis.set(r + "meta", json.dumps(meta))
        old = self.redis.getset(sp + "ranking", rid)
        if old is not None:
            o = sp + f"r:{_text(old)}:"
            pipe = self.redis.pipeline(transaction=False)
            for key in ("order", "explore", "info", "pos", "returned", "meta", "head:order", "head:explore"):
                pipe.expire(o + key, defaults.RANKING_GRACE_SECONDS)
            pipe.execute()
        return rid

    # --- models ---------------------------------------------------------------------

    def next_model_version(self, project: str, schema: str) -> int:
        """A new version number; a job that fails after taking one leaves a gap."""
        return int(self.redis.incr(schema_prefix(project, schema) + "modelseq"))

    def save_model_state(self, project: str, schema: str, version: int, state: bytes) -> None:
        self.redis.set(schema_prefix(project, schema) + f"model:{version}", state)

    def add_model(self, project: str, schema: str, meta: dict) -> dict:
        """List a model version (its state saved and its ranking published already)."""
        self.redis.rpush(schema_prefix(project, schema) + "models", json.dumps(meta))
        return meta

    def list_models(self, project: str, schema: str) -> list[dict]:
        return [json.loads(m) for m in self.redis.lrange(schema_prefix(project, schema) + "models", 0, -1)]

    def latest_model(self, project: str, schema: str) -> dict | None:
        raw = self.redis.lindex(schema_prefix(project, schema) + "models", -1)
        return json.loads(raw) if raw is not None else None

    def model_state(self, project: str, schema: str, version: int) -> bytes:
        raw = self.redis.get(schema_prefix(project, schema) + f"model:{version}")
        if raw is None:
            raise NotFound(f"no model version {version} for schema {schema!r}")
        return _bytes(raw)

    # --- job coalescing ---------------------------------------------------------------

    def claim_trigger(self, project: str, schema: str, job_id: str) -> tuple[str, str, str]:
        """Record a retrain request: ('enqueue', id, depends_on) or ('coalesced', id, '')."""
        key = schema_prefix(project, schema) + "jobstate"
        action, jid, dep = self._trigger(keys=[key], args=[job_id, defaults.JOB_STATE_TTL])
        return action.decode(), jid.decode(), dep.decode()

    def job_started(self, project: str, schema: str, job_id: str) -> None:
        key = schema_prefix(project, schema) + "jobstate"
        self._job_started(keys=[key], args=[job_id, defaults.JOB_STATE_TTL])

    def job_ended(self, project: str, schema: str, job_id: str) -> None:
        self._job_ended(keys=[schema_prefix(project, schema) + "jobstate"], args=[job_id])

    def unclaim_trigger(self, project: str, schema: str, job_id: str) -> None:
        """Undo a claim whose job could not be enqueued."""
        self.forget_job(project, schema, "queued", job_id)

    def job_markers(self, project: str, schema: str) -> dict[str, str]:
        """The schema's ``queued`` and ``running`` job ids, where set."""
        raw = self.redis.hgetall(schema_prefix(project, schema) + "jobstate")
        return {_text(k): _text(v) for k, v in raw.items()}

    def forget_job(self, project: str, schema: str, marker: str, job_id: str) -> None:
        """Clear ``marker`` if it still names ``job_id`` (a job that will not run)."""
        self._forget_job(keys=[schema_prefix(project, schema) + "jobstate"], args=[marker, job_id])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _raise_unknown_items(missing: list[str]) -> None:
    shown = ", ".join(repr(m) for m in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    raise InvalidInput(
        f"labels refer to items that are not in the project: {shown}{more}; upload the items first",
        {"unknown_items": missing},
    )


def _glob_escape(s: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", s)


def check_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
