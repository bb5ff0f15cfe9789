--[[
  update-branches: record branch results while the global status is the expected one (spec §8.2: a
  forceStop or another instance finishing the transaction makes the write fail, which ends the pass).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry
    ARGV[2] the status the transaction must have
    ARGV[3] the branches, packed as in save-new.lua, 3 values each:
            the marker u:<len>:<branch_id>:<op> of the branch, its id, the new value of s<id>
            A branch is written only when its marker points at that id, so a branch of another
            transaction, or a stale id, never overwrites anything.

  Output:
    'OK'
    'NOT_FOUND'  the transaction is missing or has another status; nothing was written
]]
local function unpacked(s)
  local out, pos, n = {}, 1, #s
  while pos <= n do
    local colon = string.find(s, ':', pos, true)
    local len = tonumber(string.sub(s, pos, colon - 1))
    out[#out + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end

local key = KEYS[1]
local b = unpacked(ARGV[3])
-- one read for the status and the marker of every addressed branch
local wanted = { 'status' }
for i = 1, #b, 3 do
  wanted[#wanted + 1] = b[i]
end
local row = {}
for s = 1, #wanted, 1000 do -- in chunks: unpack() of a very long table overflows Lua's C stack
  local part = redis.call('HMGET', key, unpack(wanted, s, math.min(s + 999, #wanted)))
  for _, v in ipairs(part) do
    row[#row + 1] = v
  end
end
if row[1] ~= ARGV[2] then
  return 'NOT_FOUND'
end
local set = {}
for i = 1, #b, 3 do
  if row[1 + (i + 2) / 3] == b[i + 1] then
    set[#set + 1] = 's' .. b[i + 1]
    set[#set + 1] = b[i + 2]
  end
end
for s = 1, #set, 400 do
  redis.call('HSET', key, unpack(set, s, math.min(s + 399, #set)))
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
return 'OK'
