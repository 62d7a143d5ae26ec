-- KEYS: items, labels, nlab, rev, since, leases, owner
-- ARGV: schema prefix, labels an item needs, then triples (item, annotator, json value)
-- Refuses the whole batch when any item is unknown; otherwise returns
-- {new labels, labels since the last trigger, labelled items}.
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
