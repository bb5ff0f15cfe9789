-- is_finished(status): succeed or failed, the two final statuses.
local function is_finished(status)
  return status == 'succeed' or status == 'failed'
end

-- is_unfinished(status): prepared, submitted or aborting, the statuses the cron and the lease work on.
local function is_unfinished(status)
  return status == 'prepared' or status == 'submitted' or status == 'aborting'
end

-- unfinished_row(key): { status, next_cron_time, update_time } of an unfinished transaction, or nil and
-- the answer for the caller: { 'MISSING' } (no such transaction: expired, or its creation is in flight)
-- or { 'FINISHED', update_time } (the index entry that led here is stale).
local function unfinished_row(key)
  local row = redis.call('HMGET', key, 'status', 'next_cron_time', 'update_time')
  if not row[1] then
    return nil, { 'MISSING' }
  end
  if not is_unfinished(row[1]) then
    return nil, { 'FINISHED', row[3] or '0' }
  end
  return row
end

-- cron_if_status(key, expected): the next_cron_time the transaction has (a string, '' when unset) when its status
-- is `expected`; nil when it is missing or has another status (the compare-and-set lost).
local function cron_if_status(key, expected)
  local row = redis.call('HMGET', key, 'status', 'next_cron_time')
  if row[1] ~= expected then
    return nil
  end
  return row[2] or ''
end
