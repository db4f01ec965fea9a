-- The history this process read from is gone (wiped, or it lost writes): start a new epoch
-- unless another process already did.
-- KEYS: meta; ARGV: the epoch that is over ('' if none was known), candidate epoch
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if (not epoch) or epoch == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
  return ARGV[2]
end
return epoch
