-- KEYS: items, labels, nlab, rev, since, leases, owner, ranking, the ranking's pos and
--   returned, labelled index, label times, then the lease keys of the annotators in the
--   batch.
-- ARGV: labels an item needs, the ranking id the keys were named for ('' for none), the
--   time (Unix ms), then quadruples (item, annotator, json value, index in KEYS of the
--   annotator's lease key).
-- Refuses the whole batch when any item is unknown; otherwise returns
-- {new labels, labels since the last trigger, labelled items}; 'stale' when another
-- ranking was published since the caller read its id.
local rid = redis.call('GET', KEYS[8]) or ''
if rid ~= ARGV[2] then return 'stale' end
local n = (#ARGV - 3) / 4
local needed = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local missing = {}
for i = 0, n - 1 do
  local item = ARGV[4 + 4 * i]
  if redis.call('HEXISTS', KEYS[1], item) == 0 then missing[#missing + 1] = item end
end
if #missing > 0 then return {-1, missing} end
local new = 0
for i = 0, n - 1 do
  local item, annot, value = ARGV[4 + 4 * i], ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  local mine = KEYS[tonumber(ARGV[7 + 4 * i])]
  local raw = redis.call('HGET', KEYS[2], item)
  local byannot = raw and cjson.decode(raw) or {}
  if byannot[annot] == nil then
    new = new + 1
    redis.call('HINCRBY', KEYS[3], item, 1)
  end
  byannot[annot] = cjson.decode(value)
  redis.call('HSET', KEYS[2], item, cjson.encode(byannot))
  redis.call('ZADD', KEYS[11], 0, item)
  local rawtimes = redis.call('HGET', KEYS[12], item)
  local times = rawtimes and cjson.decode(rawtimes) or {}
  times[annot] = now
  redis.call('HSET', KEYS[12], item, cjson.encode(times))
  if redis.call('HGET', KEYS[7], item) == annot then
    redis.call('ZREM', KEYS[6], item)
    redis.call('HDEL', KEYS[7], item)
    redis.call('ZREM', mine, item)
    -- still short of annotators: the next one to ask gets it first, at its rank
    if rid ~= '' and tonumber(redis.call('HGET', KEYS[3], item)) < needed then
      local p = redis.call('HGET', KEYS[9], item)
      if p then redis.call('ZADD', KEYS[10], p, item) end
    end
  end
end
redis.call('INCR', KEYS[4])
local since = redis.call('INCRBY', KEYS[5], new)
return {new, since, redis.call('HLEN', KEYS[2])}
