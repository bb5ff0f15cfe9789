--[[
  update-branches.1: record branch results while the global status is the expected one (spec §8.2: a
  forceStop or another instance finishing the transaction makes the write fail, which ends the pass).

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] TTL in seconds to set on the hash; 0 = no expiry
    ARGV[2] the status the transaction must have
    ARGV[3] the branches, packed as in save-new.1.lua, 3 values each:
            the marker u:<len>:<branch_id>:<op> of the branch, its id, the new value of s<id>
            A branch is written only when its marker points at that id, so a branch of another
            transaction, or a stale id, never overwrites anything.

  Output:
    'OK'
    'NOT_FOUND'  the transaction is missing or has another status; nothing was written
]]
--@include branch-states
local key = KEYS[1]
if not set_branch_states(key, ARGV[3], ARGV[2]) then
  return 'NOT_FOUND'
end
set_ttl(key, ARGV[1])
return 'OK'
