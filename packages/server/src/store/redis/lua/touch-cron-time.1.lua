--[[
  touch-cron-time.1: move next_cron_time / next_cron_interval while the status is the expected one
  (spec §7.2); a silent no-op otherwise, as in the SQL stores.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    (touch-cron-time.2.lua takes the due index too, for a deployment whose keys share one hash slot)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry (the store's value while unfinished)
    ARGV[2] the status the transaction must have
    ARGV[3] next_cron_time (epoch ms)
    ARGV[4] next_cron_interval (s)
    ARGV[5] now (epoch ms): the new update_time
    ARGV[6] gid (used by touch-cron-time.2.lua)
    ARGV[7] '1': also failed_attempts = 0 (the first success after failures); '' otherwise

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    false (nil)  nothing was written: the transaction is missing or has another status
]]
--@include touch-cron-time
return touch_cron_time()
