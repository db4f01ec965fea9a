-- KEYS: trimmed and newest (hashes of earlier versions), then per topic: its stream and its
--       state
-- ARGV: head id, bytes per topic, then per topic: topic, cursor (the last id replayed),
--       count, lifetime ms (0: for ever)
-- Returns per topic: 0 when events after the cursor left the history (a gap), else
-- {more, entries}: up to count entries after the cursor and at or before the head, no more
-- than the bytes per topic (at least one), and more = 1 when the stream may hold others
local head, budget = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for j = 1, (#KEYS - 2) / 2 do
  local stream, state = KEYS[1 + 2 * j], KEYS[2 + 2 * j]
  local topic, cursor = ARGV[4 * j - 1], ARGV[4 * j]
  local count, lifetime = tonumber(ARGV[4 * j + 1]), tonumber(ARGV[4 * j + 2])
  local lost = lost_upto(state, KEYS[1], KEYS[2], topic, stream, lifetime, now)
  if lost and newer(lost, cursor) then
    out[#out + 1] = 0
  else
    local entries = redis.call('XRANGE', stream, '(' .. cursor, head, 'COUNT', count)
    local kept, size = {}, 0
    for _, entry in ipairs(entries) do
      local bytes = #entry[1]
      for _, value in ipairs(entry[2]) do bytes = bytes + #value end
      if #kept > 0 and size + bytes > budget then break end
      kept[#kept + 1] = entry
      size = size + bytes
    end
    local more = (#kept < #entries or #entries == count) and 1 or 0
    out[#out + 1] = {more, kept}
  end
end
return out
