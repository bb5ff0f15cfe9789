--[[
  change-status.1: compare-and-set of the global status, with the columns that go with the move.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    (change-status.3.lua takes the index keys too, for a deployment whose keys share one hash slot)
    ARGV[1] TTL in seconds to set on the hash: Store.FinishedDataExpire when moving to succeed or
            failed, 0 otherwise; 0 = no expiry (an unfinished transaction never expires)
    ARGV[2] from: the status the transaction must have
    ARGV[3] to
    ARGV[4] now (epoch ms): the new update_time
    ARGV[5] rollback_reason, '' = keep
    ARGV[6] result, '' = keep
    ARGV[7] finish_time, '' = keep
    ARGV[8] rollback_time, '' = keep
    ARGV[9] next_cron_time, '' = keep
    ARGV[10] next_cron_interval, '' = keep
    ARGV[11] gid (used by change-status.3.lua)
    ARGV[12] branch results written with the move, packed as update-branches.1.lua's ARGV[3]; '' for none

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    'NOT_FOUND'  the transaction is missing or has another status (the CAS lost); nothing was written
]]
--@include change-status
return change_status()
