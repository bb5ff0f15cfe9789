-- unpacked(s, limit): the values of a packed argument (each value as <byte length>:<bytes>, one after the
-- other; pack() in scripts.ts writes it), at most `limit` of them when a limit is given.
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
