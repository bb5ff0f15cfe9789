--[[
  kv-create.3: create a KV row (topics) at version 1.

  Input (all keys live in the index hash slot):
    KEYS[1] <index>:kv:<cat>   hash   field k -> '<version>|<id>|<create_time>|<update_time>|<v>'
    KEYS[2] <index>:kvseq      string the KV id counter
    KEYS[3] <index>:kvcats     set    the cats that have rows
    ARGV[1] cat
    ARGV[2] k
    ARGV[3] v
    ARGV[4] now (epoch ms)

  Output:
    the id of the new row
    'UNIQUE_CONFLICT'  (cat, k) exists; nothing was written
]]
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  return 'UNIQUE_CONFLICT'
end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[2], '1|' .. id .. '|' .. ARGV[4] .. '|' .. ARGV[4] .. '|' .. ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
return id
