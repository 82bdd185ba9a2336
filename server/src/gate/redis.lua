-- Gatehouse's shared admission, one script per operation (see redis.rs). Money is integer
-- nano-dollars kept by Redis' 64-bit integer commands. Lua numbers are doubles, exact below
-- 2^53: money of up to 15 digits is compared as numbers, longer amounts through big(), a pair
-- of doubles (billions, units), exact for every amount Gatehouse accepts (budgets up to 1e18).
-- Token and request counts stay below 2^53 (limits are capped there). Time is Redis' own
-- (TIME), the same for every instance.

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

-- Whether spend + reserved + cost <= max, exactly (all integers as strings).
local function fits(spend, reserved, cost, max)
  if #spend <= 15 and #reserved <= 15 and #cost <= 15 and #max <= 15 then
    return tonumber(spend) + tonumber(reserved) + tonumber(cost) <= tonumber(max)
  end
  return le(add(add(big(spend), big(reserved)), big(cost)), big(max))
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

-- A level's hash also holds its two rate windows, kind 'r' (requests) and 't' (tokens): a
-- field per one-second bucket ('r1764330000'), the sum of the buckets from second <kind>lo on
-- (<kind>n). total() first drops the buckets that left the 61 seconds ending at `secs` (each
-- bucket is dropped once: O(1) per request over time), then answers the sum. `n` and `lo` are
-- the fields as the caller read them.
local function total(key, kind, secs, n, lo)
  local first = secs - 60
  n, lo = tonumber(n) or 0, tonumber(lo)
  if not lo then
    redis.call('HSET', key, kind .. 'n', 0, kind .. 'lo', first)
    return 0
  end
  if lo < first then
    local gone = {}
    if first - lo <= 121 then
      for s = lo, first - 1 do gone[#gone + 1] = kind .. s end
      local counts = redis.call('HMGET', key, unpack(gone))
      for k = 1, #counts do n = n - (tonumber(counts[k]) or 0) end
    else
      -- A long gap: look at every bucket.
      local all = redis.call('HGETALL', key)
      for k = 1, #all, 2 do
        local s = string.sub(all[k], 1, 1) == kind and tonumber(string.sub(all[k], 2))
        if s and s < first then
          n = n - tonumber(all[k + 1])
          gone[#gone + 1] = all[k]
        end
      end
    end
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
    redis.call('HSET', key, kind .. 'n', n, kind .. 'lo', first)
  end
  return n
end

-- Adds `by` to this second's bucket and to the sum (after total() at the same second).
local function bump(key, kind, secs, by)
  redis.call('HINCRBY', key, kind .. secs, by)
  redis.call('HINCRBY', key, kind .. 'n', by)
end

-- The counts of a window's last 61 one-second buckets, oldest first (for a refusal's wait).
local function buckets(key, kind, secs)
  local fields = {}
  for k = 0, 60 do fields[k + 1] = kind .. (secs - 60 + k) end
  local counts = redis.call('HMGET', key, unpack(fields))
  for k = 1, 61 do counts[k] = tonumber(counts[k]) or 0 end
  return counts
end

-- One request in flight fewer at a level (never below zero).
local function leave(state)
  if (tonumber(redis.call('HGET', state, 'par')) or 0) > 0 then
    redis.call('HINCRBY', state, 'par', -1)
  end
end

-- A lease is a member of the lease set, scored by its expiry: "id\ncost\ntokens\nstate..."
-- (the states of its levels). Gives back what it holds.
local function give_back(member)
  local parts = {}
  for part in string.gmatch(member, '[^\n]+') do parts[#parts + 1] = part end
  for k = 4, #parts do
    redis.call('HINCRBY', parts[k], 'reserved', negate(parts[2]))
    redis.call('HINCRBY', parts[k], 'tres', negate(parts[3]))
    leave(parts[k])
  end
end

-- Whole seconds until used drops below limit as the oldest buckets leave, as gate/window.rs
-- computes it.
local function retry_after(counts, used, limit)
  for k = 1, 61 do
    if used < limit then
      local wait = k - 1
      if wait < 1 then wait = 1 end
      return wait
    end
    used = used - counts[k]
  end
  return 61
end

-- Each operation below is appended to the helpers above to make one script.
-- @@admit
-- KEYS: each level's state, then the lease set.
-- ARGV: levels, cost, tokens, lease member, lease ms, then per level: window, max, rpm, tpm,
-- parallel ("" for none).
local n = tonumber(ARGV[1])
local cost, tokens = ARGV[2], ARGV[3]
local secs, ms = now()
local levels = {}
for i = 1, n do
  local h = redis.call('HMGET', KEYS[i], 'w', 'spend', 'reserved', 'tres', 'rn', 'rlo', 'tn', 'tlo',
    'par')
  local w = tonumber(h[1])
  if not w then return { 'missing', i } end
  local spend = h[2] or '0'
  local want = tonumber(ARGV[6 + 5 * (i - 1)])
  if want > w then
    redis.call('HSET', KEYS[i], 'w', want, 'spend', 0)
    w, spend = want, '0'
  end
  levels[i] = { w = w, spend = spend, reserved = h[3] or '0', tres = tonumber(h[4]) or 0, h = h }
end
for i = 1, n do
  local max = ARGV[7 + 5 * (i - 1)]
  local l = levels[i]
  if max ~= '' and not fits(l.spend, l.reserved, cost, max) then
    return { 'budget', i, l.spend, l.reserved }
  end
end
for i = 1, n do
  local base = 8 + 5 * (i - 1)
  local rpm, tpm, par = tonumber(ARGV[base]), tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local l = levels[i]
  if par and (tonumber(l.h[9]) or 0) >= par then
    return { 'parallel', i, par, 1 }
  end
  l.requests = total(KEYS[i], 'r', secs, l.h[5], l.h[6])
  if rpm and l.requests >= rpm then
    return { 'requests', i, rpm, retry_after(buckets(KEYS[i], 'r', secs), l.requests, rpm) }
  end
  l.tokens = 0
  if tpm then
    l.tokens = total(KEYS[i], 't', secs, l.h[7], l.h[8]) + l.tres
    if l.tokens >= tpm then
      return { 'tokens', i, tpm, retry_after(buckets(KEYS[i], 't', secs), l.tokens, tpm) }
    end
  end
end
local out = { 'ok' }
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'reserved', cost)
  redis.call('HINCRBY', KEYS[i], 'tres', tokens)
  redis.call('HINCRBY', KEYS[i], 'par', 1)
  bump(KEYS[i], 'r', secs, 1)
  redis.call('EXPIRE', KEYS[i], KEEP)
  out[#out + 1] = levels[i].w
  out[#out + 1] = levels[i].requests
  out[#out + 1] = levels[i].tokens
end
redis.call('ZADD', KEYS[n + 1], ms + tonumber(ARGV[5]), ARGV[4])
return out
-- @@settle
-- KEYS: each level's state, then the lease set.
-- ARGV: levels, cost, tokens, lease member, reserved cost, reserved tokens, then per level:
-- the window admitted in. Answers each level's spend after it. A lease already swept gave
-- its reservation back then: only the charge remains.
local n = tonumber(ARGV[1])
local cost, tokens = ARGV[2], tonumber(ARGV[3])
local secs = now()
local held = redis.call('ZREM', KEYS[n + 1], ARGV[4]) == 1
local spends = {}
for i = 1, n do
  local state = KEYS[i]
  if held then
    redis.call('HINCRBY', state, 'reserved', negate(ARGV[5]))
    redis.call('HINCRBY', state, 'tres', negate(ARGV[6]))
    leave(state)
  end
  local h = redis.call('HMGET', state, 'w', 'tn', 'tlo')
  if h[1] == ARGV[6 + i] then
    spends[i] = redis.call('HINCRBY', state, 'spend', cost)
  else
    spends[i] = redis.call('HGET', state, 'spend') or '0'
  end
  if tokens > 0 then
    total(state, 't', secs, h[2], h[3])
    bump(state, 't', secs, ARGV[3])
  end
  redis.call('EXPIRE', state, KEEP)
end
return spends
-- @@release
-- KEYS: the lease set. ARGV: the lease member.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
give_back(ARGV[1])
return 1
-- @@sweep
-- Releases the leases whose instance stopped renewing them. KEYS: the lease set.
local _, ms = now()
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, 500)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[1], member)
  give_back(member)
end
return #expired
-- @@renew
-- KEYS: the lease set. ARGV: lease ms, then the leases this instance still holds.
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
