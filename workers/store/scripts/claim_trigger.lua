-- Coalesce retrain triggers. KEYS: jobstate; ARGV: candidate job id, ttl seconds.
-- Returns {action, job id, job it must wait for or ''}.
local queued = redis.call('HGET', KEYS[1], 'queued')
if queued then return {'coalesced', queued, ''} end
local running = redis.call('HGET', KEYS[1], 'running') or ''
redis.call('HSET', KEYS[1], 'queued', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'enqueue', ARGV[1], running}
