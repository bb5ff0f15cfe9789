--[[
  record-failure.1: one failed attempt, atomically, while the status is the expected one (a silent no-op
  otherwise, like touch-cron-time.1.lua): the backed-off next_cron_time / interval, failed_attempts, last_error
  and update_time of the transaction, and (when given) the branch's state with its attempt record.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    (record-failure.2.lua takes the due index too, for a deployment whose keys share one hash slot)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry
    ARGV[2] the status the transaction must have
    ARGV[3] next_cron_time (epoch ms)
    ARGV[4] next_cron_interval (s)
    ARGV[5] now (epoch ms): the new update_time
    ARGV[6] gid (used by record-failure.2.lua)
    ARGV[7] failed_attempts
    ARGV[8] last_error
    ARGV[9] the branch's marker u:<len>:<branch_id>:<op>, '' for none (the msg back-check)
    ARGV[10] the branch's id
    ARGV[11] the new value of s<id> (packed state with the attempt record)

  Output:
    the next_cron_time the transaction had before (a string), so the caller can raise the cron index
    false (nil)  nothing was written
]]
--@include record-failure
return record_failure()
