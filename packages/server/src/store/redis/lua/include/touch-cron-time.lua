--@include hash
--@include status
-- touch_cron_time(): the write of touch-cron-time.1.lua (its header says KEYS[1]
-- and ARGV); returns the next_cron_time the transaction had before, or false with nothing written.
local function touch_cron_time()
  local key = KEYS[1]
  local before = cron_if_status(key, ARGV[2])
  if not before then
    return false
  end
  redis.call('HSET', key, 'next_cron_time', ARGV[3], 'next_cron_interval', ARGV[4], 'update_time', ARGV[5])
  if ARGV[7] == '1' then
    redis.call('HSET', key, 'failed_attempts', '0')
  end
  set_ttl(key, ARGV[1])
  return before
end
