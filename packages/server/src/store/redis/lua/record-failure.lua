--[[
  record-failure: one failed attempt, atomically, while the status is the expected one (a silent no-op
  otherwise, like touch-cron-time.lua): the backed-off next_cron_time / interval, failed_attempts, last_error
  and update_time of the transaction, and (when given) the branch's state with its attempt record.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.lua)
    KEYS[2]  only when every key shares one hash slot: <index>:due, moved here in the same step
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry
    ARGV[2] the status the transaction must have
    ARGV[3] next_cron_time (epoch ms)
    ARGV[4] next_cron_interval (s)
    ARGV[5] now (epoch ms): the new update_time
    ARGV[6] gid (for the index, with KEYS[2])
    ARGV[7] failed_attempts
    ARGV[8] last_error
    ARGV[9] the branch's marker u:<len>:<branch_id>:<op>, '' for none (the msg back-check)
    ARGV[10] the branch's id
    ARGV[11] the new value of s<id> (packed state with the attempt record)

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    false (nil)  nothing was written
]]
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'next_cron_time')
if row[1] ~= ARGV[2] then
  return false
end
local before = row[2] or ''
redis.call('HSET', key, 'next_cron_time', ARGV[3], 'next_cron_interval', ARGV[4], 'update_time', ARGV[5],
  'failed_attempts', ARGV[7], 'last_error', ARGV[8])
if ARGV[9] ~= '' and redis.call('HGET', key, ARGV[9]) == ARGV[10] then
  redis.call('HSET', key, 's' .. ARGV[10], ARGV[11])
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
if #KEYS > 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
end
return before
