--[[
  lease.1: the transaction half of lockDue (spec §7.3). claim-due.1.lua has already moved the index score
  to lease_until; this script checks the transaction itself — the truth — and leases it.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value: it is unfinished)
    ARGV[2] due_before (epoch ms): lease only when next_cron_time < due_before
    ARGV[3] lease_until (epoch ms): the new next_cron_time
    ARGV[4] owner
    ARGV[5] now (epoch ms): the new update_time

  Output, a list whose first element says what happened:
    { 'LEASED', <the global fields, in the order of GLOBAL_FIELDS in redis-store.ts> }
    { 'MISSING' }                       no such transaction (expired, or its creation is in flight)
    { 'FINISHED', update_time }         succeed / failed: the index entry is stale
    { 'NOTDUE', next_cron_time }        the index was early (a hint, never later than the truth)
]]
--@include status
--@include hash
local key = KEYS[1]
local row, answer = unfinished_row(key)
if not row then
  return answer
end
if tonumber(row[2]) >= tonumber(ARGV[2]) then
  return { 'NOTDUE', row[2] }
end
redis.call('HSET', key, 'owner', ARGV[4], 'next_cron_time', ARGV[3], 'update_time', ARGV[5])
set_ttl(key, ARGV[1])
local g = redis.call('HMGET', key, 'id', 'g', 'status', 'update_time', 'finish_time', 'rollback_time',
  'next_cron_interval', 'next_cron_time', 'owner', 'result', 'rollback_reason', 'failed_attempts', 'last_error',
  'stuck_alerted')
local out = { 'LEASED' }
for k = 1, #g do
  out[k + 1] = g[k] or ''
end
return out
