-- KEYS: meta, trimmed and newest (hashes of earlier versions), then per topic: its stream
--       and its state
-- ARGV: candidate epoch, epoch of the last id ('' when none), last id, then per topic:
--       topic, max age ms (0: none), lifetime ms (0: for ever)
-- Returns {epoch, head, status, gapped topic indexes, indexes of topics with missed events}
-- (1-based). The events themselves are read page by page with REPLAY_PAGE: this script
-- costs a few commands per topic, whatever the client missed.
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n')
local head = (clock[1] or '0') .. '-' .. (clock[2] or '0')
if ARGV[2] ~= epoch then return {epoch, head, 'epoch'} end
local last = ARGV[3]
if newer(last, head) then return {epoch, head, 'future'} end
local now = now_ms()
local expire_now = math.max(now, tonumber(clock[1] or '0'))
local gaps, missed = {}, {}
for j = 1, (#KEYS - 3) / 2 do
  local stream, state = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local topic, lifetime = ARGV[1 + 3 * j], tonumber(ARGV[3 + 3 * j])
  local removed = expire(stream, tonumber(ARGV[2 + 3 * j]), expire_now)
  if removed then note_trimmed(state, stream, removed) end
  local lost = lost_upto(state, KEYS[2], KEYS[3], topic, stream, lifetime, now)
  if lost and newer(lost, last) then
    gaps[#gaps + 1] = j
  elseif #redis.call('XRANGE', stream, '(' .. last, head, 'COUNT', 1) > 0 then
    missed[#missed + 1] = j
  end
end
return {epoch, head, 'ok', gaps, missed}
