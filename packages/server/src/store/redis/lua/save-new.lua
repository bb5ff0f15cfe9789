--[[
  save-new: create a transaction — its global fields and all its branches — in its one hash, or
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
    KEYS[2..5]  only when every key of the deployment shares one hash slot (a prefix with a hash tag,
                such as DTM's default {a}): <index>:seq, <index>:all, <index>:due, <index>:fin. The
                script then takes the id and indexes the transaction itself, atomically, and
                reserve.lua / index-finish.lua are not used.
    ARGV[1] TTL in seconds for the hash: FinishedDataExpire when created finished, else 0;
            0 = no expiry (an unfinished transaction never expires)
    ARGV[2] the id reserve.lua gave the transaction; '' with KEYS[2..5]
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
local function unpacked(s, limit)
  local out, pos, n = {}, 1, #s
  while pos <= n and (not limit or #out < limit) do
    local colon = string.find(s, ':', pos, true)
    local len = tonumber(string.sub(s, pos, colon - 1))
    out[#out + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end

local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  return 'UNIQUE_CONFLICT'
end
local gid = ARGV[3]
local b = unpacked(ARGV[6])

-- validate every branch before writing anything: an early return must leave no half-write
local markers = {}
local seen = {}
for i = 1, #b, 2 do
  local head = unpacked(b[i], 2)
  local u = 'u:' .. #head[1] .. ':' .. head[1] .. ':' .. head[2]
  if seen[u] then
    return 'UNIQUE_CONFLICT'
  end
  seen[u] = true
  markers[#markers + 1] = u
end

local id = ARGV[2]
if #KEYS > 1 then
  -- one slot: take the id here (or the one a crashed creation left in the admin index)
  id = redis.call('ZSCORE', KEYS[3], gid) or redis.call('INCR', KEYS[2])
end

local fields = { 'g', ARGV[4], 'id', id, 'branches', #b / 2 }
local col = {}
local pairs_ = unpacked(ARGV[5])
for i = 1, #pairs_, 2 do
  fields[#fields + 1] = pairs_[i]
  fields[#fields + 1] = pairs_[i + 1]
  col[pairs_[i]] = pairs_[i + 1]
end
for i = 1, #b, 2 do
  local n = (i + 1) / 2
  fields[#fields + 1] = 'b' .. n
  fields[#fields + 1] = b[i]
  fields[#fields + 1] = 's' .. n
  fields[#fields + 1] = b[i + 1]
  fields[#fields + 1] = markers[n]
  fields[#fields + 1] = n
end
-- HSET in chunks: unpack() of a very long table overflows Lua's C stack
for s = 1, #fields, 400 do
  redis.call('HSET', key, unpack(fields, s, math.min(s + 399, #fields)))
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end

if #KEYS > 1 then
  local status = col['status']
  redis.call('ZADD', KEYS[3], id, gid)
  if status == 'succeed' or status == 'failed' then
    redis.call('ZREM', KEYS[4], gid)
    redis.call('ZADD', KEYS[5], col['update_time'], gid)
  else
    redis.call('ZADD', KEYS[4], col['next_cron_time'], gid)
    redis.call('ZREM', KEYS[5], gid)
  end
end
return tonumber(id)
