--@include hash
--@include status
-- record_failure(): the write of record-failure.1.lua (its header says KEYS[1]
-- and ARGV); returns the next_cron_time the transaction had before, or false with nothing written.
local function record_failure()
  local key = KEYS[1]
  local before = cron_if_status(key, ARGV[2])
  if not before then
    return false
  end
  redis.call('HSET', key, 'next_cron_time', ARGV[3], 'next_cron_interval', ARGV[4], 'update_time', ARGV[5],
    'failed_attempts', ARGV[7], 'last_error', ARGV[8])
  if ARGV[9] ~= '' and redis.call('HGET', key, ARGV[9]) == ARGV[10] then
    redis.call('HSET', key, 's' .. ARGV[10], ARGV[11])
  end
  set_ttl(key, ARGV[1])
  return before
end
