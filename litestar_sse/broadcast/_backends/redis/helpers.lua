-- Functions the other scripts share: loaded in front of each (see scripts.py).
local function epoch_of(meta, candidate)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = candidate
    redis.call('HSET', meta, 'epoch', epoch)
  end
  return epoch
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function newer(x, y)
  local xa, xb = string.match(x, '^(%d+)-(%d+)$')
  local ya, yb = string.match(y, '^(%d+)-(%d+)$')
  xa, xb, ya, yb = tonumber(xa), tonumber(xb), tonumber(ya), tonumber(yb)
  return xa > ya or (xa == ya and xb > yb)
end

local STATE_GRACE_MS = __STATE_GRACE_MS__  -- scripts.STATE_GRACE_MS, filled in when loaded

-- Remove entries older than max_age ms; return the id of the newest removed, or false.
local function expire(stream, max_age, now)
  if max_age <= 0 then return false end
  local min_id = string.format('%d', now - max_age) .. '-0'
  local old = redis.call('XREVRANGE', stream, '(' .. min_id, '-', 'COUNT', 1)
  if #old == 0 then return false end
  redis.call('XTRIM', stream, 'MINID', min_id)
  return old[1][1]
end

-- The id of the newest event of a topic missing from its history, or false: what was
-- trimmed, or, when the stream expired as a whole, its newest event; once even the topic's
-- state expired, the horizon before which it may have had events. old_trimmed and
-- old_newest: the hashes of earlier versions (read only). lifetime: ms the stream lives
-- after its newest event (0: for ever).
local function lost_upto(state, old_trimmed, old_newest, topic, stream, lifetime, now)
  local trimmed = redis.call('HGET', state, 't')
  local old = redis.call('HGET', old_trimmed, topic)
  if old and ((not trimmed) or newer(old, trimmed)) then trimmed = old end
  if redis.call('EXISTS', stream) == 0 then
    local newest = redis.call('HGET', state, 'n') or redis.call('HGET', old_newest, topic)
    if newest then return newest end
    if lifetime > 0 then
      local horizon = math.max(0, now - lifetime - STATE_GRACE_MS + 1)
      return string.format('%d', horizon) .. '-0'
    end
  end
  return trimmed or false
end

-- Note that the history of a topic lost the events up to id (not in the stream any more).
local function note_trimmed(state, stream, id)
  redis.call('HSET', state, 't', id)
  if redis.call('PTTL', state) == -1 then
    -- a state made here for a stream of an earlier version: it expires with the stream
    local ttl = redis.call('PTTL', stream)
    if ttl > 0 then redis.call('PEXPIRE', state, ttl + STATE_GRACE_MS) end
  end
end
