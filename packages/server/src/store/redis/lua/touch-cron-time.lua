--[[
  touch-cron-time: move next_cron_time / next_cron_interval while the status is the expected one
  (spec §7.2); a silent no-op otherwise, as in the SQL stores.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    KEYS[2]  only when every key shares one hash slot (see save-new.lua): <index>:due, moved here
             in the same step (index-cas.lua is then not used)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value while unfinished)
    ARGV[2] the status the transaction must have
    ARGV[3] next_cron_time (epoch ms)
    ARGV[4] next_cron_interval (s)
    ARGV[5] now (epoch ms): the new update_time
    ARGV[6] gid (for the index, with KEYS[2])
    ARGV[7] '1': also failed_attempts = 0 (the first success after failures); '' otherwise

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    false (nil)  nothing was written: the transaction is missing or has another status
]]
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'next_cron_time')
if row[1] ~= ARGV[2] then
  return false
end
local before = row[2] or ''
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'next_cron_interval', ARGV[4], 'update_time', ARGV[5])
if ARGV[7] == '1' then
  redis.call('HSET', key, 'failed_attempts', '0')
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
if #KEYS > 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
end
return before
