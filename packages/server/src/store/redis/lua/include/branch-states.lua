--@include unpacked
--@include hash
-- set_branch_states(key, packed, expected): writes s<id> of every branch of `packed` (triples, packed: the marker
-- u:<len>:<branch_id>:<op>, the id, the new value of s<id>) whose marker points at that id, so a branch of another
-- transaction, or a stale id, never overwrites anything. With `expected`, only while the status is that one:
-- false and nothing written otherwise.
local function set_branch_states(key, packed, expected)
  local b = unpacked(packed)
  -- one read for the status and the marker of every addressed branch
  local wanted = { 'status' }
  for i = 1, #b, 3 do
    wanted[#wanted + 1] = b[i]
  end
  local row = {}
  for s = 1, #wanted, 1000 do -- in chunks: unpack() of a very long table overflows Lua's C stack
    local part = redis.call('HMGET', key, unpack(wanted, s, math.min(s + 999, #wanted)))
    for _, v in ipairs(part) do
      row[#row + 1] = v
    end
  end
  if expected and row[1] ~= expected then
    return false
  end
  local set = {}
  for i = 1, #b, 3 do
    if row[1 + (i + 2) / 3] == b[i + 1] then
      set[#set + 1] = 's' .. b[i + 1]
      set[#set + 1] = b[i + 2]
    end
  end
  hset_all(key, set)
  return true
end
