--[[
  reset-cron.1: the transaction half of resetCronTime (spec §2.10): make an unfinished transaction
  scheduled strictly after `after` due now.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value: it is unfinished)
    ARGV[2] after (epoch ms, exclusive)
    ARGV[3] now (epoch ms): the new next_cron_time and update_time

  Output:
    { 'RESET' }
    { 'MISSING' }
    { 'FINISHED', update_time }
    { 'NOTDUE', next_cron_time }   not scheduled after `after`: nothing written
]]
--@include status
--@include hash
local key = KEYS[1]
local row, answer = unfinished_row(key)
if not row then
  return answer
end
if tonumber(row[2]) <= tonumber(ARGV[2]) then
  return { 'NOTDUE', row[2] }
end
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'update_time', ARGV[3])
set_ttl(key, ARGV[1])
return { 'RESET' }
