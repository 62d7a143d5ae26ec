-- KEYS: jobstate; ARGV: field, job id. Clears the field only if it still names the job.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
