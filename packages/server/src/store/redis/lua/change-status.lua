--[[
  change-status: compare-and-set of the global status, with the columns that go with the move.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    KEYS[2..3]  only when every key shares one hash slot (see save-new.lua): <index>:due,
                <index>:fin. The script then moves the transaction between the indexes itself, and
                index-finish.lua / index-cas.lua are not used.
    ARGV[1] TTL in seconds to set on the hash: Store.FinishedDataExpire when moving to succeed or
            failed, 0 otherwise; 0 = no expiry (an unfinished transaction never expires)
    ARGV[2] from: the status the transaction must have
    ARGV[3] to
    ARGV[4] now (epoch ms): the new update_time
    ARGV[5] rollback_reason, '' = keep
    ARGV[6] result, '' = keep
    ARGV[7] finish_time, '' = keep
    ARGV[8] rollback_time, '' = keep
    ARGV[9] next_cron_time, '' = keep
    ARGV[10] next_cron_interval, '' = keep
    ARGV[11] gid (for the indexes, with KEYS[2..3])

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    'NOT_FOUND'  the transaction is missing or has another status (the CAS lost); nothing was written
]]
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'next_cron_time')
if row[1] ~= ARGV[2] then
  return 'NOT_FOUND'
end
local before = row[2] or ''
local fields = { 'status', ARGV[3], 'update_time', ARGV[4] }
local optional = {
  { 'rollback_reason', ARGV[5] },
  { 'result', ARGV[6] },
  { 'finish_time', ARGV[7] },
  { 'rollback_time', ARGV[8] },
  { 'next_cron_time', ARGV[9] },
  { 'next_cron_interval', ARGV[10] },
}
for _, fv in ipairs(optional) do
  if fv[2] ~= '' then
    fields[#fields + 1] = fv[1]
    fields[#fields + 1] = fv[2]
  end
end
redis.call('HSET', key, unpack(fields))
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end

if #KEYS > 1 then
  local gid = ARGV[11]
  if ARGV[3] == 'succeed' or ARGV[3] == 'failed' then
    redis.call('ZREM', KEYS[2], gid)
    redis.call('ZADD', KEYS[3], ARGV[4], gid)
  elseif ARGV[9] ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[9], gid)
  end
end
return before
