--[[
  claim-reset: the index half of resetCronTime (spec §2.10). Moves up to `limit` members scheduled
  strictly after `after` to `now`, lowest first. Lowering the index before the transactions keeps the
  index never later than the truth; reset-cron.lua then moves each transaction itself.

  Input:
    KEYS[1] <index>:due   zset   member gid, score next_cron_time (epoch ms)
    ARGV[1] after (epoch ms, exclusive)
    ARGV[2] now (epoch ms): the new score
    ARGV[3] limit
    ARGV[4..] gids to pass over (members this resetCronTime already looked at and put back)

  Output:
    { gid1, old_score1, gid2, old_score2, ... }  the members moved and the scores they had
]]
local limit = tonumber(ARGV[3])
local skip = {}
for i = 4, #ARGV do
  skip[ARGV[i]] = true
end
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, limit + #ARGV - 3)
local picked = {}
for i = 1, #later, 2 do
  if #picked >= 2 * limit then break end
  if not skip[later[i]] then
    redis.call('ZADD', KEYS[1], ARGV[2], later[i])
    picked[#picked + 1] = later[i]
    picked[#picked + 1] = later[i + 1]
  end
end
return picked
