-- KEYS: labels, nlab, rev ; ARGV: item, annotator ('' for all), schema prefix.
-- Returns the number of labels removed; the item rejoins the ranking at its rank.
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
