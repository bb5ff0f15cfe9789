--@include unpacked
-- branch_markers(key, b, existing): the uniqueness markers u:<len>:<branch_id>:<op> of the branches b
-- (packed pairs as in save-new.1.lua: the value of b<i>, the value of s<i>), or nil when two of them share
-- (branch_id, op), or, with `existing`, when one is in the hash already. Validating every branch before
-- writing anything means an early return leaves no half-write.
local function branch_markers(key, b, existing)
  local markers, seen = {}, {}
  for i = 1, #b, 2 do
    local head = unpacked(b[i], 2)
    local u = 'u:' .. #head[1] .. ':' .. head[1] .. ':' .. head[2]
    if seen[u] or (existing and redis.call('HEXISTS', key, u) == 1) then
      return nil
    end
    seen[u] = true
    markers[#markers + 1] = u
  end
  return markers
end

-- add_branch_fields(fields, b, markers, first): appends to `fields` the fields b<n>, s<n> and the marker
-- (-> n) of every branch of b, numbered from `first`.
local function add_branch_fields(fields, b, markers, first)
  for i = 1, #b, 2 do
    local k = (i + 1) / 2
    local n = first - 1 + k
    fields[#fields + 1] = 'b' .. n
    fields[#fields + 1] = b[i]
    fields[#fields + 1] = 's' .. n
    fields[#fields + 1] = b[i + 1]
    fields[#fields + 1] = markers[k]
    fields[#fields + 1] = n
  end
end
