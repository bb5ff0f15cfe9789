--[[
  delete-finished.1: the transaction half of retention (deleteFinished): delete a finished transaction,
  branches included (they live in the same hash), if its last update is older than `before`.

  Input:
    KEYS[1] <prefix>:t:<gid>   hash   the transaction (layout: see save-new.1.lua)
    ARGV[1] before (epoch ms, exclusive)

  Output:
    { 'DELETED' }
    { 'MISSING' }                  already gone (expired after Store.FinishedDataExpire)
    { 'UNFINISHED' }               not finished: never deleted
    { 'RECENT', update_time }      finished, but updated at or after `before`
]]
--@include status
local key = KEYS[1]
local row = redis.call('HMGET', key, 'status', 'update_time')
if not row[1] then
  return { 'MISSING' }
end
if not is_finished(row[1]) then
  return { 'UNFINISHED' }
end
if tonumber(row[2]) >= tonumber(ARGV[1]) then
  return { 'RECENT', row[2] }
end
redis.call('DEL', key)
return { 'DELETED' }
