--[[
  insert-branches.1: append branches to a transaction (registerBranch) while its status is the expected one.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value while unfinished)
    ARGV[2] the status the transaction must have
    ARGV[3] the branches, packed as in save-new.1.lua, 2 values each: the value of b<i>, of s<i>

  Output:
    the id (position, 1-based) of the first inserted branch; the others follow it
    'NOT_FOUND'        the transaction is missing or has another status; nothing was written
    'UNIQUE_CONFLICT'  a (branch_id, op) of the batch exists already or twice in the batch;
                       nothing was written
]]
--@include branch-fields
--@include hash
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'branches')
if row[1] ~= ARGV[2] then
  return 'NOT_FOUND'
end
local b = unpacked(ARGV[3])
local markers = branch_markers(key, b, true)
if not markers then
  return 'UNIQUE_CONFLICT'
end
local first = tonumber(row[2] or '0') + 1
local fields = { 'branches', first - 1 + #b / 2 }
add_branch_fields(fields, b, markers, first)
hset_all(key, fields)
set_ttl(key, ARGV[1])
return first
