"""The Lua script every node appends to the shared streams with.

One call takes a batch of records from one node and applies them atomically, in order, so
the numbering is the same for every node: a user's ``seq`` and the observer stream's
``monitor_seq`` are taken here, never by a node, and the frames are published in that
order. The key layout is ``runtime.cluster.keys``; the records are built by
``runtime.cluster.records``.

ARGV: namespace, the epoch the node knows (``""``: none yet), a new epoch to use if Redis
has none, the node id as a JSON string, the user replay cap, the observer replay cap, the
user keys' idle TTL in seconds, a random salt for new users' event id prefixes, the batch
id (a retry of a batch whose reply was lost is not applied twice), then the records.

Records (the first field is the kind):

``E`` an event: user_id, head, tail, action, timestamp, run_id, run_op (``S`` registers
the run, ``T`` ends it, ``-``), run_info (for ``S``), claimed_info (a reaping node's copy of
the lost run's info: the event is applied only if the run is still registered with exactly
that info and its node's lease no longer holds that incarnation; ``""``: no claim),
claimed_node. The frame is ``head .. event_id .. '","seq":' .. seq .. tail``.

``O`` an observer-only frame (a delivery report or a ``node`` frame): the frame without its
``monitor_seq``, a JSON object.

``L`` a lost node: node id, its entry in the nodes hash, its incarnation, then the ``node``
frame that reports it; applied once, only while the entry is unchanged and the node's lease
no longer holds that incarnation.

Returns ``{epoch, n1, r1, i1, n2, r2, i2, ...}``: for ``E`` the seq taken (0: claim refused),
how many nodes were subscribed to the user's channel and the event id; for ``O`` and ``L``
the monitor_seq (0: refused), 0 and ``""``. A repeated batch id returns ``{epoch, "repeat"}``.
"""

from __future__ import annotations

BATCH_SCRIPT = r"""
local ns = ARGV[1]
local epoch_key = ns .. ':epoch'
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', epoch_key, epoch)
end
if redis.call('SET', ns .. ':batch:' .. ARGV[9], '1', 'NX', 'EX', 300) == false then
  return {epoch, 'repeat'}
end
local node_json = ARGV[4]
local user_cap = tonumber(ARGV[5])
local observer_cap = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local salt = ARGV[8]
local runs_key = ns .. ':runs'
local observer_seq_key = ns .. ':observer:seq'
local observer_stream = ns .. ':observer:stream'

local out = {epoch}
local user_lines = {}
local user_order = {}
local user_results = {}
local observer_lines = {}
local ttl_done = {}

local function observe(body)
  local mseq = redis.call('INCR', observer_seq_key)
  local frame = string.sub(body, 1, -2) .. ',"monitor_seq":' .. mseq .. '}'
  redis.call('XADD', observer_stream, 'MAXLEN', observer_cap, '0-' .. mseq, 'f', frame)
  observer_lines[#observer_lines + 1] = mseq .. ' ' .. frame
  return mseq
end

local i = 10
while i <= #ARGV do
  local kind = ARGV[i]
  if kind == 'E' then
    local user = ARGV[i + 1]
    local action = ARGV[i + 4]
    local run_id = ARGV[i + 6]
    local run_op = ARGV[i + 7]
    local claimed = ARGV[i + 9]
    local allowed = true
    if claimed ~= '' then
      local lease = redis.call('GET', ns .. ':node:' .. ARGV[i + 10])
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
      local seq = redis.call('HINCRBY', meta, 'seq', 1)
      local prefix = redis.call('HGET', meta, 'prefix')
      if not prefix then
        prefix = string.sub(redis.sha1hex(salt .. user), 1, 16)
        redis.call('HSET', meta, 'prefix', prefix)
      end
      local event_id = prefix .. string.format('%016x', seq)
      local frame = ARGV[i + 2] .. event_id .. '","seq":' .. seq .. ARGV[i + 3]
      if action == 'x' then
        -- dropped by protocol chaos: the number is used, nothing can be re-sent for it
        redis.call('XADD', stream, 'MAXLEN', user_cap, '0-' .. seq, 'f', '')
      else
        redis.call('XADD', stream, 'MAXLEN', user_cap, '0-' .. seq, 'f', frame)
        local lines = user_lines[user]
        if not lines then
          lines = {}
          user_lines[user] = lines
          user_order[#user_order + 1] = user
          user_results[user] = {}
        end
        lines[#lines + 1] = seq .. ' ' .. action .. ' ' .. event_id .. ' ' .. ARGV[i + 5]
          .. ' ' .. frame
        local results = user_results[user]
        results[#results + 1] = #out + 2
        observe(string.sub(frame, 1, -2) .. ',"node":' .. node_json .. '}')
      end
      if run_op == 'S' then
        redis.call('HSET', runs_key, run_id, ARGV[i + 8])
      elseif run_op == 'T' then
        redis.call('HDEL', runs_key, run_id)
      end
      if not ttl_done[user] then
        redis.call('EXPIRE', meta, ttl)
        redis.call('EXPIRE', stream, ttl)
        ttl_done[user] = true
      end
      out[#out + 1] = seq
      out[#out + 1] = 0
      out[#out + 1] = event_id
    end
    i = i + 11
  elseif kind == 'O' then
    out[#out + 1] = observe(ARGV[i + 1])
    out[#out + 1] = 0
    out[#out + 1] = ''
    i = i + 2
  elseif kind == 'L' then
    local node = ARGV[i + 1]
    local nodes_key = ns .. ':nodes'
    local lease = redis.call('GET', ns .. ':node:' .. node)
    if redis.call('HGET', nodes_key, node) == ARGV[i + 2] and lease ~= ARGV[i + 3] then
      redis.call('HDEL', nodes_key, node)
      out[#out + 1] = observe(ARGV[i + 4])
    else
      out[#out + 1] = 0
    end
    out[#out + 1] = 0
    out[#out + 1] = ''
    i = i + 5
  else
    return redis.error_reply('unknown record kind ' .. tostring(kind))
  end
end

for _, user in ipairs(user_order) do
  local receivers = redis.call(
    'PUBLISH', ns .. ':user:' .. user, table.concat(user_lines[user], '\n'))
  for _, slot in ipairs(user_results[user]) do
    out[slot] = receivers
  end
end
if #observer_lines > 0 then
  redis.call('PUBLISH', ns .. ':observer', table.concat(observer_lines, '\n'))
end
return out
"""
