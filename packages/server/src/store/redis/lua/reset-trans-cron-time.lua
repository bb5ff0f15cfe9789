--[[
  reset-trans-cron-time: next_cron_time = update_time = now for one transaction, whatever its status
  (spec §2.4 resetNextCronTime).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    ARGV[1] TTL in seconds while unfinished; 0 = no expiry (the store's value)
    ARGV[2] TTL in seconds once finished (Store.FinishedDataExpire); 0 = no expiry
    ARGV[3] now (epoch ms)

  Output:
    the status of the transaction
    'NOT_FOUND'  no such transaction
]]
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status then
  return 'NOT_FOUND'
end
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'update_time', ARGV[3])
local ttl = tonumber(ARGV[1])
if status == 'succeed' or status == 'failed' then ttl = tonumber(ARGV[2]) end
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
return status
