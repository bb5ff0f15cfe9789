--[[
  index-cas.1: move one member's score in a sorted-set index only if it still has the score the caller
  expects. Used to raise the cron index after a transaction's next_cron_time moved later (the
  expected score is the transaction's previous next_cron_time), and to put back or correct a score
  that claim-due / claim-reset moved when the transaction turned out not to be due. If anyone moved
  the score meanwhile, their move wins.

  Input:
    KEYS[1] <index>:due   zset
    ARGV[1] gid
    ARGV[2] expected score (epoch ms)
    ARGV[3] new score (epoch ms)

  Output:
    1 when moved, 0 when the member is missing or its score differs
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
