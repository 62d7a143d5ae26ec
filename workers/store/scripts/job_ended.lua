-- KEYS: jobstate; ARGV: job id. The job is no longer running.
if redis.call('HGET', KEYS[1], 'running') == ARGV[1] then redis.call('HDEL', KEYS[1], 'running') end
return 1
