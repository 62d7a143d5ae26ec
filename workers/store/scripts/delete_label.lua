-- KEYS: labels, nlab, rev, ranking, the ranking's pos and returned, labelled index, label
--   times.
-- ARGV: item, annotator ('' for all), the ranking id the keys were named for ('' for none).
-- Returns the number of labels removed (the item rejoins the ranking at its rank), or
-- 'stale' when another ranking was published since the caller read its id.
local rid = redis.call('GET', KEYS[4]) or ''
if rid ~= ARGV[3] then return 'stale' end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local removed = 0
if ARGV[2] == '' then
  for _ in pairs(cjson.decode(raw)) do removed = removed + 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[7], ARGV[1])
  redis.call('HDEL', KEYS[8], ARGV[1])
else
  local byannot = cjson.decode(raw)
  if byannot[ARGV[2]] == nil then return 0 end
  byannot[ARGV[2]] = nil
  removed = 1
  if next(byannot) == nil then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[7], ARGV[1])
    redis.call('HDEL', KEYS[8], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(byannot))
    redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
    local rawtimes = redis.call('HGET', KEYS[8], ARGV[1])
    if rawtimes then
      local times = cjson.decode(rawtimes)
      times[ARGV[2]] = nil
      if next(times) == nil then
        redis.call('HDEL', KEYS[8], ARGV[1])
      else
        redis.call('HSET', KEYS[8], ARGV[1], cjson.encode(times))
      end
    end
  end
end
redis.call('INCR', KEYS[3])
if rid ~= '' then
  local p = redis.call('HGET', KEYS[5], ARGV[1])
  if p then redis.call('ZADD', KEYS[6], p, ARGV[1]) end
end
return removed
