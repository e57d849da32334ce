"""The Lua script every node appends to the shared streams with.

One call takes a batch of records from one node and applies them atomically, in order, so
the numbering is the same for every node: a user's ``seq`` and the observer stream's
``monitor_seq`` are taken here, never by a node, and the frames are published in that
order. The key layout is ``runtime.cluster.keys``; the records are built by
``runtime.cluster.records``.

ARGV: namespace, the epoch the node knows (``""``: none yet), a new epoch to use if Redis
has none, the node id as a JSON string, the user replay cap, the observer replay cap, the
user keys' idle TTL in seconds, a random salt for new users' event id prefixes, the node's
incarnation id and the batch's number in it (a retry of a batch whose reply was lost is not
applied twice), then one argument per record.

A record is its fields joined by the byte 0x1F (no field holds it: frames are JSON, which
escapes control characters, and ids are plain names); the first field is its kind:

``E`` an event: user_id, head, tail, action, timestamp, run_id, run_op (``S`` registers
the run, ``T`` ends it, ``-``), run_info (for ``S``), claimed_info (a reaping node's copy of
the lost run's info: the event is applied only if the run is still registered with exactly
that info and its node's lease no longer holds that incarnation; ``""``: no claim),
claimed_node. The frame is ``head .. event_id .. '","seq":' .. seq .. tail .. '}'``.

``O`` an observer-only frame (a delivery report or a ``node`` frame): the frame without its
``monitor_seq`` and its closing brace.

``L`` a lost node: node id, its entry in the nodes hash, its incarnation, then the ``node``
frame that reports it (as for ``O``); applied once, only while the entry is unchanged and
the node's lease no longer holds that incarnation.

Returns ``{epoch, n1, r1, i1, n2, r2, i2, ...}``: for ``E`` the seq taken (0: claim refused),
how many nodes were subscribed to the user's channel and the event id; for ``O`` and ``L``
the monitor_seq (0: refused), 0 and ``""``. A batch number already applied returns
``{epoch, "repeat"}``.

Frames are published only on channels someone is subscribed to (``PUBSUB NUMSUB``, once
per call): no message is built that nobody reads. The observer stream is trimmed
approximately (``MAXLEN ~``: whole nodes of the stream at a time, so it may keep a little
more than its cap), which costs Redis a fifth less per event; a user's stream is trimmed
exactly to ``replay_buffer``.
"""

from __future__ import annotations

#: between the fields of a record
FIELD_SEPARATOR = b"\x1f"

BATCH_SCRIPT = r"""
local ns = ARGV[1]
local epoch_key = ns .. ':epoch'
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', epoch_key, epoch)
end
local applied_key = ns .. ':applied:' .. ARGV[9]
local batch = tonumber(ARGV[10])
if batch <= tonumber(redis.call('GET', applied_key) or '0') then
  return {epoch, 'repeat'}
end
redis.call('SET', applied_key, batch, 'EX', 86400)
local node_part = ',"node":' .. ARGV[4] .. ',"monitor_seq":'
local user_cap = tonumber(ARGV[5])
local observer_cap = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local salt = ARGV[8]
local runs_key = ns .. ':runs'
local observer_seq_key = ns .. ':observer:seq'
local observer_stream = ns .. ':observer:stream'
local observer_channel = ns .. ':observer'

local function split(record)
  local fields, pos = {}, 1
  while true do
    local stop = string.find(record, '\31', pos, true)
    if not stop then
      fields[#fields + 1] = string.sub(record, pos)
      return fields
    end
    fields[#fields + 1] = string.sub(record, pos, stop - 1)
    pos = stop + 1
  end
end

-- First pass: the records, how many numbers each stream needs, who listens.
-- Numbers are taken a batch at a time (one HINCRBY per user, one INCRBY for the observer
-- stream); a batch with a claim or a lost node, whose records may be refused, takes each
-- number as it goes instead.
local records = {}
local per_user = {}
local users = {}
local observed = 0
local bulk = true
for i = 11, #ARGV do
  local r = split(ARGV[i])
  records[#records + 1] = r
  if r[1] == 'E' then
    local user = r[2]
    if per_user[user] == nil then
      per_user[user] = 0
      users[#users + 1] = user
    end
    if r[10] ~= '' then
      bulk = false
    else
      per_user[user] = per_user[user] + 1
      if r[5] ~= 'x' then
        observed = observed + 1
      end
    end
  elseif r[1] == 'O' then
    observed = observed + 1
  else
    bulk = false
  end
end
local channels = {observer_channel}
for _, user in ipairs(users) do
  channels[#channels + 1] = ns .. ':user:' .. user
end
local counts = redis.call('PUBSUB', 'NUMSUB', unpack(channels))
local observers = tonumber(counts[2])
local listeners = {}
for k, user in ipairs(users) do
  listeners[user] = tonumber(counts[2 * k + 2])
end

local next_seq = {}
local next_mseq = 0
if bulk then
  for user, count in pairs(per_user) do
    if count > 0 then
      next_seq[user] = redis.call('HINCRBY', ns .. ':user:' .. user .. ':meta', 'seq', count)
        - count + 1
    end
  end
  if observed > 0 then
    next_mseq = redis.call('INCRBY', observer_seq_key, observed) - observed + 1
  end
end

local function take_seq(user, meta)
  local seq = next_seq[user]
  if seq == nil then
    return redis.call('HINCRBY', meta, 'seq', 1)
  end
  next_seq[user] = seq + 1
  return seq
end

local observer_lines = {}

-- ``open``: an observer frame without its monitor_seq and closing brace
local function observe(open)
  local mseq
  if bulk then
    mseq = next_mseq
    next_mseq = next_mseq + 1
  else
    mseq = redis.call('INCR', observer_seq_key)
  end
  local frame = open .. mseq .. '}'
  redis.call('XADD', observer_stream, 'MAXLEN', '~', observer_cap, '0-' .. mseq, 'f', frame)
  if observers > 0 then
    observer_lines[#observer_lines + 1] = mseq .. ' ' .. frame
  end
  return mseq
end

-- Second pass: number, keep and publish, in order.
local out = {epoch}
local user_lines = {}
local prefixes = {}
local ttl_done = {}
for _, r in ipairs(records) do
  local kind = r[1]
  if kind == 'E' then
    local user, action, run_id, run_op, claimed = r[2], r[5], r[7], r[8], r[10]
    local allowed = true
    if claimed ~= '' then
      local lease = redis.call('GET', ns .. ':node:' .. r[11])
      local info = cjson.decode(claimed)
      allowed = redis.call('HGET', runs_key, run_id) == claimed and lease ~= info['incarnation']
    end
    if not allowed then
      out[#out + 1] = 0
      out[#out + 1] = 0
      out[#out + 1] = ''
    else
      local meta = ns .. ':user:' .. user .. ':meta'
      local stream = ns .. ':user:' .. user .. ':stream'
      local seq = take_seq(user, meta)
      local prefix = prefixes[user]
      if not prefix then
        prefix = redis.call('HGET', meta, 'prefix')
        if not prefix then
          prefix = string.sub(redis.sha1hex(salt .. user), 1, 16)
          redis.call('HSET', meta, 'prefix', prefix)
        end
        prefixes[user] = prefix
      end
      local event_id = prefix .. string.format('%016x', seq)
      local open = r[3] .. event_id .. '","seq":' .. seq .. r[4]
      if action == 'x' then
        -- dropped by protocol chaos: the number is used, nothing can be re-sent for it
        redis.call('XADD', stream, 'MAXLEN', user_cap, '0-' .. seq, 'f', '')
      else
        local frame = open .. '}'
        redis.call('XADD', stream, 'MAXLEN', user_cap, '0-' .. seq, 'f', frame)
        if listeners[user] > 0 then
          local lines = user_lines[user]
          if not lines then
            lines = {}
            user_lines[user] = lines
          end
          lines[#lines + 1] = seq .. ' ' .. action .. ' ' .. event_id .. ' ' .. r[6] .. ' ' .. frame
        end
        observe(open .. node_part)
      end
      if run_op == 'S' then
        redis.call('HSET', runs_key, run_id, r[9])
      elseif run_op == 'T' then
        redis.call('HDEL', runs_key, run_id)
      end
      if not ttl_done[user] then
        redis.call('EXPIRE', meta, ttl)
        redis.call('EXPIRE', stream, ttl)
        ttl_done[user] = true
      end
      out[#out + 1] = seq
      out[#out + 1] = listeners[user]
      out[#out + 1] = event_id
    end
  elseif kind == 'O' then
    out[#out + 1] = observe(r[2] .. ',"monitor_seq":')
    out[#out + 1] = 0
    out[#out + 1] = ''
  elseif kind == 'L' then
    local node = r[2]
    local nodes_key = ns .. ':nodes'
    local lease = redis.call('GET', ns .. ':node:' .. node)
    if redis.call('HGET', nodes_key, node) == r[3] and lease ~= r[4] then
      redis.call('HDEL', nodes_key, node)
      out[#out + 1] = observe(r[5] .. ',"monitor_seq":')
    else
      out[#out + 1] = 0
    end
    out[#out + 1] = 0
    out[#out + 1] = ''
  else
    return redis.error_reply('unknown record kind ' .. tostring(kind))
  end
end

for user, lines in pairs(user_lines) do
  redis.call('PUBLISH', ns .. ':user:' .. user, table.concat(lines, '\n'))
end
if #observer_lines > 0 then
  redis.call('PUBLISH', observer_channel, table.concat(observer_lines, '\n'))
end
return out
"""
