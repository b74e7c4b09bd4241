local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local top = tonumber(redis.call('GET', KEYS[1]) or '0')
if now > top then
  redis.call('SET', KEYS[1], string.format('%d', now))
  top = now
end
return top
