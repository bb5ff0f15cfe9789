--[[
  save-new.5: save-new.1.lua for a deployment whose keys all share one hash slot (a prefix with a hash
  tag, such as DTM's default {a}): the script also takes the id and indexes the transaction, atomically,
  so reserve.3.lua and index-finish.2.lua are not used. The hash layout, ARGV and output are those of
  save-new.1.lua (ARGV[2] is '': the id is taken here).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction
    KEYS[2] <index>:seq        string the id counter
    KEYS[3] <index>:all        zset   member gid, score id
    KEYS[4] <index>:due        zset   member gid, score next_cron_time (unfinished transactions)
    KEYS[5] <index>:fin        zset   member gid, score update_time of the finish (finished ones)
]]
--@include save-new
return save_new(function(gid)
  -- the id a crashed creation left in the admin index, or a new one
  return redis.call('ZSCORE', KEYS[3], gid) or redis.call('INCR', KEYS[2])
end, function(gid, id, col)
  redis.call('ZADD', KEYS[3], id, gid)
  if is_finished(col['status']) then
    redis.call('ZREM', KEYS[4], gid)
    redis.call('ZADD', KEYS[5], col['update_time'], gid)
  else
    redis.call('ZADD', KEYS[4], col['next_cron_time'], gid)
    redis.call('ZREM', KEYS[5], gid)
  end
end)
