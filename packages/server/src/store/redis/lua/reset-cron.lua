--[[
  reset-cron: the transaction half of resetCronTime (spec §2.10): make an unfinished transaction
  scheduled strictly after `after` due now.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value: it is unfinished)
    ARGV[2] after (epoch ms, exclusive)
    ARGV[3] now (epoch ms): the new next_cron_time and update_time

  Output:
    { 'RESET' }
    { 'MISSING' }
    { 'FINISHED', update_time }
    { 'NOTDUE', next_cron_time }   not scheduled after `after`: nothing written
]]
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'next_cron_time', 'update_time')
local status = row[1]
if not status then
  return { 'MISSING' }
end
if status ~= 'prepared' and status ~= 'submitted' and status ~= 'aborting' then
  return { 'FINISHED', row[3] or '0' }
end
if tonumber(row[2]) <= tonumber(ARGV[2]) then
  return { 'NOTDUE', row[2] }
end
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'update_time', ARGV[3])
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
return { 'RESET' }
