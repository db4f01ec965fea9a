-- Publish a batch of events (one event is a batch of one), in order, atomically.
-- KEYS: meta, trimmed and newest (hashes of earlier versions), log, then per event: its
--       topic's stream, its topic's state, its idempotency key (the stream again without)
-- ARGV: candidate epoch, log length, all-or-nothing ('1': a reused key stores nothing of
--       the batch), count of events, then 8 per event: topic, max events (-1: none),
--       max age ms (0: none), ms the stream lives after its newest event (0: for ever),
--       idempotency window ms (0: no key), fingerprint of the event (hex), data, event
--       type ('' for none, else 'e' followed by it)
-- Returns {epoch or '', the results of the events, separated by spaces}: a new event's
-- 'ms-n', '=' followed by the full id of the event a repeated idempotency key was stored
-- with, or '!' when the key was used with another event (nothing stored for it).
-- All-or-nothing: {'!', index} instead, and nothing is stored.
local meta, old_trimmed, old_newest, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_length, atomic, count = tonumber(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4])

-- First, the idempotency keys, before anything is written: a key stored earlier, or one
-- claimed by an earlier event of this batch, makes the event a repeat (or a refusal).
local repeats, refused, claimed = {}, {}, {}
for i = 1, count do
  local a = 4 + (i - 1) * 8
  if tonumber(ARGV[a + 5]) > 0 then
    local key, print = KEYS[4 + i * 3], ARGV[a + 6]
    local mine = claimed[key]
    if mine then
      if mine[2] == print then repeats[i] = mine[1] else refused[i] = true end
    else
      local stored = redis.call('GET', key)
      if stored then
        local first, stored_print = string.match(stored, '^(%S+) (%x+)$')
        if not first then
          repeats[i] = stored
        elseif stored_print == print then
          repeats[i] = first
        else
          refused[i] = true
        end
      else
        claimed[key] = {i, print}
      end
    end
    if refused[i] and atomic then return {'!', i} end
  end
end

local epoch, ms, n, now = '', 0, 0, 0
local results, topics, order, last = {}, {}, {}, nil
for i = 1, count do
  if refused[i] then
    results[i] = '!'
  elseif repeats[i] then
    results[i] = repeats[i]  -- filled in below when it is an event of this batch
  else
    if last == nil then
      epoch = epoch_of(meta, ARGV[1])
      local clock = redis.call('HMGET', meta, 'ms', 'n', 'll')
      if clock[1] and clock[3] ~= clock[1] .. '-' .. clock[2] then
        -- the previous event is not in the log (published by an older version): readers
        -- must read every stream up to it
        redis.call('HSET', meta, 'lx', clock[1] .. '-' .. clock[2])
      end
      ms, n = tonumber(clock[1]) or 0, tonumber(clock[2]) or 0
      now = now_ms()
      if now > ms then ms, n = now, -1 end
    end
    n = n + 1
    local id = string.format('%d', ms) .. '-' .. string.format('%d', n)
    last = id
    local k, a = 4 + (i - 1) * 3, 4 + (i - 1) * 8
    local stream, state, topic = KEYS[k + 1], KEYS[k + 2], ARGV[a + 1]
    local seen = topics[stream]
    if not seen then
      -- the first event of this topic in the batch: what its history lost before it
      local lifetime = tonumber(ARGV[a + 4])
      if lifetime > 0 and redis.call('EXISTS', stream) == 0 then
        -- the stream expired as a whole (or never was): all of it counts as trimmed
        local expired = lost_upto(state, old_trimmed, old_newest, topic, stream, lifetime, now)
        if expired then redis.call('HSET', state, 't', expired) end
      end
      local old = redis.call('HGET', old_trimmed, topic)
      if old then  -- kept by an earlier version: moved into the topic's state
        local trimmed = redis.call('HGET', state, 't')
        if (not trimmed) or newer(old, trimmed) then redis.call('HSET', state, 't', old) end
        redis.call('HDEL', old_trimmed, topic)
      end
      redis.call('HDEL', old_newest, topic)
      seen = {a = a, state = state}
      topics[stream] = seen
      order[#order + 1] = stream
    end
    seen.newest = id
    local event = ARGV[a + 8]
    if event == '' then
      redis.call('XADD', stream, id, 'd', ARGV[a + 7])
    else
      redis.call('XADD', stream, id, 'd', ARGV[a + 7], 'e', string.sub(event, 2))
    end
    local ttl = tonumber(ARGV[a + 5])
    if ttl > 0 then
      redis.call('SET', KEYS[k + 3], epoch .. '-' .. id .. ' ' .. ARGV[a + 6], 'PX', ttl)
    end
    redis.call('XADD', log, id, 't', topic)
    results[i] = id
  end
end
for i = 1, count do  -- a repeat of an event of this batch: that event's full id
  if type(results[i]) == 'number' then results[i] = epoch .. '-' .. results[results[i]] end
end
for i = 1, count do
  if repeats[i] and results[i] ~= '!' then results[i] = '=' .. results[i] end
end
if last == nil then return {'', table.concat(results, ' ')} end

redis.call('HSET', meta, 'ms', string.format('%d', ms), 'n', string.format('%d', n), 'll', last)
local excess = redis.call('XLEN', log) - log_length
if excess > 0 then
  local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', excess)
  redis.call('XTRIM', log, 'MAXLEN', log_length)
  redis.call('HSET', meta, 'lt', oldest[#oldest][1])
end

for _, stream in ipairs(order) do
  local seen = topics[stream]
  local a, state = seen.a, seen.state
  local removed = expire(stream, tonumber(ARGV[a + 3]), ms)
  local max_events = tonumber(ARGV[a + 2])
  if max_events >= 0 then
    local extra = redis.call('XLEN', stream) - max_events
    if extra > 0 then
      local trimmed = redis.call('XRANGE', stream, '-', '+', 'COUNT', extra)
      removed = trimmed[#trimmed][1]
      redis.call('XTRIM', stream, 'MAXLEN', max_events)
    end
  end
  if removed then redis.call('HSET', state, 't', removed) end
  local lifetime = tonumber(ARGV[a + 4])
  if lifetime > 0 then
    -- Once no event is younger than max_age, or none came for idle_ttl, the whole stream
    -- goes; the newest id is kept so that a resume from before it is reported as a gap,
    -- and the state goes too, a little later (by the clock of the ids, which may run ahead
    -- of Redis' own: once it is gone, every event of the topic is older than the horizon).
    redis.call('HSET', state, 'n', seen.newest)
    redis.call('PEXPIRE', stream, lifetime)
    redis.call('PEXPIREAT', state, ms + lifetime + STATE_GRACE_MS)
  else
    redis.call('PERSIST', state)
  end
end
return {epoch, table.concat(results, ' ')}
