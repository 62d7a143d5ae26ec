-- KEYS: leases, owner, the annotator's leases, ranking, the ranking's pos and returned.
-- ARGV: annotator, the ranking id the keys were named for ('' for none), then item ids
--   (none: all of the annotator's leases).
-- Released items return to the pool at their rank. Returns how many were released, or
-- 'stale' when another ranking was published since the caller read its id.
local rid = redis.call('GET', KEYS[4]) or ''
if rid ~= ARGV[2] then return 'stale' end
local annot = ARGV[1]
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[3], 0, -1)
end
local released = 0
for _, id in ipairs(ids) do
  if redis.call('HGET', KEYS[2], id) == annot then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    released = released + 1
    if rid ~= '' then
      local p = redis.call('HGET', KEYS[5], id)
      if p then redis.call('ZADD', KEYS[6], p, id) end
    end
  end
  redis.call('ZREM', KEYS[3], id)
end
return released
