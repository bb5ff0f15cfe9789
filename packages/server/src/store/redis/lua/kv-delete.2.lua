--[[
  kv-delete.2: delete a KV row.

  Input:
    KEYS[1] <index>:kv:<cat>   hash   field k -> '<version>|<id>|<create_time>|<update_time>|<v>'
    KEYS[2] <index>:kvcats     set    the cats that have rows
    ARGV[1] cat
    ARGV[2] k

  Output:
    'OK'
    'NOT_FOUND'  no such row
]]
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then
  return 'NOT_FOUND'
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return 'OK'
