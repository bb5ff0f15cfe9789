-- set_ttl(key, ttl): the hash expires after ttl seconds, or never when ttl is 0 (every write of a
-- transaction sets it: an unfinished transaction never expires, a finished one after FinishedDataExpire).
local function set_ttl(key, ttl)
  ttl = tonumber(ttl)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
end

-- hset_all(key, fields): HSET of field, value, field, value, ... in chunks (unpack() of a very long table
-- overflows Lua's C stack).
local function hset_all(key, fields)
  for s = 1, #fields, 400 do
    redis.call('HSET', key, unpack(fields, s, math.min(s + 399, #fields)))
  end
end
