local n = #ARGV
local i = 1
while i <= n do
  local op = ARGV[i]
  if op == 'C' then
    local current = redis.call('GET', KEYS[tonumber(ARGV[i + 1])]) or ''
    if current ~= ARGV[i + 2] then return {0, 0} end
    i = i + 3
  elseif op == 'M' then
    local members = redis.call('ZRANGE', KEYS[tonumber(ARGV[i + 1])], 0, -1)
    table.sort(members)
    if table.concat(members, ',') ~= ARGV[i + 2] then return {0, 0} end
    i = i + 3
  elseif op == 'S' or op == 'Z' then i = i + 4
  elseif op == 'R' then i = i + 3
  elseif op == 'D' or op == 'E' or op == 'Q' then i = i + 2
  else return redis.error_reply('unknown plan step ' .. op) end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local first = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, now)
local seq = first
i = 1
while i <= n do
  local op = ARGV[i]
  if op == 'C' or op == 'M' then i = i + 3
  elseif op == 'S' then
    local key = KEYS[tonumber(ARGV[i + 1])]
    redis.call('SET', key, ARGV[i + 2])
    redis.call('PEXPIREAT', key, string.format('%d', now + tonumber(ARGV[i + 3])))
    i = i + 4
  elseif op == 'D' then
    redis.call('DEL', KEYS[tonumber(ARGV[i + 1])])
    i = i + 2
  elseif op == 'Z' then
    redis.call('ZADD', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'R' then
    redis.call('ZREM', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2])
    i = i + 3
  elseif op == 'Q' then
    -- Kept a minute: a near cache that falls further behind forgets everything anyway.
    redis.call('XADD', KEYS[3], 'MINID', '~', string.format('%d', now - 60000), '*', 's', ARGV[i + 1])
    i = i + 2
  else
    redis.call('XADD', KEYS[2], string.format('%d-1', seq), 'e', ARGV[i + 1])
    seq = seq + 1
    i = i + 2
  end
end
if seq > first then redis.call('SET', KEYS[1], string.format('%d', seq - 1)) end
return {1, first}
