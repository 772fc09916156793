#include "redis_answer.hh"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <algorithm>
#include <charconv>

#include "protocol.hh"
#include "wire.hh"

namespace peerdex {

namespace {

bool integer_of(const redisReply* r, long long& out)
{
    if (r && r->type == REDIS_REPLY_INTEGER) {
        out = r->integer;
        return true;
    }
    return false;
}

// An integer answer, or a string holding one (HMGET gives strings).
bool number_of(const redisReply* r, long long& out)
{
    if (integer_of(r, out))
        return true;
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return false;
    const auto [end, ec] = std::from_chars(r->str, r->str + r->len, out);
    return ec == std::errc() && end == r->str + r->len;
}

bool port_of(const redisReply* r, std::uint16_t& out)
{
    long long v;
    if (!integer_of(r, v) || v <= 0 || v > 65535)
        return false;
    out = static_cast<std::uint16_t>(v);
    return true;
}

bool address_of(const redisReply* r, Address& out)
{
    return Address::parse(std::string(redis_text(r)), out);
}

// Splits "a\0b\0c" into `n` fields; false when the entry has another shape.
bool split(std::string_view entry, std::string_view* fields, std::size_t n)
{
    for (std::size_t i = 0; i + 1 < n; ++i) {
        const std::size_t nul = entry.find('\0');
        if (nul == std::string_view::npos)
            return false;
        fields[i] = entry.substr(0, nul);
        entry.remove_prefix(nul + 1);
    }
    fields[n - 1] = entry;
    return entry.find('\0') == std::string_view::npos;
}

// A head, then a count at element 4 and `fields` elements for each row: `start` is given the
// count, then `fill` each row. The count is checked against the elements there, never
// multiplied: a count that wraps the product would otherwise ask for billions of rows.
template <class Start, class Fill>
bool decode_rows(const redisReply* r, std::size_t fields, Start start, Fill fill)
{
    long long count;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 5 || !integer_of(r->element[4], count) || count < 0 ||
        (r->elements - 5) % fields != 0 || static_cast<unsigned long long>(count) != (r->elements - 5) / fields)
        return false;
    start(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i)
        if (!fill(r->element + 5 + fields * i, i))
            return false;
    return true;
}

// The functions hiredis's reader used before cap_redis_reader(); every reader has the same.
const redisReplyObjectFunctions* g_default_functions = nullptr;

void* create_string(const redisReadTask* task, char* s, size_t len)
{
    return g_default_functions->createString(task, s, len);
}
void* create_array(const redisReadTask* task, int elements)
{
    if (elements < 0 || static_cast<std::size_t>(elements) > kMaxRedisElements)
        return nullptr;  // the reader calls it out of memory, and the connection is dropped
    return g_default_functions->createArray(task, elements);
}
void* create_integer(const redisReadTask* task, long long value)
{
    return g_default_functions->createInteger(task, value);
}
void* create_nil(const redisReadTask* task)
{
    return g_default_functions->createNil(task);
}
void free_object(void* object)
{
    g_default_functions->freeObject(object);
}

redisReplyObjectFunctions g_capped_functions = {create_string, create_array, create_integer, create_nil, free_object};

}  // namespace

void cap_redis_reader(redisReader* reader)
{
    if (!reader || reader->fn == &g_capped_functions)
        return;
    if (!g_default_functions)
        g_default_functions = reader->fn;
    reader->fn = &g_capped_functions;
}

std::string_view redis_text(const redisReply* r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
               ? std::string_view(r->str, r->len)
               : std::string_view();
}

bool decode_redis_head(const redisReply* r, RedisHead& head)
{
    long long outcome;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4 || !integer_of(r->element[0], outcome) || outcome < 0 ||
        outcome > static_cast<long long>(Outcome::failed) || !integer_of(r->element[1], head.users) ||
        !integer_of(r->element[2], head.connected) || !integer_of(r->element[3], head.publications))
        return false;
    head.outcome = static_cast<Outcome>(outcome);
    return true;
}

bool decode_redis_counts(const redisReply* r, StoreCounts& counts)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return false;
    long long n[3] = {0, 0, 0};
    for (std::size_t i = 0; i < 3; ++i)
        if (r->element[i]->type != REDIS_REPLY_NIL && !number_of(r->element[i], n[i]))
            return false;
    counts = {static_cast<std::size_t>(std::max(0LL, n[0])), static_cast<std::size_t>(std::max(0LL, n[1])),
              static_cast<std::size_t>(std::max(0LL, n[2]))};
    return true;
}

bool decode_redis_info(const redisReply* r, Address& ip, std::uint16_t& port)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 6 && address_of(r->element[4], ip) &&
           port_of(r->element[5], port);
}

bool decode_redis_list(const redisReply* r, std::size_t& count, std::string& key)
{
    long long n;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < kRedisListFirst || !integer_of(r->element[4], n) ||
        n < 0 || static_cast<unsigned long long>(n) > kRedisMaxListEntries || r->element[5]->type != REDIS_REPLY_STRING)
        return false;
    const std::string_view k = redis_text(r->element[5]);
    // Inline, the entries are all there; with a key, none are.
    if (k.empty() ? r->elements - kRedisListFirst != static_cast<unsigned long long>(n) : r->elements != kRedisListFirst)
        return false;
    count = static_cast<std::size_t>(n);
    key.assign(k);
    return true;
}

bool parse_redis_entry(RedisListKind kind, std::string_view entry, ListSink& sink)
{
    std::string_view f[4];
    if (kind == RedisListKind::users) {
        Address ip;
        if (!split(entry, f, 3) || !Address::parse(std::string(f[1]), ip))
            return false;
        const std::optional<std::uint16_t> port = parse_port(f[2]);
        if (!port)
            return false;
        sink.user(f[0], ip, *port);
        return true;
    }
    // path, description, size, content id (empty when unknown)
    ContentMeta meta;
    if (!split(entry, f, 4) || !parse_content_meta(f[2], f[3], meta))
        return false;
    sink.content(f[0], f[1], meta);
    return true;
}

bool decode_redis_hits(const redisReply* r, SearchHits& hits)
{
    return decode_rows(
        r, 7,
        [&](std::size_t count) {  // the strings sized first: one allocation for them
            std::size_t text = 0;
            for (std::size_t i = 0; i < count; ++i) {
                redisReply* const* f = r->element + 5 + 7 * i;
                text += redis_text(f[0]).size() + redis_text(f[3]).size() + redis_text(f[4]).size();
            }
            hits.clear();
            hits.reserve(count, text);
        },
        [&](redisReply* const* f, std::size_t) {
            Address ip;
            std::uint16_t port;
            ContentMeta meta;
            if (!address_of(f[1], ip) || !port_of(f[2], port) ||
                !parse_content_meta(redis_text(f[5]), redis_text(f[6]), meta))
                return false;
            hits.add(redis_text(f[0]), ip, port, redis_text(f[3]), redis_text(f[4]), meta);
            return true;
        });
}

bool decode_redis_sources(const redisReply* r, std::vector<ContentSource>& sources)
{
    return decode_rows(
        r, 5, [&](std::size_t count) { sources.assign(count, ContentSource()); },
        [&](redisReply* const* f, std::size_t i) {
            ContentSource& s = sources[i];
            s.user.assign(redis_text(f[0]));
            s.path.assign(redis_text(f[3]));
            ContentMeta meta;
            if (!address_of(f[1], s.ip) || !port_of(f[2], s.port) || !parse_content_meta(redis_text(f[4]), {}, meta) ||
                !meta.has_size)
                return false;
            s.size = meta.size;
            return true;
        });
}

bool decode_redis_walk(const redisReply* r, RedisWalkStep& step)
{
    long long at_end = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6 || (r->elements - 6) % 3 != 0 ||
        !integer_of(r->element[4], at_end) || r->element[5]->type != REDIS_REPLY_STRING)
        return false;
    step.at_end = at_end != 0;
    step.after.assign(redis_text(r->element[5]));
    for (std::size_t i = 6; i < r->elements; i += 3) {
        UserEndpoint u;
        if (!address_of(r->element[i + 1], u.ip) || !port_of(r->element[i + 2], u.port))
            continue;
        u.name.assign(redis_text(r->element[i]));
        step.users.push_back(std::move(u));
    }
    return true;
}

}  // namespace peerdex
