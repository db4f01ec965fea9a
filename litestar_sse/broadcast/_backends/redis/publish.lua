-- KEYS: meta, trimmed and newest (hashes of earlier versions), stream, log, state,
--       idempotency key (when ARGV[6] > 0)
-- ARGV: candidate epoch, max events (-1: none), max age ms (0: none), topic, log length,
--       idempotency window ms (0: no key), ms the stream lives after this event (0: for
--       ever), fingerprint of the event (hex; '' without a key), fields...
-- Returns {epoch, id}, or {'', full id of the event} when the idempotency key was used for
-- the same event, or {'!', full id} when it was used for another one (nothing stored)
local idempotency_ms = tonumber(ARGV[6])
if idempotency_ms > 0 then
  local stored = redis.call('GET', KEYS[7])
  if stored then
    local first, print = string.match(stored, '^(%S+) (%x+)$')
    if not first then return {'', stored} end
    if print ~= ARGV[8] then return {'!', first} end
    return {'', first}
  end
end
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n', 'll')
if clock[1] and clock[3] ~= clock[1] .. '-' .. clock[2] then
  -- the previous event is not in the log (published by an older version): readers must
  -- read every stream up to it
  redis.call('HSET', KEYS[1], 'lx', clock[1] .. '-' .. clock[2])
end
local ms, n = tonumber(clock[1]) or 0, tonumber(clock[2]) or 0
local now = now_ms()
if now > ms then ms, n = now, 0 else n = n + 1 end
local ms_text, n_text = string.format('%d', ms), string.format('%d', n)
local id = ms_text .. '-' .. n_text
redis.call('HSET', KEYS[1], 'ms', ms_text, 'n', n_text, 'll', id)
local topic, state, lifetime = ARGV[4], KEYS[6], tonumber(ARGV[7])
if lifetime > 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  -- the stream expired as a whole (or never was): all of it counts as trimmed
  local expired = lost_upto(state, KEYS[2], KEYS[4], topic, KEYS[3], lifetime, now)
  if expired then redis.call('HSET', state, 't', expired) end
end
local old = redis.call('HGET', KEYS[2], topic)
if old then  -- kept by an earlier version: moved into the topic's state
  local trimmed = redis.call('HGET', state, 't')
  if (not trimmed) or newer(old, trimmed) then redis.call('HSET', state, 't', old) end
  redis.call('HDEL', KEYS[2], topic)
end
redis.call('HDEL', KEYS[4], topic)
redis.call('XADD', KEYS[3], id, unpack(ARGV, 9))
if idempotency_ms > 0 then
  redis.call('SET', KEYS[7], epoch .. '-' .. id .. ' ' .. ARGV[8], 'PX', idempotency_ms)
end
redis.call('XADD', KEYS[5], id, 't', topic)
if redis.call('XLEN', KEYS[5]) > tonumber(ARGV[5]) then
  local oldest = redis.call('XRANGE', KEYS[5], '-', '+', 'COUNT', 1)[1][1]
  redis.call('XDEL', KEYS[5], oldest)
  redis.call('HSET', KEYS[1], 'lt', oldest)
end

local removed = expire(KEYS[3], tonumber(ARGV[3]), ms)
local max_events = tonumber(ARGV[2])
if max_events >= 0 then
  local excess = redis.call('XLEN', KEYS[3]) - max_events
  if excess > 0 then
    local trimmed = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', excess)
    removed = trimmed[#trimmed][1]
    redis.call('XTRIM', KEYS[3], 'MAXLEN', max_events)
  end
end
if removed then redis.call('HSET', state, 't', removed) end
if lifetime > 0 then
  -- Once no event is younger than max_age, or none came for idle_ttl, the whole stream
  -- goes; the newest id is kept so that a resume from before it is reported as a gap,
  -- and the state goes too, a little later (by the clock of the ids, which may run ahead
  -- of Redis' own: once it is gone, every event of the topic is older than the horizon).
  redis.call('HSET', state, 'n', id)
  redis.call('PEXPIRE', KEYS[3], lifetime)
  redis.call('PEXPIREAT', state, ms + lifetime + STATE_GRACE_MS)
else
  redis.call('PERSIST', state)
end
return {epoch, id}
