-- One circuit breaker's shared state, changed atomically. Every transition happens here.
--
-- KEYS[1] state hash, KEYS[2] failure-rate window hash, KEYS[3] trial leases (sorted set,
-- score = lease expiry). All three share one hash tag, so they live in one Cluster slot.
--
-- ARGV:  1 op ('read' | 'record' | 'acquire' | 'trial' | 'control')
--        2 now in microseconds, or '' to read the server's clock (TIME)
--        3 the caller's settings, as one string (stored once, compared for drift)
--        4 failure_threshold   5 failure_rate or ''   6 window (us)   7 minimum_calls
--        8 recovery_timeout (us)   9 max_recovery_timeout (us) or ''
--       10 half_open_max_calls   11 success_threshold   12 key TTL (s)
--       13 pub/sub channel   14 breaker name   15 a fresh incarnation id
--       16.. the op's own arguments (see below)
--
-- Reply (all strings): version, incarnation, state, open_until, opened_at ('' if none),
-- timeout, consecutive failures, trial successes, epoch, now, drift (0/1), corrupt (0/1),
-- granted (0/1), counted failures, window calls, window failures.

local state_key, window_key, lease_key = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local cfg = ARGV[3]
local threshold = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local minimum_calls = tonumber(ARGV[7])
local recovery = tonumber(ARGV[8])
local ceiling = tonumber(ARGV[9])
local half_open_max = tonumber(ARGV[10])
local success_threshold = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12])
local BUCKETS = 20

local function int(x)
  return string.format('%.0f', x)
end

-- A decimal integer as this script writes it, or nil: Lua's tonumber also reads '1.5', '0x10',
-- '1e3', 'inf' and 'nan', none of which this library ever stores.
local function integer(text)
  if type(text) ~= 'string' or not string.match(text, '^%-?%d+$') then
    return nil
  end
  return tonumber(text)
end

local STATES = {CLOSED = true, OPEN = true, HALF_OPEN = true, FORCED_OPEN = true, DISABLED = true}

local function fresh()
  return {v = 0, id = ARGV[15], s = 'CLOSED', ou = 0, oa = '', to = recovery, f = 0, ts = 0,
          ep = 1, cfg = cfg}
end

-- The stored state, or nil when there is none; corrupt = true when what is there is not ours.
local function wrong_type(key, expected)
  local kind = redis.call('TYPE', key)['ok']
  return kind ~= 'none' and kind ~= expected
end

local function load()
  -- The window and the leases are checked only by the operations that use them.
  if (rate ~= nil and (op == 'record' or op == 'read') and wrong_type(window_key, 'hash'))
      or ((op == 'acquire' or op == 'trial') and wrong_type(lease_key, 'zset')) then
    return nil, true
  end
  local kind = redis.call('TYPE', state_key)['ok']
  if kind == 'none' then
    return nil, false
  end
  if kind ~= 'hash' then
    return nil, true
  end
  local h = redis.call('HMGET', state_key, 'v', 'id', 's', 'ou', 'oa', 'to', 'f', 'ts', 'ep', 'cfg')
  local st = {v = integer(h[1]), id = h[2], s = h[3], ou = integer(h[4]), oa = h[5],
              to = integer(h[6]), f = integer(h[7]), ts = integer(h[8]), ep = integer(h[9]),
              cfg = h[10]}
  if not (st.v and st.id and st.s and STATES[st.s] and st.ou and st.oa and st.to and st.f
          and st.ts and st.ep and st.cfg) then
    return nil, true
  end
  -- The id is one line of every snapshot: a newline would shift the fields that follow it.
  if st.id == '' or string.find(st.id, '\n', 1, true) then
    return nil, true
  end
  if st.oa ~= '' and not integer(st.oa) then
    return nil, true
  end
  if st.to <= 0 or st.f < 0 or st.ts < 0 or st.ep < 1 or st.v < 0 then
    return nil, true
  end
  return st, false
end

local function expire()
  redis.call('EXPIRE', state_key, ttl)
  if rate ~= nil then redis.call('EXPIRE', window_key, ttl) end  -- a no-op on a missing key
end

local function snapshot(st)
  return table.concat({int(st.v), st.id, st.s, int(st.ou), st.oa == '' and '' or int(st.oa),
                       int(st.to), int(st.f), int(st.ts), int(st.ep), int(now)}, '\n')
end

-- announce = false: a change other processes need not hear of at once (a failure count going
-- from 2 to 3, a window's buckets); they see it at their next read.
local function save(st, announce)
  st.v = st.v + 1
  redis.call('HSET', state_key, 'v', int(st.v), 'id', st.id, 's', st.s, 'ou', int(st.ou),
             'oa', st.oa == '' and '' or int(st.oa), 'to', int(st.to), 'f', int(st.f),
             'ts', int(st.ts), 'ep', int(st.ep), 'cfg', st.cfg)
  expire()
  if announce then
    redis.call('PUBLISH', ARGV[13], ARGV[14] .. '\n' .. snapshot(st))
  end
end

-- Transitions, as the in-process machine makes them.
local function set_state(st, s)
  st.s = s
  st.ep = st.ep + 1
  st.ts = 0
  redis.call('DEL', lease_key)
end

local function open(st)
  st.oa = now
  st.ou = now + st.to
  set_state(st, 'OPEN')
end

local function close(st)
  st.f = 0
  redis.call('DEL', window_key)
  set_state(st, 'CLOSED')
end

local function reset(st)
  st.to = recovery
  st.oa = ''
  close(st)
end

local function poll(st)
  if st.s == 'OPEN' and now >= st.ou then
    set_state(st, 'HALF_OPEN')
    return true
  end
  return false
end

-- The failure-rate window: buckets of window/BUCKETS, fields c<n> (calls) and f<n> (failures).
local function window_totals(prune)
  local head = math.floor(now / (window / BUCKETS))
  local fields = redis.call('HGETALL', window_key)
  local calls, failed = 0, 0
  for i = 1, #fields, 2 do
    local field = fields[i]
    local kind = string.sub(field, 1, 1)
    local bucket = integer(string.sub(field, 2))
    local count = integer(fields[i + 1])
    -- Fields this script did not write (another kind, a count it would not store) count
    -- nothing and go with the next pruning, as buckets out of the window do.
    if bucket == nil or count == nil or count < 0 or (kind ~= 'c' and kind ~= 'f')
        or bucket <= head - BUCKETS or bucket > head then
      if prune then redis.call('HDEL', window_key, field) end
    elseif kind == 'c' then
      calls = calls + count
    else
      failed = failed + count
    end
  end
  return calls, failed, head
end

local function window_add(calls, failed)
  local head = math.floor(now / (window / BUCKETS))
  local counted, failures = 'c' .. int(head), 'f' .. int(head)
  -- HINCRBY refuses a field that holds no integer: such a field is not ours, drop it first.
  local current = redis.call('HMGET', window_key, counted, failures)
  if current[1] and not integer(current[1]) then redis.call('HDEL', window_key, counted) end
  if current[2] and not integer(current[2]) then redis.call('HDEL', window_key, failures) end
  redis.call('HINCRBY', window_key, counted, calls)
  if failed > 0 then redis.call('HINCRBY', window_key, failures, failed) end
  redis.call('EXPIRE', window_key, ttl)
  return window_totals(true)
end

local st, corrupt = load()
local stored = st ~= nil  -- a state was there before this call
local changed = false
local quiet = false  -- the change needs no announcement (see save)
if corrupt then
  redis.call('DEL', state_key, window_key, lease_key)
  st = fresh()
  changed = true
elseif st == nil then
  st = fresh()
end
local drift = (st.cfg ~= cfg) and 1 or 0
local granted, counted = 0, 0
local wcalls, wfailed = 0, 0

if op == 'record' then
  -- 16 successes, 17 failures (at most 1, after the successes), 18 the epoch they were
  -- admitted in ('' = any)
  local ok, failed = tonumber(ARGV[16]), tonumber(ARGV[17])
  local epoch = tonumber(ARGV[18])
  if st.s == 'CLOSED' and (epoch == nil or epoch == st.ep) then
    if rate == nil then
      -- The successes came before the failure sent with them: they end the run first.
      local before = st.f
      if ok > 0 and st.f > 0 then
        st.f = 0
        changed = true
      end
      if failed > 0 then
        st.f = st.f + failed
        counted = failed
        changed = true
      end
      -- Others must hear that failures are pending (their successes then end the run) and
      -- that they are not any more, not of each further one.
      quiet = (before > 0) == (st.f > 0)
      if st.f >= threshold then
        open(st)
        quiet = false
      end
    elseif ok + failed > 0 then
      -- The buckets are a key of their own: the state changes only if the rate trips.
      counted = failed
      wcalls, wfailed = window_add(ok + failed, failed)
      if wcalls >= minimum_calls and wfailed / wcalls >= rate then
        open(st)
        changed = true
      end
    end
  end
elseif op == 'acquire' then
  -- 16 lease id, 17 lease duration (us)
  if poll(st) then changed = true end
  if st.s == 'HALF_OPEN' then
    redis.call('ZREMRANGEBYSCORE', lease_key, '-inf', now)
    local held = redis.call('ZSCORE', lease_key, ARGV[16])
    if held or redis.call('ZCARD', lease_key) < half_open_max then
      redis.call('ZADD', lease_key, now + tonumber(ARGV[17]), ARGV[16])
      redis.call('EXPIRE', lease_key, ttl)
      granted = 1
    end
  end
elseif op == 'trial' then
  -- 16 lease id, 17 'ok' | 'fail' | 'release', 18 the epoch of the lease
  local result = ARGV[17]
  redis.call('ZREM', lease_key, ARGV[16])
  if st.s == 'HALF_OPEN' and tonumber(ARGV[18]) == st.ep and result ~= 'release' then
    if result == 'ok' then
      st.ts = st.ts + 1
      if st.ts >= success_threshold then
        st.to = recovery
        close(st)
      end
    else
      if ceiling ~= nil then st.to = math.min(st.to * 2, ceiling) end
      open(st)
    end
    changed = true
  end
elseif op == 'control' then
  -- 16 'reset' | 'force_open' | 'disable' | 'force:<STATE>'
  local what = ARGV[16]
  if what == 'reset' then
    reset(st)
  elseif what == 'force_open' then
    st.oa = now
    set_state(st, 'FORCED_OPEN')
  elseif what == 'disable' then
    set_state(st, 'DISABLED')
  else
    reset(st)
    local target = string.sub(what, 7)
    if target == 'OPEN' then
      open(st)
    elseif target == 'HALF_OPEN' then
      st.oa = now
      st.ou = now
      set_state(st, 'HALF_OPEN')
    elseif target == 'FORCED_OPEN' then
      st.oa = now
      set_state(st, 'FORCED_OPEN')
    elseif target == 'DISABLED' then
      set_state(st, 'DISABLED')
    end
  end
  changed = true
end

if changed then
  save(st, corrupt or not quiet)
elseif stored and redis.call('TTL', state_key) < ttl / 2 then
  -- Read, not written, for half the TTL: still in use (a FORCED_OPEN breaker left alone,
  -- a CLOSED one with no failure), not abandoned. Once per half TTL, not at every read.
  expire()
end
if rate ~= nil and op ~= 'record' then
  wcalls, wfailed = window_totals(false)
end
return {snapshot(st), tostring(drift), corrupt and '1' or '0', tostring(granted), int(counted),
        int(wcalls), int(wfailed)}
