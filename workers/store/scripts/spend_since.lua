-- KEYS: the count of labels since the last retrain trigger; ARGV: how many of them a
-- trigger covered. Labels stored while the trigger was being claimed stay counted, so a
-- burst from many annotators never loses labels from the count. Returns what is left.
local left = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if left < 0 then left = 0 end
redis.call('SET', KEYS[1], left)
return left
