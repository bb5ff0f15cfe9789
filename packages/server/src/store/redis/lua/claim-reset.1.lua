--[[
  claim-reset.1: the index half of resetCronTime (spec §2.10). Moves up to `limit` members scheduled
  strictly after `after` to `now`, lowest first. Lowering the index before the transactions keeps the
  index never later than the truth; reset-cron.1.lua then moves each transaction itself.

  Input:
    KEYS[1] <index>:due   zset   member gid, score next_cron_time (epoch ms)
    ARGV[1] after (epoch ms, exclusive)
    ARGV[2] now (epoch ms): the new score
    ARGV[3] limit
    ARGV[4..] gids to pass over (members this resetCronTime already looked at and put back)

  Output:
    { gid1, old_score1, gid2, old_score2, ... }  the members moved and the scores they had
]]
--@include claim
local limit = tonumber(ARGV[3])
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, limit + #ARGV - 3)
return claim(KEYS[1], later, limit, ARGV[2])
