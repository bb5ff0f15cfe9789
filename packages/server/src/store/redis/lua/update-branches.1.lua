--[[
  update-branches.1: record branch results while the global status is the expected one (spec §8.2: a
  forceStop or another instance finishing the transaction makes the write fail, which ends the pass).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry
    ARGV[2] the status the transaction must have
    ARGV[3] the branches, packed as in save-new.1.lua, 3 values each:
            the marker u:<len>:<branch_id>:<op> of the branch, its id, the new value of s<id>
            A branch is written only when its marker points at that id, so a branch of another
            transaction, or a stale id, never overwrites anything.

  Output:
    'OK'
    'NOT_FOUND'  the transaction is missing or has another status; nothing was written
]]
--@include unpacked
--@include hash

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
hset_all(key, set)
set_ttl(key, ARGV[1])
return 'OK'
