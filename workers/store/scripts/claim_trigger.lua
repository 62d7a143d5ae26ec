-- Coalesce retrain triggers. KEYS: jobstate; ARGV: candidate job id, ttl seconds, now (unix).
-- Returns {action, job id, job it must wait for or ''}. A claim records when it was made:
-- its job reaches RQ a moment later, and until then RQ does not know it.
local queued = redis.call('HGET', KEYS[1], 'queued')
if queued then return {'coalesced', queued, ''} end
local running = redis.call('HGET', KEYS[1], 'running') or ''
redis.call('HSET', KEYS[1], 'queued', ARGV[1], 'claimed_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'enqueue', ARGV[1], running}
