--[[
  insert-branches: append branches to a transaction (registerBranch) while its status is the expected one.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value while unfinished)
    ARGV[2] the status the transaction must have
    ARGV[3] the branches, packed as in save-new.lua, 2 values each: the value of b<i>, of s<i>

  Output:
    the id (position, 1-based) of the first inserted branch; the others follow it
    'NOT_FOUND'        the transaction is missing or has another status; nothing was written
    'UNIQUE_CONFLICT'  a (branch_id, op) of the batch exists already or twice in the batch;
                       nothing was written
]]
local function unpacked(s, limit)
  local out, pos, n = {}, 1, #s
  while pos <= n and (not limit or #out < limit) do
    local colon = string.find(s, ':', pos, true)
    local len = tonumber(string.sub(s, pos, colon - 1))
    out[#out + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end

local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'branches')
if row[1] ~= ARGV[2] then
  return 'NOT_FOUND'
end
local b = unpacked(ARGV[3])

local markers = {}
local seen = {}
for i = 1, #b, 2 do
  local head = unpacked(b[i], 2)
  local u = 'u:' .. #head[1] .. ':' .. head[1] .. ':' .. head[2]
  if seen[u] or redis.call('HEXISTS', key, u) == 1 then
    return 'UNIQUE_CONFLICT'
  end
  seen[u] = true
  markers[#markers + 1] = u
end

local first = tonumber(row[2] or '0') + 1
local fields = { 'branches', first - 1 + #b / 2 }
for i = 1, #b, 2 do
  local k = (i + 1) / 2
  local n = first - 1 + k
  fields[#fields + 1] = 'b' .. n
  fields[#fields + 1] = b[i]
  fields[#fields + 1] = 's' .. n
  fields[#fields + 1] = b[i + 1]
  fields[#fields + 1] = markers[k]
  fields[#fields + 1] = n
end
for s = 1, #fields, 400 do
  redis.call('HSET', key, unpack(fields, s, math.min(s + 399, #fields)))
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
return first
