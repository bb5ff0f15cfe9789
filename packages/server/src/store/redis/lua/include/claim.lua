-- claim(key, found, limit, score): of the members of a ZRANGEBYSCORE ... WITHSCORES reply `found`, moves
-- up to `limit` to `score` in the zset `key`, passing over the gids in ARGV[4..] (members the caller
-- already looked at and put back). Returns { gid1, old_score1, gid2, old_score2, ... }.
local function claim(key, found, limit, score)
  local skip = {}
  for i = 4, #ARGV do
    skip[ARGV[i]] = true
  end
  local claimed = {}
  for i = 1, #found, 2 do
    if #claimed >= 2 * limit then break end
    if not skip[found[i]] then
      redis.call('ZADD', key, score, found[i])
      claimed[#claimed + 1] = found[i]
      claimed[#claimed + 1] = found[i + 1]
    end
  end
  return claimed
end
