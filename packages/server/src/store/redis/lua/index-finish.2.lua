--[[
  index-finish.2: a transaction reached succeed or failed. Run AFTER its own hash says so: the cron no
  longer needs it, and retention finds it by its update_time.

  Input:
    KEYS[1] <index>:due   zset   member gid, score next_cron_time
    KEYS[2] <index>:fin   zset   member gid, score update_time of the finish (epoch ms)
    ARGV[1] gid
    ARGV[2] update_time (epoch ms)

  Output:
    'OK'
]]
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 'OK'
