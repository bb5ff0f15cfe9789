--[[
  reserve.3: the index half of saveNew, run BEFORE the transaction's own hash is written (the index is a
  hint that may point at a transaction that does not exist yet, never the reverse).

  Gives the new transaction its id (DTM's auto-increment id: it orders the admin list) and makes it visible
  to the admin list and, when unfinished, to the cron.

  Input (all keys live in the index hash slot):
    KEYS[1] <index>:seq   string  the id counter
    KEYS[2] <index>:all   zset    member gid, score id: every transaction, for scanTrans
    KEYS[3] <index>:due   zset    member gid, score next_cron_time (epoch ms): unfinished transactions
    ARGV[1] gid
    ARGV[2] next_cron_time (epoch ms) of the new transaction, or '' when it is created finished

  Output:
    the id for the transaction (integer). When the gid is already in the admin index (a duplicate
    submit, or the leftover of a creation that crashed between this script and save-new) its id is
    reused, so that the index score and the stored id always agree. The due score only ever goes
    down here (ZADD LT): lowering a hint costs the cron one spurious check, raising it could hide a
    transaction that is due.
]]
local gid = ARGV[1]
local id = redis.call('ZSCORE', KEYS[2], gid)
if id then
  id = tonumber(id)
else
  id = redis.call('INCR', KEYS[1])
  redis.call('ZADD', KEYS[2], id, gid)
end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[3], 'LT', ARGV[2], gid)
end
return id
