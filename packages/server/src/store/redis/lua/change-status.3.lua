--[[
  change-status.3: change-status.1.lua (ARGV and output the same) for a deployment whose keys all share
  one hash slot: the script also moves the transaction between the indexes, so index-finish.2.lua and
  index-cas.1.lua are not used.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    KEYS[2] <index>:due        zset   member gid, score next_cron_time (unfinished transactions)
    KEYS[3] <index>:fin        zset   member gid, score update_time of the finish (finished ones)
]]
--@include change-status
--@include status
local before = change_status()
if before ~= 'NOT_FOUND' then
  local gid = ARGV[11]
  if is_finished(ARGV[3]) then
    redis.call('ZREM', KEYS[2], gid)
    redis.call('ZADD', KEYS[3], ARGV[4], gid)
  elseif ARGV[9] ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[9], gid)
  end
end
return before
