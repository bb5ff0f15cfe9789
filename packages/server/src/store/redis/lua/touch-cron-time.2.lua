--[[
  touch-cron-time.2: touch-cron-time.1.lua (ARGV and output the same) for a deployment whose keys all share one hash slot:
  the script also moves the due index, so index-cas.1.lua is not used.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    KEYS[2] <index>:due        zset   member gid, score next_cron_time
]]
--@include touch-cron-time
local before = touch_cron_time()
if before then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
end
return before
