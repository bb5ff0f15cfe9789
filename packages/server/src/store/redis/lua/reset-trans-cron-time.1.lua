--[[
  reset-trans-cron-time.1: next_cron_time = update_time = now for one transaction, whatever its status
  (spec §2.4 resetNextCronTime).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds while unfinished; 0 = no expiry (the store's value)
    ARGV[2] TTL in seconds once finished (Store.FinishedDataExpire); 0 = no expiry
    ARGV[3] now (epoch ms)

  Output:
    the status of the transaction
    'NOT_FOUND'  no such transaction
]]
--@include status
--@include hash
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status then
  return 'NOT_FOUND'
end
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'update_time', ARGV[3])
set_ttl(key, is_finished(status) and ARGV[2] or ARGV[1])
return status
