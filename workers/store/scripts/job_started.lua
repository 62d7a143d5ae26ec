-- KEYS: jobstate; ARGV: job id, ttl. The job leaves the queue and starts running.
if redis.call('HGET', KEYS[1], 'queued') == ARGV[1] then redis.call('HDEL', KEYS[1], 'queued') end
redis.call('HSET', KEYS[1], 'running', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
