--[[
  kv-update.1: compare-and-set of a KV row on its version: version + 1, new v and update_time.

  Input:
    KEYS[1] <index>:kv:<cat>   hash   field k -> '<version>|<id>|<create_time>|<update_time>|<v>'
    ARGV[1] k
    ARGV[2] the version the row must have
    ARGV[3] v
    ARGV[4] now (epoch ms)

  Output:
    'OK'
    'NOT_FOUND'  no such row, or another version; nothing was written
]]
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  return 'NOT_FOUND'
end
local version, id, created = string.match(cur, '^(%d+)|(%d+)|(%d+)|')
if version ~= ARGV[2] then
  return 'NOT_FOUND'
end
local next_version = tostring(tonumber(version) + 1)
redis.call('HSET', KEYS[1], ARGV[1], next_version .. '|' .. id .. '|' .. created .. '|' .. ARGV[4] .. '|' .. ARGV[3])
return 'OK'
