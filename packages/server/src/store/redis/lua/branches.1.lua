--[[
  branches.1: read every branch of a transaction, in insertion order, without the global fields.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)

  Output:
    { b1, s1, b2, s2, ... }   the values of fields b<i> and s<i> of every branch (packed, see
                              save-new.1.lua); {} when the transaction is missing or has none
]]
local key = KEYS[1]
local n = tonumber(redis.call('HGET', key, 'branches') or '0')
local out = {}
for first = 1, n, 500 do
  local names = {}
  for i = first, math.min(first + 499, n) do
    names[#names + 1] = 'b' .. i
    names[#names + 1] = 's' .. i
  end
  local r = redis.call('HMGET', key, unpack(names))
  for k = 1, #r do
    out[#out + 1] = r[k] or ''
  end
end
return out
