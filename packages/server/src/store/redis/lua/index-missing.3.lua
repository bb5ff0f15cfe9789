--[[
  index-missing.3: claim-due claimed a member whose transaction does not exist. Either its creation is
  in flight (reserve.3.lua runs before save-new.1.lua) or it is gone for good (a creation that
  crashed half-way, or a transaction an older version let expire while unfinished). A member whose old score is older than the
  cutoff is forgotten; a recent one gets its old score back, to be looked at again later.

  Input:
    KEYS[1] <index>:due   zset
    KEYS[2] <index>:all   zset
    KEYS[3] <index>:fin   zset
    ARGV[1] gid
    ARGV[2] the score claim-due gave it (lease_until)
    ARGV[3] the score it had before the claim
    ARGV[4] cutoff (epoch ms): forget when the old score is below it

  Output:
    'FORGOTTEN' | 'RESTORED' | 'CHANGED' (someone moved the score since the claim: left alone)
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 'CHANGED'
end
if tonumber(ARGV[3]) < tonumber(ARGV[4]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'FORGOTTEN'
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 'RESTORED'
