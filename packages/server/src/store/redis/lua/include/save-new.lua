--@include branch-fields
--@include hash
--@include status
-- save_new(take_id, index): create the transaction of save-new.1.lua / save-new.5.lua (their headers say
-- the layout, KEYS and ARGV) in KEYS[1], or nothing at all. take_id(gid) gives its id once the branches
-- are validated; index(gid, id, col), when given, indexes it in the same step (col: the global fields
-- written). Returns the id, or 'UNIQUE_CONFLICT' with nothing written.
local function save_new(take_id, index)
  local key = KEYS[1]
  if redis.call('EXISTS', key) == 1 then
    return 'UNIQUE_CONFLICT'
  end
  local gid = ARGV[3]
  local b = unpacked(ARGV[6])
  local markers = branch_markers(key, b, false)
  if not markers then
    return 'UNIQUE_CONFLICT'
  end
  local id = take_id(gid)
  local fields = { 'g', ARGV[4], 'id', id, 'branches', #b / 2 }
  local col = {}
  local pairs_ = unpacked(ARGV[5])
  for i = 1, #pairs_, 2 do
    fields[#fields + 1] = pairs_[i]
    fields[#fields + 1] = pairs_[i + 1]
    col[pairs_[i]] = pairs_[i + 1]
  end
  add_branch_fields(fields, b, markers, 1)
  hset_all(key, fields)
  set_ttl(key, ARGV[1])
  if index then index(gid, id, col) end
  return tonumber(id)
end
