"""The Lua scripts behind a conversation's mailbox and turn (see docs/CONVERSATIONS.md).

Every key of a conversation carries its partition's hash tag, so each transition (admit a
message, open, supersede, close, resume) is one script on one slot: no crash between two
commands can leave a message both in the mailbox and in a turn, or a turn without a token.

Keys, in this order for every script: KEYS[1] mailbox (sorted set by seq), KEYS[2] turn (hash),
KEYS[3] lease, KEYS[4] fence, KEYS[5] turns due (per partition), KEYS[6] wake-ups due (per
partition: merge windows and sequence gaps).

Messages are released to turns in ``seq`` order. Workers handle a conversation's events
concurrently and retries come late, so seq 5 may be admitted before seq 4: the mailbox takes
only the run that follows ``next`` (the first seq not yet released) without a gap. A gap
older than ``gap_wait_ms`` is given up on (its seqs are remembered in ``skipped``): when such
a message arrives after all it still gets a turn, out of order, rather than being lost. A
message that joins no turn (a human owns the conversation, or it was rejected) is admitted as
a tombstone, so its seq does not leave a gap.

A fencing token is ``max(last + 1, Redis TIME in µs)``, the rule of ``libs.leases``: it only
grows, even when the fence key was lost.

Common ARGV: [1] seq or token, [2] holder, [3] turn ttl (ms), [4] fence ttl (ms), [5] the
conversation's member in the due sets, [6] a new turn id, [7] max messages per turn, [8] gap
wait (ms); each script's own from [9].
"""

from __future__ import annotations

_COMMON = """
local MAX_SKIPPED = 1000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t
end

local function field_number(name, default)
  return tonumber(redis.call('HGET', KEYS[2], name) or default)
end

local function issue_token()
  local _, t = now_ms()
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
  local token = string.format('%.0f', math.max(last + 1, now_us))
  redis.call('SET', KEYS[4], token, 'PX', ARGV[4])
  redis.call('SET', KEYS[3], token .. ':' .. ARGV[2], 'PX', ARGV[3])
  return token
end

-- Take what may be released now: late messages (below next), then the run from next on
-- without a gap, at most `limit` real messages. Tombstones are consumed, not returned, and do
-- not count against the limit (pages of `limit`, at most MAX_PAGES of them per call).
local MAX_PAGES = 100
local function take(limit, carried)
  local taken = carried or {}
  local nxt = field_number('next', '1')
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nxt - 1)) do
    if #taken >= limit then break end
    redis.call('ZREM', KEYS[1], m)
    if not cjson.decode(m)['skip'] then taken[#taken + 1] = m end
  end
  for _ = 1, MAX_PAGES do
    if #taken >= limit then break end
    local run = redis.call('ZRANGEBYSCORE', KEYS[1], nxt, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
    local progressed = false
    for i = 1, #run, 2 do
      if #taken >= limit or tonumber(run[i + 1]) ~= nxt then break end
      redis.call('ZREM', KEYS[1], run[i])
      if not cjson.decode(run[i])['skip'] then taken[#taken + 1] = run[i] end
      nxt = nxt + 1
      progressed = true
    end
    if not progressed or #run < 2 * limit then break end
  end
  redis.call('HSET', KEYS[2], 'next', nxt)
  return taken
end

local function open(turn_id, messages, attempt)
  local token = issue_token()
  local deadline = now_ms() + tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 'turn_id', turn_id, 'token', token, 'attempt', attempt,
    'deadline', deadline, 'messages', cjson.encode(messages))
  redis.call('HDEL', KEYS[2], 'first_waiting', 'gap_since')
  redis.call('ZADD', KEYS[5], deadline, ARGV[5])
  redis.call('ZREM', KEYS[6], ARGV[5])
  local reply = {'opened', turn_id, token, tostring(attempt)}
  for _, m in ipairs(messages) do reply[#reply + 1] = m end
  return reply
end

-- Messages wait behind a gap: wake up when it is given up on; give up on it if it is time.
local function wait_for_gap()
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('HDEL', KEYS[2], 'gap_since')
    redis.call('ZREM', KEYS[6], ARGV[5])
    return false
  end
  local now = now_ms()
  local since = field_number('gap_since', now)
  if now < since + tonumber(ARGV[8]) then
    redis.call('HSET', KEYS[2], 'gap_since', since)
    redis.call('ZADD', KEYS[6], since + tonumber(ARGV[8]), ARGV[5])
    return since + tonumber(ARGV[8])
  end
  local nxt, first = field_number('next', '1'), tonumber(head[2])
  -- Not a gap: what follows `next` is there (tombstones past one call's pages): take again.
  if first <= nxt then return true end
  local skipped = cjson.decode(redis.call('HGET', KEYS[2], 'skipped') or '[]')
  for s = nxt, first - 1 do
    if #skipped < MAX_SKIPPED then skipped[#skipped + 1] = s end
  end
  redis.call('HSET', KEYS[2], 'next', first, 'skipped', cjson.encode(skipped))
  redis.call('HDEL', KEYS[2], 'gap_since')
  return true
end

-- Open a turn over what may be released; when only a gap stands in the way, wait for it.
local function open_ready()
  for _ = 1, 3 do
    local messages = take(tonumber(ARGV[7]))
    if #messages > 0 then return open(ARGV[6], messages, 1) end
    local gap = wait_for_gap()
    if gap == false then return {'empty'} end
    if gap ~= true then return {'waiting', tostring(gap)} end
  end
  return {'empty'}
end
"""

# Admit one inbound message, then open a turn if the policy allows.
# ARGV[9] message (JSON with "seq"), ARGV[10] policy (enqueue, merge, interrupt, reject; or
# human: the conversation is a human's, no turn), ARGV[11] merge window (ms), ARGV[12] merge
# max wait (ms).
ADMIT = (
    _COMMON
    + """
local seq = tonumber(ARGV[1])
local skipped = cjson.decode(redis.call('HGET', KEYS[2], 'skipped') or '[]')
local late = false
for i, s in ipairs(skipped) do
  if s == seq then
    table.remove(skipped, i)
    redis.call('HSET', KEYS[2], 'skipped', cjson.encode(skipped))
    late = true
    break
  end
end
local released = seq < field_number('next', '1') and not late
if released or redis.call('ZCOUNT', KEYS[1], seq, seq) > 0 then
  -- A redelivery. If its turn is still open, answer the turn: the first delivery may have
  -- died between opening it here and publishing it, and the caller makes sure it was.
  local raw = redis.call('HGET', KEYS[2], 'messages')
  if raw then
    for _, m in ipairs(cjson.decode(raw)) do
      if cjson.decode(m)['seq'] == seq then
        local h = redis.call('HMGET', KEYS[2], 'turn_id', 'token', 'attempt')
        local reply = {'duplicate', h[1], h[2], h[3]}
        for _, each in ipairs(cjson.decode(raw)) do reply[#reply + 1] = each end
        return reply
      end
    end
  end
  return {'duplicate'}
end
local policy = ARGV[10]
local open_turn = redis.call('HGET', KEYS[2], 'turn_id')
if policy == 'human' or (open_turn and policy == 'reject') then
  -- A tombstone keeps the seq from looking like a gap; the next take consumes it.
  redis.call('ZADD', KEYS[1], seq, cjson.encode({seq = seq, skip = 1}))
  if policy == 'human' then return {'human'} end
  return {'rejected', open_turn}
end
redis.call('ZADD', KEYS[1], seq, ARGV[9])
if open_turn then
  if policy ~= 'interrupt' then return {'queued', open_turn} end
  -- The new turn answers the latest state: the superseded turn's messages and the new ones.
  local carried = cjson.decode(redis.call('HGET', KEYS[2], 'messages'))
  local count = #carried
  local messages = take(tonumber(ARGV[7]), carried)
  if #messages == count then return {'queued', open_turn} end
  local old_token = redis.call('HGET', KEYS[2], 'token')
  local reply = open(ARGV[6], messages, 1)
  reply[1] = 'superseded'
  table.insert(reply, 2, open_turn)
  table.insert(reply, 3, old_token)
  return reply
end
if policy == 'merge' then
  local now = now_ms()
  local first = field_number('first_waiting', now)
  redis.call('HSET', KEYS[2], 'first_waiting', first)
  local due = math.min(now + tonumber(ARGV[11]), first + tonumber(ARGV[12]))
  redis.call('ZADD', KEYS[6], due, ARGV[5])
  return {'waiting', tostring(due)}
end
return open_ready()
"""
)

# A wake-up came due (a merge window ended, or a gap may be given up on): open a turn over
# what may be released. Nothing when a turn is open or the wake-up was pushed back meanwhile.
OPEN_WAITING = (
    _COMMON
    + """
if redis.call('HEXISTS', KEYS[2], 'turn_id') == 1 then return {'busy'} end
local due = redis.call('ZSCORE', KEYS[6], ARGV[5])
if due and tonumber(due) > now_ms() then return {'not_due'} end
return open_ready()
"""
)

# Close the open turn if ARGV[1] is its token, then open the next over the mailbox. With the
# policy ARGV[9] 'merge' the waiting messages get their window from now instead; with 'human'
# (the turn ended in a handoff) they go to the human with it: the mailbox is emptied and its
# messages returned. ARGV[10] merge window (ms).
CLOSE = (
    _COMMON
    + """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] then return {'stale'} end
local lease = redis.call('GET', KEYS[3])
if lease and string.sub(lease, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  redis.call('DEL', KEYS[3])
end
redis.call('HDEL', KEYS[2], 'turn_id', 'token', 'attempt', 'deadline', 'messages')
redis.call('ZREM', KEYS[5], ARGV[5])
if redis.call('ZCARD', KEYS[1]) == 0 then return {'closed'} end
if ARGV[9] == 'human' then
  local waiting = take(1000000)
  local reply = {'closed'}
  for _, m in ipairs(waiting) do reply[#reply + 1] = m end
  return reply
end
if ARGV[9] == 'merge' then
  local now = now_ms()
  redis.call('HSET', KEYS[2], 'first_waiting', now)
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[10]), ARGV[5])
  return {'closed'}
end
return open_ready()
"""
)

# Resume the open turn if its deadline passed: the same turn and messages under a new token
# (so the stalled holder's late writes are refused), attempt + 1. Past ARGV[9] attempts the
# turn is not reopened: 'exhausted' tells the caller to hand it to a human and close it.
RESUME = (
    _COMMON
    + """
local turn_id = redis.call('HGET', KEYS[2], 'turn_id')
if not turn_id then
  redis.call('ZREM', KEYS[5], ARGV[5])
  return {'gone'}
end
if field_number('deadline', '0') > now_ms() then return {'not_due'} end
local attempt = field_number('attempt', '1') + 1
local messages = cjson.decode(redis.call('HGET', KEYS[2], 'messages'))
if attempt > tonumber(ARGV[9]) then
  local reply = {'exhausted', turn_id, redis.call('HGET', KEYS[2], 'token'), tostring(attempt)}
  for _, m in ipairs(messages) do reply[#reply + 1] = m end
  -- The hand-off must happen even if whoever takes this reply dies first: the turn stays in
  -- the sweep, a turn TTL later, until the hand-off closes it.
  redis.call('ZADD', KEYS[5], now_ms() + tonumber(ARGV[3]), ARGV[5])
  return reply
end
return open(turn_id, messages, attempt)
"""
)

# Push the open turn's deadline (and its lease) ARGV[3] ms from now, if ARGV[1] is its token.
# A fence or lease lost meanwhile (eviction, failover) is written back, as libs.leases does:
# nobody else can have been issued a token while the turn was open.
EXTEND = """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'deadline', deadline)
redis.call('ZADD', KEYS[5], deadline, ARGV[5])
local fence = redis.call('GET', KEYS[4])
if not fence or #fence < #ARGV[1] or (#fence == #ARGV[1] and fence < ARGV[1]) then
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4])
else
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
redis.call('SET', KEYS[3], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

# Hand the conversation back to the AI (``dispatcher.assignment``). What waits in the mailbox
# arrived while a human held the conversation and is theirs: it is dropped (tombstones, and any
# message a gap kept back from the hand-off), ``next`` moves past it, and gaps and seqs given up
# on are forgotten, so the next new message opens a turn at once and no message of the human
# stretch is answered. An open turn is left alone (it closes, or is resumed, as usual).
# Replies {messages dropped, next}.
RELEASE = """
local waiting = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local dropped = 0
for i = 1, #waiting, 2 do
  if not cjson.decode(waiting[i])['skip'] then dropped = dropped + 1 end
end
local nxt = tonumber(redis.call('HGET', KEYS[2], 'next') or '1')
if #waiting > 0 then nxt = math.max(nxt, tonumber(waiting[#waiting]) + 1) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'next', nxt)
redis.call('HDEL', KEYS[2], 'gap_since', 'first_waiting', 'skipped')
redis.call('ZREM', KEYS[6], ARGV[5])
return {dropped, nxt}
"""
