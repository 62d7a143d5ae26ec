-- ARGV: schema prefix, annotator, then item ids (none: all of the annotator's leases).
-- Released items return to the pool at their rank.
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
