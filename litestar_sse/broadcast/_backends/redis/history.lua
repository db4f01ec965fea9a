-- KEYS: meta, trimmed and newest (hashes of earlier versions), then per topic: its stream
--       and its state
-- ARGV: candidate epoch, epoch of the id to read after ('': read from the oldest, no gap
--       checks), id to read after, epoch of the id to read up to ('': the newest), that id,
--       most entries per topic, then per topic: topic, max age ms (0: none), lifetime ms
--       (0: for ever)
-- Returns {epoch, head, status, gapped topic indexes (1-based), entries of the other topics}
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n')
local head = (clock[1] or '0') .. '-' .. (clock[2] or '0')
local checked = ARGV[2] ~= ''
if (checked and ARGV[2] ~= epoch) or (ARGV[4] ~= '' and ARGV[4] ~= epoch) then
  return {epoch, head, 'epoch'}
end
local last = ARGV[3]
if newer(last, head) then return {epoch, head, 'future'} end
local upto = ARGV[5]
if upto == '' or newer(upto, head) then upto = head end
local count = tonumber(ARGV[6])
local now = now_ms()
local expire_now = math.max(now, tonumber(clock[1] or '0'))
local gaps, ranges = {}, {}
for j = 1, (#KEYS - 3) / 2 do
  local stream, state = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local topic, lifetime = ARGV[3 * j + 4], tonumber(ARGV[3 * j + 6])
  local removed = expire(stream, tonumber(ARGV[3 * j + 5]), expire_now)
  if removed then note_trimmed(state, stream, removed) end
  local lost = checked and lost_upto(state, KEYS[2], KEYS[3], topic, stream, lifetime, now)
  if lost and newer(lost, last) then
    gaps[#gaps + 1] = j
  elseif newer(upto, last) then
    ranges[#ranges + 1] = redis.call('XRANGE', stream, '(' .. last, upto, 'COUNT', count)
  else
    ranges[#ranges + 1] = {}
  end
end
return {epoch, head, 'ok', gaps, ranges}
