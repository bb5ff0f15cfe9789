--@include hash
--@include branch-states
--@include status
-- change_status(): the compare-and-set of change-status.1.lua (its header says KEYS[1] and ARGV); returns
-- the next_cron_time the transaction had before, or 'NOT_FOUND' with nothing written.
local function change_status()
  local key = KEYS[1]
  local before = cron_if_status(key, ARGV[2])
  if not before then
    return 'NOT_FOUND'
  end
  local fields = { 'status', ARGV[3], 'update_time', ARGV[4] }
  local optional = {
    { 'rollback_reason', ARGV[5] },
    { 'result', ARGV[6] },
    { 'finish_time', ARGV[7] },
    { 'rollback_time', ARGV[8] },
    { 'next_cron_time', ARGV[9] },
    { 'next_cron_interval', ARGV[10] },
  }
  for _, fv in ipairs(optional) do
    if fv[2] ~= '' then
      fields[#fields + 1] = fv[1]
      fields[#fields + 1] = fv[2]
    end
  end
  redis.call('HSET', key, unpack(fields))
  if ARGV[12] ~= '' then
    set_branch_states(key, ARGV[12])
  end
  set_ttl(key, ARGV[1])
  return before
end
