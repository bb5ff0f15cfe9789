--[[
  claim-stuck-alert.1: set stuck_alerted once, while the status is the expected one, so that exactly one
  coordinator sends a transaction's stuck alert.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] the status the transaction must have

  Output:
    1  this call set it
    0  the transaction is missing, has another status, or the flag was set already
]]
local row = redis.call('HMGET', KEYS[1], 'status', 'stuck_alerted')
if row[1] ~= ARGV[1] or row[2] == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'stuck_alerted', '1')
return 1
