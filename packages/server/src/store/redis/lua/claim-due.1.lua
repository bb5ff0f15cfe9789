--[[
  claim-due.1: the index half of lockDue (spec §7.3). Picks up to `limit` transactions due before
  due_before, oldest first, and moves each one's score to lease_until in the same atomic step, so two
  coordinators never claim the same gid while the lease holds. lease.1.lua then checks and leases each
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
--@include claim
local limit = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit + #ARGV - 3)
return claim(KEYS[1], due, limit, ARGV[2])
