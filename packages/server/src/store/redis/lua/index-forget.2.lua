--[[
  index-forget.2: drop a transaction from the admin list and the retention index. Run AFTER its hash was
  deleted (retention) or found gone (expired after Store.FinishedDataExpire). The cron index is left
  alone: only lease.1.lua / index-missing.3.lua remove from it, after a grace period, because a member
  without a transaction may be a creation in flight (reserve.3.lua runs before save-new.1.lua).

  Input:
    KEYS[1] <index>:all   zset
    KEYS[2] <index>:fin   zset
    ARGV[1] gid

  Output:
    'OK'
]]
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 'OK'
