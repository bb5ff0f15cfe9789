--[[
  claim-due: the index half of lockDue (spec §7.3). Picks up to `limit` transactions due before
  due_before, oldest first, and moves each one's score to lease_until in the same atomic step, so two
  coordinators never claim the same gid while the lease holds. lease.lua then checks and leases each
  claimed transaction itself.

  Input:
    KEYS[1] <index>:due   zset   member gid, score next_cron_time (epoch ms)
    ARGV[1] due_before (epoch ms, exclusive)
    ARGV[2] lease_until (epoch ms)
    ARGV[3] limit
    ARGV[4..] gids to pass over (members this lockDue already looked at and put back)

  Output:
    { gid1, old_score1, gid2, old_score2, ... }  the claimed members and the scores they had
]]
local limit = tonumber(ARGV[3])
local skip = {}
for i = 4, #ARGV do
  skip[ARGV[i]] = true
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit + #ARGV - 3)
local claimed = {}
for i = 1, #due, 2 do
  if #claimed >= 2 * limit then break end
  if not skip[due[i]] then
    redis.call('ZADD', KEYS[1], ARGV[2], due[i])
    claimed[#claimed + 1] = due[i]
    claimed[#claimed + 1] = due[i + 1]
  end
end
return claimed
