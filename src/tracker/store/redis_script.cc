// The shared store's operations as Lua scripts, one per operation, loaded into Redis at start
// and called by EVALSHA: each call is one operation of peerdex-protocol(7), TRACKER
// REQUESTS, run atomically by Redis, with the checks in the order of the protocol page.
// Each script holds only the helpers its operation uses: Redis runs a script's whole body on
// every call, and defining every helper of every operation cost about 5 us per call. The
// layout of the keys is in redis_store.hh. Every key starts with KEYS[1], a hash tag such as
// "{pdx}", so all of them live in one Redis Cluster slot and the script may touch any of them.
//
// ARGV: operation, auth mode (none|ip|key), requester's address as text, requester's key
// hash (raw bytes; empty: none), then the operation's own arguments. Every answer is an
// array {outcome, users, connected, publications, ...}: the outcome as Outcome numbers it
// (protocol.hh), the registry's counts after a change (-1 each when nothing changed), then
// what the operation gives.
//
// SEARCH applies the matching rules of src/common/search.cc (tokens, folding, prefixes, the
// file-name group) here in Lua, because Redis must select the hits where the data lives;
// the store suite checks that both give the same answers.
#include "redis_script.hh"

namespace peerdex {
namespace {

// Every script starts with this: the arguments, the codes, the keys, the checks of a requester.
const char* const kPrelude = R"lua(
local P = KEYS[1]
local op, AUTH, IP, KEY = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local OK, NAME_IN_USE, NO_SUCH_USER, ALREADY_CONNECTED, NOT_CONNECTED = 0, 1, 2, 3, 4
local ALREADY_PUBLISHED, NOT_PUBLISHED, NO_SUCH_TARGET, TARGET_OFFLINE, NOT_OWNER, FAILED = 5, 6, 7, 8, 9, 10

local COUNTS, CONN, PUBS, TOKENS, SEQ = P .. ':n', P .. ':conn', P .. ':pubs', P .. ':tokens', P .. ':seq'
local INLINE = 256  -- a list this long or shorter comes in the answer, without a snapshot key
local SNAPSHOT_MS = 600000  -- a snapshot left by a tracker gone meanwhile expires (each read renews it)

local function ukey(name) return P .. ':u:' .. name end
local function ckey(name) return P .. ':c:' .. name end
local function pkey(pid) return P .. ':p:' .. pid end
local function tkey(token) return P .. ':t:' .. token end
local function lkey(name) return P .. ':l:' .. name end
local function ikey(id) return P .. ':i:' .. id end

-- An answer that changed nothing: the counts are not read (-1: unknown).
local function answer(outcome, ...)
  return {outcome, -1, -1, -1, ...}
end

-- The answer of a change: with the counts it changed, as they are after it (-1 for the others).
local function changed(users, conn, pubs)
  return {OK, users or -1, conn or -1, pubs or -1}
end

-- Calls f with the list's items, at most 1000 at a time (Lua's stack bounds unpack).
local function in_chunks(list, f)
  for i = 1, #list, 1000 do f(unpack(list, i, math.min(i + 999, #list))) end
end

-- A connection is a member of CONN, "name NUL ip NUL port", scored by its place in
-- connection order: LIST_USERS reads its entries from CONN alone.
local function conn_entry(name, ip, port) return name .. '\0' .. ip .. '\0' .. port end

-- A user: false when not registered, else {owner, key hash, ip, port} (false where absent).
local function user(name)
  local f = redis.call('HMGET', ukey(name), 'o', 'k', 'ip', 'port')
  if not f[1] then return false end
  return f
end

-- peerdex-protocol(7), OWNERSHIP.
local function owner_ok(u)
  if AUTH == 'none' then return true end
  if AUTH == 'key' and u[2] then return KEY ~= '' and u[2] == KEY end
  return u[1] == '' or u[1] == IP
end

-- The requester's checks: registered, may be changed by the sender (`change`), connected.
local function requester(name, change)
  local u = user(name)
  if not u then return NO_SUCH_USER end
  if change and not owner_ok(u) then return NOT_OWNER end
  if not u[3] then return NOT_CONNECTED end
  return OK, u
end

-- Tokens: maximal runs of ASCII letters, digits and bytes >= 0x80, ASCII folded.
local PATTERN = '[0-9A-Za-z\128-\255]+'
local function drop_connection(name, u)
  local entry = conn_entry(name, u[3], u[4])  -- fails on a damaged entry before anything is written
  redis.call('ZREM', CONN, entry)
  redis.call('HDEL', ukey(name), 'ip', 'port')
  redis.call('DEL', lkey(name))
  return redis.call('HINCRBY', COUNTS, 'conn', -1)
end

local ops = {}
)lua";

// Publications and their tokens (PUBLISH, DELETE, UNREGISTER).
const char* const kTokens = R"lua(
local function each_token(pub, f)
  local seen = {}
  for _, text in ipairs(pub) do
    for t in string.gmatch(text, PATTERN) do
      t = string.lower(t)
      if not seen[t] then seen[t] = true; f(t) end
    end
  end
end

-- Drops one publication; its tokens left with none go to `emptied` (the caller removes
-- them from the dictionary in one call, and counts the publications it dropped).
local function drop_publication(name, path, pid, emptied)
  local k = pkey(pid)
  local pub = redis.call('HMGET', k, 'p', 'd', 'i')
  each_token({pub[1] or '', pub[2] or ''}, function(t)
    local tk = tkey(t)
    redis.call('ZREM', tk, pid)
    if redis.call('EXISTS', tk) == 0 then emptied[#emptied + 1] = t end
  end)
  if pub[3] then redis.call('ZREM', ikey(pub[3]), pid) end
  redis.call('DEL', k)
  redis.call('ZREM', PUBS, pid)
  redis.call('ZREM', ckey(name), path)
end

local function forget_tokens(emptied)
  in_chunks(emptied, function(...) redis.call('ZREM', TOKENS, ...) end)
end
)lua";

// The matching rules of SEARCH.
const char* const kMatch = R"lua(
local function has_prefix(term, text)
  local n = #term
  for t in string.gmatch(text, PATTERN) do
    if #t >= n and string.lower(string.sub(t, 1, n)) == term then return true end
  end
  return false
end

-- 2: a file-name match, 1: elsewhere, 0: none (search.cc, match()).
local function match(include, exclude, path, description)
  local name = string.match(path, '[^/]*$')
  for _, term in ipairs(exclude) do
    if has_prefix(term, path) or has_prefix(term, description) then return 0 end
  end
  local in_name = true
  for _, term in ipairs(include) do
    if not (in_name and has_prefix(term, name)) then
      in_name = false
      if not has_prefix(term, path) and not has_prefix(term, description) then return 0 end
    end
  end
  return in_name and 2 or 1
end
)lua";

// List answers and the target of LIST_CONTENT and GET_USER_INFO.
const char* const kLists = R"lua(
-- A list answer: inline when short, else a snapshot list (entries joined by NUL) under a
-- key of its own that the tracker reads in chunks and deletes; it expires if forgotten.
local function list_answer(count, entries_of)
  if count == 0 then return answer(OK, 0, '') end
  if count <= INLINE then
    return answer(OK, count, '', unpack(entries_of(0, count - 1)))
  end
  local snap = P .. ':snap:' .. redis.call('INCR', P .. ':snapseq')
  for first = 0, count - 1, 200 do
    local batch = entries_of(first, math.min(first + 199, count - 1))
    if #batch > 0 then redis.call('RPUSH', snap, unpack(batch)) end
    -- At once: should a later batch fail on damaged data, the part made still expires.
    if first == 0 then redis.call('PEXPIRE', snap, SNAPSHOT_MS) end
  end
  return answer(OK, count, snap)
end

local function user_entries(first, last)
  return redis.call('ZRANGE', CONN, first, last)
end

local function target(name, of)
  local o = requester(name, false)
  if o ~= OK then return o end
  local t = user(of)
  if not t then return NO_SUCH_TARGET end
  return OK, t
end
)lua";

// Every script ends with this: the operation named by ARGV[1], with the rest of ARGV.
const char* const kDispatch = R"lua(
local f = ops[op]
if not f then return redis.error_reply('peerdex: unknown operation ' .. tostring(op)) end
return f(unpack(ARGV, 5))
)lua";

struct Operation {
    const char* name;
    const char* helpers[2];  // besides the prelude; null where none
    const char* body;
};

const Operation kOperations[] = {
    {"register", {nullptr, nullptr}, R"lua(
function ops.register(name)
  if redis.call('HSETNX', ukey(name), 'o', IP) == 0 then return answer(NAME_IN_USE) end
  if KEY ~= '' then redis.call('HSET', ukey(name), 'k', KEY) end
  return changed(redis.call('HINCRBY', COUNTS, 'users', 1))
end
)lua"},
    {"unregister", {kTokens, nullptr}, R"lua(
function ops.unregister(name)
  local u = user(name)
  if not u then return answer(NO_SUCH_USER) end
  if not owner_ok(u) then return answer(NOT_OWNER) end
  -- Everything is read before the first write, so damaged data fails the script unchanged.
  local entry = u[3] and conn_entry(name, u[3], u[4])
  local pubs = redis.call('ZRANGE', ckey(name), 0, -1, 'WITHSCORES')
  -- Each token's list is visited once for all of the user's publications that have it.
  local by_token, order, keys, pids, ids = {}, {}, {ukey(name), ckey(name)}, {}, {}
  for i = 2, #pubs, 2 do
    local pid = pubs[i]
    local pub = redis.call('HMGET', pkey(pid), 'p', 'd', 'i')
    if pub[3] then ids[#ids + 1] = {pub[3], pid} end
    each_token({pub[1] or '', pub[2] or ''}, function(t)
      if not by_token[t] then by_token[t] = {}; order[#order + 1] = t end
      local list = by_token[t]
      list[#list + 1] = pid
    end)
    keys[#keys + 1] = pkey(pid)
    pids[#pids + 1] = pid
  end
  local conn = entry and drop_connection(name, u) or nil
  local users = redis.call('HINCRBY', COUNTS, 'users', -1)
  local emptied = {}
  for _, t in ipairs(order) do
    local tk = tkey(t)
    in_chunks(by_token[t], function(...) redis.call('ZREM', tk, ...) end)
    if redis.call('EXISTS', tk) == 0 then emptied[#emptied + 1] = t end
  end
  forget_tokens(emptied)
  for _, ip in ipairs(ids) do redis.call('ZREM', ikey(ip[1]), ip[2]) end
  in_chunks(pids, function(...) redis.call('ZREM', PUBS, ...) end)
  in_chunks(keys, function(...) redis.call('DEL', ...) end)
  if #pids == 0 then return changed(users, conn) end
  return changed(users, conn, redis.call('HINCRBY', COUNTS, 'pubs', -#pids))
end
)lua"},
    {"connect", {nullptr, nullptr}, R"lua(
function ops.connect(name, port)
  local u = user(name)
  if not u then return answer(NO_SUCH_USER) end
  if not owner_ok(u) then return answer(NOT_OWNER) end
  if u[3] then return answer(ALREADY_CONNECTED) end
  if IP == '' then return answer(FAILED) end  -- the peer's address could not be read: nothing to list
  redis.call('HSET', ukey(name), 'ip', IP, 'port', port)
  redis.call('ZADD', CONN, redis.call('INCR', SEQ), conn_entry(name, IP, port))
  return changed(nil, redis.call('HINCRBY', COUNTS, 'conn', 1))
end
)lua"},
    {"disconnect", {nullptr, nullptr}, R"lua(
function ops.disconnect(name)
  local o, u = requester(name, true)
  if o ~= OK then return answer(o) end
  return changed(nil, drop_connection(name, u))
end
)lua"},
    {"publish", {kTokens, nullptr}, R"lua(
-- size and id: the decimal size and the content id of a peerdex/2 PUBLISH, '' when unknown;
-- kept in the publication's hash only when known.
function ops.publish(name, path, description, size, id)
  local o = requester(name, true)
  if o ~= OK then return answer(o) end
  local pid = redis.call('INCR', SEQ)  -- spent even when refused: a gap in the order is harmless
  if redis.call('ZADD', ckey(name), 'NX', pid, path) == 0 then return answer(ALREADY_PUBLISHED) end
  redis.call('HSET', pkey(pid), 'u', name, 'p', path, 'd', description)
  if size ~= '' then redis.call('HSET', pkey(pid), 's', size) end
  if id ~= '' then
    redis.call('HSET', pkey(pid), 'i', id)
    redis.call('ZADD', ikey(id), pid, pid)
  end
  redis.call('ZADD', PUBS, pid, pid)
  local words = {}
  each_token({path, description}, function(t)
    redis.call('ZADD', tkey(t), pid, pid)
    words[#words + 1] = 0
    words[#words + 1] = t
  end)
  if #words > 0 then redis.call('ZADD', TOKENS, unpack(words)) end
  return changed(nil, nil, redis.call('HINCRBY', COUNTS, 'pubs', 1))
end
)lua"},
    {"delete", {kTokens, nullptr}, R"lua(
function ops.delete(name, path)
  local o = requester(name, true)
  if o ~= OK then return answer(o) end
  local pid = redis.call('ZSCORE', ckey(name), path)
  if not pid then return answer(NOT_PUBLISHED) end
  local emptied = {}
  drop_publication(name, path, pid, emptied)
  forget_tokens(emptied)
  return changed(nil, nil, redis.call('HINCRBY', COUNTS, 'pubs', -1))
end
)lua"},
    {"owns", {nullptr, nullptr}, R"lua(
function ops.owns(name)
  local u = user(name)
  if u and not owner_ok(u) then return answer(NOT_OWNER) end
  return answer(OK)
end
)lua"},
    {"list_users", {kLists, nullptr}, R"lua(
function ops.list_users(name)
  local o = name == '' and OK or requester(name, false)  -- '': the tracker's own status page
  if o ~= OK then return answer(o) end
  return list_answer(redis.call('ZCARD', CONN), user_entries)
end
)lua"},
    {"list_content", {kLists, nullptr}, R"lua(
function ops.list_content(name, of)
  local o = target(name, of)
  if o ~= OK then return answer(o) end
  return list_answer(redis.call('ZCARD', ckey(of)), function(first, last)
    local out = {}
    local pubs = redis.call('ZRANGE', ckey(of), first, last, 'WITHSCORES')
    for i = 1, #pubs, 2 do
      -- path, description, size, content id ('' when unknown)
      local f = redis.call('HMGET', pkey(pubs[i + 1]), 'd', 's', 'i')
      out[#out + 1] = pubs[i] .. '\0' .. (f[1] or '') .. '\0' .. (f[2] or '') .. '\0' .. (f[3] or '')
    end
    return out
  end)
end
)lua"},
    {"get_user_info", {kLists, nullptr}, R"lua(
function ops.get_user_info(name, of)
  local o, t = target(name, of)
  if o ~= OK then return answer(o) end
  if not t[3] then return answer(TARGET_OFFLINE) end
  return answer(OK, t[3], tonumber(t[4]))
end
)lua"},
    {"walk", {nullptr, nullptr}, R"lua(
-- EXPIRY: connected users from after `after` (a connection's place), for tracker `me`,
-- each held by a lease of `lease` ms that its holder renews as it walks: a user leased to
-- another live tracker is that tracker's to probe; one whose holder is gone is taken over
-- once the lease runs out. Answers {end reached, place of the last seen, name, ip, port...}.
function ops.walk(after, max, me, lease)
  max = tonumber(max)
  local out, last = {}, after
  local seen = redis.call('ZRANGEBYSCORE', CONN, '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, 4 * max)
  local given = 0
  for i = 1, #seen, 2 do
    local name, ip, port = string.match(seen[i], '^(.-)%z(.-)%z(.*)$')
    last = seen[i + 1]
    local holder = name and redis.call('GET', lkey(name))
    if name and not holder then
      redis.call('SET', lkey(name), me, 'PX', lease)
    elseif name and holder == me then
      redis.call('PEXPIRE', lkey(name), lease)
    end
    if name and (not holder or holder == me) then
      out[#out + 1] = name
      out[#out + 1] = ip
      out[#out + 1] = tonumber(port) or 0  -- damaged: passed over by the tracker
      given = given + 1
      if given == max then break end
    end
  end
  local at_end = (given < max and #seen < 8 * max) and 1 or 0
  if given == max then
    at_end = redis.call('ZCOUNT', CONN, '(' .. last, '+inf') == 0 and 1 or 0
  end
  return answer(OK, at_end, last, unpack(out))
end
)lua"},
    {"expire", {nullptr, nullptr}, R"lua(
function ops.expire(name, ip, port)
  local u = user(name)
  if not u then return answer(NO_SUCH_USER) end
  if u[3] ~= ip or u[4] ~= port then return answer(NOT_CONNECTED) end
  return changed(nil, drop_connection(name, u))
end
)lua"},
    {"search", {kMatch, nullptr}, R"lua(
-- SEARCH: the candidates come newest first from the cheapest include term (its tokens'
-- lists merged), or from every publication when each term is a prefix of too many tokens;
-- at most `budget` are examined. Answers {hits, then user, ip, port, path, description, size,
-- content id for each ('' when unknown)}: file-name matches first, newest first within each group.
local WIDE = 64
function ops.search(name, limit, budget, valid, n_include, ...)
  local o = name == '' and OK or requester(name, false)  -- '': the tracker's own status page
  if o ~= OK then return answer(o) end
  if valid ~= '1' then return answer(FAILED) end
  limit, budget, n_include = tonumber(limit), tonumber(budget), tonumber(n_include)
  local terms = {...}
  local include, exclude = {}, {}
  for i, t in ipairs(terms) do
    if i <= n_include then include[#include + 1] = t else exclude[#exclude + 1] = t end
  end
  local best, best_cost = nil, nil
  for _, term in ipairs(include) do
    local found = redis.call('ZRANGEBYLEX', TOKENS, '[' .. term, '+', 'LIMIT', 0, WIDE + 1)
    local keys, cost = {}, 0
    for _, t in ipairs(found) do
      if string.sub(t, 1, #term) ~= term then break end
      keys[#keys + 1] = tkey(t)
    end
    if #keys <= WIDE then
      for _, k in ipairs(keys) do cost = cost + redis.call('ZCARD', k) end
      if not best_cost or cost < best_cost then best, best_cost = keys, cost end
    end
  end
  best = best or {PUBS}
  -- A k-way merge of the lists, newest first, a page of each at a time.
  local PAGE = 128
  local pages, at, floor = {}, {}, {}
  local function refill(i)
    local from = floor[i] and ('(' .. floor[i]) or '+inf'
    pages[i] = redis.call('ZREVRANGEBYSCORE', best[i], from, '-inf', 'LIMIT', 0, PAGE)
    at[i] = 1
    if #pages[i] > 0 then floor[i] = pages[i][#pages[i]] end
  end
  for i = 1, #best do refill(i) end
  local names, others, examined, previous = {}, {}, 0, nil
  while examined < budget and #names < limit do
    local top, pid = nil, nil
    for i = 1, #best do
      if at[i] > #pages[i] and #pages[i] == PAGE then refill(i) end
      local v = pages[i][at[i]]
      if v and (not pid or tonumber(v) > tonumber(pid)) then top, pid = i, v end
    end
    if not top then break end
    at[top] = at[top] + 1
    if pid ~= previous then
      previous = pid
      examined = examined + 1
      local pub = redis.call('HMGET', pkey(pid), 'u', 'p', 'd', 's', 'i')
      local owner = pub[1] and redis.call('HMGET', ukey(pub[1]), 'ip', 'port') or {}
      if owner[1] and pub[2] then  -- a publication whose entry is gone is skipped
        local m = match(include, exclude, pub[2], pub[3])
        local hit = {pub[1], owner[1], tonumber(owner[2]), pub[2], pub[3], pub[4] or '', pub[5] or ''}
        if m == 2 then names[#names + 1] = hit
        elseif m == 1 and #others < limit then others[#others + 1] = hit end
      end
    end
  end
  local out = {}
  for _, group in ipairs({names, others}) do
    for _, hit in ipairs(group) do
      if #out < 7 * limit then
        for _, f in ipairs(hit) do out[#out + 1] = f end
      end
    end
  end
  return answer(OK, #out / 7, unpack(out))
end
)lua"},
    {"sources", {nullptr, nullptr}, R"lua(
-- SOURCES: the publications of content id `id` (lowercase text; '' when the request broke
-- the rules) from its set TAG:i:ID, newest first, a page at a time, skipping those of users
-- not connected, until `limit`. Answers {sources, then user, ip, port, path, size for each},
-- built as one table: no unpack, so 1000 sources of 5 fields stay clear of Lua's stack limit.
function ops.sources(name, id, limit)
  local o = requester(name, false)
  if o ~= OK then return answer(o) end
  limit = tonumber(limit)
  if id == '' or not limit or limit < 1 then return answer(FAILED) end
  local out, n, PAGE, from = {OK, -1, -1, -1, 0}, 0, 128, '+inf'
  while n < limit do
    local page = redis.call('ZREVRANGEBYSCORE', ikey(id), from, '-inf', 'LIMIT', 0, PAGE)
    for _, pid in ipairs(page) do
      local pub = redis.call('HMGET', pkey(pid), 'u', 'p', 's')
      local owner = pub[1] and redis.call('HMGET', ukey(pub[1]), 'ip', 'port') or {}
      if owner[1] and pub[2] then  -- connected, and not damaged
        out[#out + 1] = pub[1]
        out[#out + 1] = owner[1]
        out[#out + 1] = tonumber(owner[2]) or 0  -- damaged: refused by the tracker
        out[#out + 1] = pub[2]
        out[#out + 1] = pub[3] or '0'
        n = n + 1
        if n == limit then break end
      end
    end
    if #page < PAGE then break end
    from = '(' .. page[#page]
  end
  out[5] = n
  return out
end
)lua"},
};

}  // namespace

const std::vector<RedisScript>& redis_scripts()
{
    static const std::vector<RedisScript> scripts = [] {
        std::vector<RedisScript> all;
        for (const Operation& op : kOperations) {
            std::string text = kPrelude;
            for (const char* helpers : op.helpers)
                if (helpers)
                    text += helpers;
            text += op.body;
            text += kDispatch;
            all.push_back({op.name, std::move(text)});
        }
        return all;
    }();
    return scripts;
}

}  // namespace peerdex
