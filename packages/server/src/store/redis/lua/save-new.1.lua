--[[
  save-new.1: create a transaction — its global fields and all its branches — in its one hash, or
  nothing at all.

  The hash (few fields: Redis pays about a microsecond per field written):
    g                   the columns that never change, packed: gid, trans_type, query_prepared, protocol,
                        create_time, options, custom_data, ext_data
    id, status, next_cron_time, next_cron_interval, update_time
                        always present
    owner, result, rollback_reason, finish_time, rollback_time
                        present when not empty
    branches            n, the number of branches
    b<i>                branch i (1-based, insertion order), what never changes, packed:
                        branch_id, op, url, create_time, bin_data
    s<i>                branch i's state, packed: status, update_time, finish_time, rollback_time, and
                        (once called) attempts, last_attempt_time, last_result, last_error
                        ('' when unset)
    u:<len>:<branch_id>:<op>   i: the uniqueness marker of (branch_id, op); len is branch_id's length
  Packed = each value as <byte length>:<bytes>, one after the other.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction
    (save-new.5.lua takes the index keys too, for a deployment whose keys share one hash slot)
    ARGV[1] TTL in seconds for the hash: FinishedDataExpire when created finished, else 0;
            0 = no expiry (an unfinished transaction never expires)
    ARGV[2] the id reserve.3.lua gave the transaction
    ARGV[3] gid
    ARGV[4] the value of field g
    ARGV[5] the other global fields, packed as field, value, field, value, ... (status, next_cron_time,
            next_cron_interval and update_time at least)
    ARGV[6] the branches, packed, 2 values each: the value of b<i>, the value of s<i>

  Output:
    the id of the transaction (integer)
    'UNIQUE_CONFLICT'  the gid exists, or two branches of the batch share (branch_id, op);
                       nothing was written
]]
--@include save-new
return save_new(function()
  return ARGV[2]
end)
