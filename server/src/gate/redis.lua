-- Gatehouse's shared admission, one script per operation (see redis.rs). Money is integer
-- nano-dollars kept by Redis' 64-bit integer commands; Lua numbers are doubles, so sums and
-- comparisons of money go through big(): a pair of doubles (billions, units), exact for every
-- amount Gatehouse accepts (budgets up to 1e18). Token and request counts stay below 2^53.
-- Time is Redis' own (TIME), the same for every instance.

local B = 1000000000
-- A level's counters outlive their last use by a week, then Redis forgets them (a level used
-- again is loaded from the database): deleted levels leave nothing behind for good.
local KEEP = 604800

local function big(s)
  s = tostring(s or "0")
  local neg = string.sub(s, 1, 1) == "-"
  if neg then s = string.sub(s, 2) end
  local hi, lo = 0, tonumber(s) or 0
  if #s > 9 then
    hi = tonumber(string.sub(s, 1, #s - 9))
    lo = tonumber(string.sub(s, -9))
  end
  if neg then return { -hi, -lo } end
  return { hi, lo }
end

local function norm(a)
  local carry = math.floor(a[2] / B)
  return { a[1] + carry, a[2] - carry * B }
end

local function add(a, b) return norm({ a[1] + b[1], a[2] + b[2] }) end

local function le(a, b)
  a = norm(a)
  b = norm(b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] <= b[2])
end

-- The negation of an integer (a string or a number), written as Redis parses it ("-0" it does
-- not).
local function negate(x)
  local s = tostring(x)
  if s == '0' then return '0' end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

local function now()
  local t = redis.call('TIME')
  local secs = tonumber(t[1])
  return secs, secs * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The counts of a window's last 61 one-second buckets, oldest first, and their sum.
local function window(key, secs)
  local fields = {}
  for k = 0, 60 do fields[k + 1] = secs - 60 + k end
  local counts = redis.call('HMGET', key, unpack(fields))
  local total = 0
  for k = 1, 61 do
    counts[k] = tonumber(counts[k]) or 0
    total = total + counts[k]
  end
  return counts, total
end

-- Whole seconds until total (+ pending) drops below limit, as gate/window.rs computes it.
local function retry_after(counts, total, limit)
  for k = 1, 61 do
    if total < limit then
      local wait = k - 1
      if wait < 1 then wait = 1 end
      return wait
    end
    total = total - counts[k]
  end
  return 61
end

-- Adds `by` to this second's bucket; a bucket new this second also drops those that left the
-- window (older ones went with the key's expiry: it is renewed on every touch).
local function bump(key, secs, by)
  if redis.call('HINCRBY', key, secs, by) == tonumber(by) then
    local old = {}
    for k = 61, 121 do old[#old + 1] = secs - k end
    redis.call('HDEL', key, unpack(old))
  end
  redis.call('EXPIRE', key, 120)
end

-- Each operation below is appended to the helpers above to make one script.
-- @@admit
-- KEYS: per level (state, requests, tokens), then the lease set and this request's lease.
-- ARGV: levels, cost, tokens, lease id, lease ms, then per level: window, max, rpm, tpm ("" for none).
local n = tonumber(ARGV[1])
local cost, tokens = ARGV[2], tonumber(ARGV[3])
local secs, ms = now()
local windows = {}
for i = 1, n do
  local state = KEYS[3 * i - 2]
  local want = tonumber(ARGV[6 + 4 * (i - 1)])
  local w = tonumber(redis.call('HGET', state, 'w'))
  if not w then return { 'missing', i } end
  if want > w then
    redis.call('HSET', state, 'w', want, 'spend', 0)
    w = want
  end
  windows[i] = w
end
for i = 1, n do
  local max = ARGV[7 + 4 * (i - 1)]
  if max ~= '' then
    local state = KEYS[3 * i - 2]
    local spend, reserved = unpack(redis.call('HMGET', state, 'spend', 'reserved'))
    if not le(add(add(big(spend), big(reserved)), big(cost)), big(max)) then
      return { 'budget', i, spend or '0', reserved or '0' }
    end
  end
end
local rates = {}
for i = 1, n do
  local base = 8 + 4 * (i - 1)
  local rpm, tpm = tonumber(ARGV[base]), tonumber(ARGV[base + 1])
  local requests, tokens_used = 0, 0
  if rpm then
    local counts, total = window(KEYS[3 * i - 1], secs)
    if total >= rpm then return { 'requests', i, rpm, retry_after(counts, total, rpm) } end
    requests = total
  end
  if tpm then
    local counts, total = window(KEYS[3 * i], secs)
    local pending = tonumber(redis.call('HGET', KEYS[3 * i - 2], 'tres')) or 0
    if total + pending >= tpm then
      return { 'tokens', i, tpm, retry_after(counts, total + pending, tpm) }
    end
    tokens_used = total + pending
  end
  rates[i] = { requests, tokens_used }
end
local levels = {}
for i = 1, n do
  local state = KEYS[3 * i - 2]
  redis.call('HINCRBY', state, 'reserved', cost)
  redis.call('HINCRBY', state, 'tres', ARGV[3])
  redis.call('EXPIRE', state, KEEP)
  bump(KEYS[3 * i - 1], secs, 1)
  levels[i] = state
end
local lease = KEYS[3 * n + 2]
redis.call('HSET', lease, 'levels', table.concat(levels, '\n'), 'cost', cost, 'tokens', ARGV[3])
redis.call('ZADD', KEYS[3 * n + 1], ms + tonumber(ARGV[5]), ARGV[4])
local out = { 'ok' }
for i = 1, n do
  out[#out + 1] = windows[i]
  out[#out + 1] = rates[i][1]
  out[#out + 1] = rates[i][2]
end
return out
-- @@settle
-- KEYS: per level (state, tokens), then the lease set and the lease.
-- ARGV: levels, cost, tokens, lease id, then per level: the window admitted in.
local n = tonumber(ARGV[1])
local cost, tokens = ARGV[2], tonumber(ARGV[3])
local secs = now()
local lease = KEYS[2 * n + 2]
local held = redis.call('HMGET', lease, 'cost', 'tokens')
if held[1] then
  for i = 1, n do
    redis.call('HINCRBY', KEYS[2 * i - 1], 'reserved', negate(held[1]))
    redis.call('HINCRBY', KEYS[2 * i - 1], 'tres', negate(held[2]))
  end
  redis.call('DEL', lease)
  redis.call('ZREM', KEYS[2 * n + 1], ARGV[4])
end
local spends = {}
for i = 1, n do
  local state = KEYS[2 * i - 1]
  if redis.call('HGET', state, 'w') == ARGV[4 + i] then
    redis.call('HINCRBY', state, 'spend', cost)
  end
  redis.call('EXPIRE', state, KEEP)
  if tokens > 0 then
    bump(KEYS[2 * i], secs, ARGV[3])
  end
  spends[i] = redis.call('HGET', state, 'spend') or '0'
end
return spends
-- @@release
-- KEYS: the lease set and the lease. ARGV: lease id.
local held = redis.call('HMGET', KEYS[2], 'levels', 'cost', 'tokens')
if not held[1] then return 0 end
for state in string.gmatch(held[1], '[^\n]+') do
  redis.call('HINCRBY', state, 'reserved', negate(held[2]))
  redis.call('HINCRBY', state, 'tres', negate(held[3]))
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
-- @@sweep
-- Releases the leases whose instance stopped renewing them. KEYS: the lease set.
-- ARGV: the prefix of lease keys.
local _, ms = now()
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, 500)
for _, id in ipairs(expired) do
  local lease = ARGV[1] .. id
  local held = redis.call('HMGET', lease, 'levels', 'cost', 'tokens')
  if held[1] then
    for state in string.gmatch(held[1], '[^\n]+') do
      redis.call('HINCRBY', state, 'reserved', negate(held[2]))
      redis.call('HINCRBY', state, 'tres', negate(held[3]))
    end
    redis.call('DEL', lease)
  end
  redis.call('ZREM', KEYS[1], id)
end
return #expired
-- @@renew
-- KEYS: the lease set. ARGV: lease ms, then the lease ids this instance still holds.
local _, ms = now()
for k = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', ms + tonumber(ARGV[1]), ARGV[k])
end
return 0
-- @@reset
-- KEYS: a level's state. ARGV: its new window.
local w = tonumber(redis.call('HGET', KEYS[1], 'w'))
if w and tonumber(ARGV[1]) > w then
  redis.call('HSET', KEYS[1], 'w', ARGV[1], 'spend', 0)
end
return 0
-- @@load
-- KEYS: a level's state. ARGV: storage's spend, and its window. A window Redis counts already
-- keeps its own spend (it is ahead of storage), unless storage's is larger (Redis lost some).
local w = tonumber(redis.call('HGET', KEYS[1], 'w'))
local window = tonumber(ARGV[2])
if not w or window > w then
  redis.call('HSET', KEYS[1], 'w', window, 'spend', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'reserved', 0)
  redis.call('HSETNX', KEYS[1], 'tres', 0)
elseif window == w and not le(big(ARGV[1]), big(redis.call('HGET', KEYS[1], 'spend'))) then
  redis.call('HSET', KEYS[1], 'spend', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], KEEP)
return 0
