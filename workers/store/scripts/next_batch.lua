-- Lease a batch.
-- KEYS: items, nlab, labels, leases, owner, the annotator's leases, eval, ranking, then the
--   ranking's order, explore, info, pos, returned, head:order, head:explore and meta, then
--   the schema's count of items asked for, the evaluation sample, how far it is done, and
--   the set of uniform draws, then the overlap queue, its due counts and head, and the
--   review queue, its due counts and head.
-- ARGV: annotator, size, lease ms, exploration share, labels needed per item, fallback
--   sample size (also how far past its head a list is looked at), evaluation share, the ranking id the keys were named for ('' for none),
--   overlap share, review share.
-- The shares are fractions of the items asked for; a batch's count of each is the rise of
-- floor(share x items asked for) over the batch (``workers.batches.share``), so over any
-- run of batches it is exact to within one item.
-- Returns 'stale' when another ranking was published since the caller read its id (the
-- caller names the keys again and retries).
--
-- Each list of the published ranking has a frontier: items before it have been handed out
-- (or were done) once already. An item handed out comes back through the ranking's
-- ``returned`` ZSET (scored by rank) when its lease is released or lapses, so a request
-- looks at the few returned items and then at the frontier, never rescanning the leased
-- head of the ranking.
--
-- The evaluation share walks the evaluation sample (drawn once by the refresh, never
-- ranked) from the first item not yet labelled; once all of it is labelled the share
-- goes to the ranking.
--
-- The review and overlap shares walk their queues (labelled items, listed by the refresh)
-- the same way, handing an item only to an annotator who has not labelled it, and only
-- while its number of annotators is what it was when listed.
--
-- Returns {ranking id or '', ranking meta or '', then per item: id, source, item JSON,
-- ranking info JSON or ''}; sources: 'lease' (already held), 'ranking', 'random'
-- (exploration), 'evaluation', 'review', 'overlap' (an item labelled already, for another
-- annotator), 'fallback' (no ranking published yet).
local items, nlab, labels, leases, owner, mine, eval = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local rid = redis.call('GET', KEYS[8]) or ''
if rid ~= ARGV[8] then return 'stale' end
local list_key = {order = KEYS[9], explore = KEYS[10]}
local info, pos, returned = KEYS[11], KEYS[12], KEYS[13]
local head_key = {order = KEYS[14], explore = KEYS[15]}
local meta_key = KEYS[16]
local sample, sample_head, draws = KEYS[18], KEYS[19], KEYS[20]
local annot = ARGV[1]
local size, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local needed = tonumber(ARGV[5])
local asked = redis.call('INCRBY', KEYS[17], size) - size
local function share(fraction)
  return math.floor((asked + size) * fraction + 1e-9) - math.floor(asked * fraction + 1e-9)
end
local n_explore, n_eval_share = share(tonumber(ARGV[4])), share(tonumber(ARGV[7]))
local n_overlap, n_review = share(tonumber(ARGV[9])), share(tonumber(ARGV[10]))
local queue_key = {overlap = {KEYS[21], KEYS[22], KEYS[23]}, review = {KEYS[24], KEYS[25], KEYS[26]}}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, chosen, taken = {}, {}, 0

-- 0. lapsed leases: their items return to the pool at their rank
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', leases, id)
  redis.call('HDEL', owner, id)
  if rid ~= '' then
    local p = redis.call('HGET', pos, id)
    if p then redis.call('ZADD', returned, p, id) end
  end
end

local function finished(id)
  local n = tonumber(redis.call('HGET', nlab, id) or '0')
  return n >= needed or redis.call('HEXISTS', items, id) == 0, n
end
local function labelled_by_me(id)
  local raw = redis.call('HGET', labels, id)
  return raw and cjson.decode(raw)[annot] ~= nil
end
local function done(id)
  local over, n = finished(id)
  if over then return true end
  -- an item that needs another annotator is never handed back to one who labelled it
  return n > 0 and labelled_by_me(id)
end
-- whether a queue still wants another annotator for an item: listed, unanswered since
local function queued(name, id)
  local listed = redis.call('HGET', queue_key[name][2], id)
  return listed and listed == (redis.call('HGET', nlab, id) or '0') and redis.call('HEXISTS', items, id) == 1
end
local function free(id)
  if chosen[id] then return false end
  return not redis.call('ZSCORE', leases, id) or redis.call('HGET', owner, id) == annot
end
local function take(id, source)
  -- a second annotator for an item short of its annotators
  if source == 'ranking' and tonumber(redis.call('HGET', nlab, id) or '0') > 0 then source = 'overlap' end
  if source == 'evaluation' then redis.call('SADD', eval, id) end
  -- how an item was last chosen: uniform draws teach the gain over random
  if source == 'random' or source == 'fallback' then
    redis.call('SADD', draws, id)
  elseif source == 'ranking' then
    redis.call('SREM', draws, id)
  end
  chosen[id] = true
  taken = taken + 1
  out[#out + 1] = id
  out[#out + 1] = source
end

-- 1. the annotator's own unexpired leases come back first
redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
for _, id in ipairs(redis.call('ZRANGE', mine, 0, -1)) do
  if taken >= size then break end
  local wanted = not done(id) or ((queued('review', id) or queued('overlap', id)) and not labelled_by_me(id))
  if wanted and redis.call('HGET', owner, id) == annot then
    take(id, 'lease')
  else
    redis.call('ZREM', mine, id)
  end
end

-- 2. walk a published list from its frontier
local function walk(list, want, source)
  local head_at = head_key[list]
  local head = tonumber(redis.call('GET', head_at) or '0')
  local len = redis.call('LLEN', list_key[list])
  local got = 0
  while got < want and head < len do
    local chunk = redis.call('LRANGE', list_key[list], head, head + 2 * (want - got) + 8)
    for _, id in ipairs(chunk) do
      head = head + 1
      if not done(id) and free(id) then
        take(id, source)
        got = got + 1
        if got >= want then break end
      end
    end
  end
  redis.call('SET', head_at, head)
end

-- 3. items handed out before and given back, best rank first
local function from_returned(want)
  local got = 0
  while got < want do
    local ids = redis.call('ZRANGE', returned, 0, want - got - 1)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      redis.call('ZREM', returned, id)
      if not done(id) and free(id) then
        take(id, 'ranking')
        got = got + 1
      end
    end
  end
end

-- 4. a list walked from the first item still open (``is_open``): the evaluation sample
-- (items not labelled by enough annotators) and the queues of labelled items for another
-- annotator (items unanswered since listed); the head moves past what is closed for good.
-- It looks at no more than ``scan`` items past the head: items open to others but not to
-- this annotator (labelled by them, or leased to someone else) stay ahead of the head, and
-- a request must not walk all of them (one annotator alone would meet every item they
-- labelled in the overlap queue).
local scan = tonumber(ARGV[6])
local function from_list(list, head_at, want, is_open, source)
  local len = redis.call('LLEN', list)
  local head = tonumber(redis.call('GET', head_at) or '0')
  local at, got, advancing = head, 0, true
  while got < want and at < len and (advancing or at - head < scan) do
    for _, id in ipairs(redis.call('LRANGE', list, at, at + 63)) do
      if not advancing and at - head >= scan then break end
      at = at + 1
      if not is_open(id) then
        if advancing then head = at end
      else
        advancing = false
        if not labelled_by_me(id) and free(id) then
          take(id, source)
          got = got + 1
          if got >= want then break end
        end
      end
    end
  end
  redis.call('SET', head_at, head)
end
local function from_queue(name, want)
  from_list(queue_key[name][1], queue_key[name][3], want, function(id) return queued(name, id) end, name)
end
local function unfinished(id) return not finished(id) end

if n_review > 0 then from_queue('review', math.min(n_review, size - taken)) end
if n_overlap > 0 then from_queue('overlap', math.min(n_overlap, size - taken)) end
if rid ~= '' then
  -- the evaluation share: the evaluation sample, kept out of the active-learning order
  local n_eval = math.min(n_eval_share, size - taken)
  if n_eval > 0 then from_list(sample, sample_head, n_eval, unfinished, 'evaluation') end
  local explore = math.min(n_explore, size - taken)
  if explore > 0 then walk('explore', explore, 'random') end
  if size - taken > 0 then from_returned(size - taken) end
  if size - taken > 0 then walk('order', size - taken, 'ranking') end
  if size - taken > 0 then walk('explore', size - taken, 'random') end
end
if size - taken > 0 then
  -- no ranking yet, or it ran dry (items added since): sample the pool at random
  -- HRANDFIELD picks a uniform subset, but a small (listpack) hash returns it in upload
  -- order, so taking its head would favour the first items uploaded: shuffle it first
  local sample = redis.call('HRANDFIELD', items, tonumber(ARGV[6]))
  for i = #sample, 2, -1 do
    local j = math.random(i)
    sample[i], sample[j] = sample[j], sample[i]
  end
  for _, id in ipairs(sample) do
    if size - taken <= 0 then break end
    if not done(id) and free(id) then take(id, 'fallback') end
  end
end

-- item k of the batch expires k ms after the first, which keeps the batch's order
-- when the annotator asks again
local exp = now + lease_ms
for i = 1, #out, 2 do
  local id = out[i]
  redis.call('ZADD', leases, exp + (i - 1) / 2, id)
  redis.call('HSET', owner, id, annot)
  redis.call('ZADD', mine, exp + (i - 1) / 2, id)
end
if #out > 0 then redis.call('PEXPIRE', mine, lease_ms + #out) end

-- reply with everything the response needs, saving the caller a round trip
local meta = rid ~= '' and redis.call('GET', meta_key) or ''
local reply = {rid, meta or ''}
for i = 1, #out, 2 do
  local id = out[i]
  reply[#reply + 1] = id
  reply[#reply + 1] = out[i + 1]
  reply[#reply + 1] = redis.call('HGET', items, id) or ''
  reply[#reply + 1] = rid ~= '' and redis.call('HGET', info, id) or ''
end
return reply
