// What the shared store reads from Redis: the answers of its Lua scripts (redis_script.cc),
// as hiredis hands them over, turned into the store's types. Pure code, without a
// connection, so the unit tests and the fuzzer (tests/fuzz/redis_answer.cc) call it
// directly. Every function checks the whole shape before it believes a count: Redis is
// trusted to run the scripts, not to be intact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "address.hh"
#include "store.hh"

struct redisReply;
struct redisReader;

namespace peerdex {

// The most elements an array from Redis may announce: the longest answer a script gives is
// a SEARCH at its largest limit (5 + 7 x 1000). hiredis believes any count up to INT_MAX and
// allocates for it before a byte of it arrives; cap_redis_reader() refuses more.
inline constexpr std::size_t kMaxRedisElements = 1 << 16;

// Makes `reader` (a connection's, or the fuzzer's) refuse an array longer than
// kMaxRedisElements as a protocol error, instead of allocating for it.
void cap_redis_reader(redisReader* reader);

// The text of a string, status or error answer; empty for the others.
std::string_view redis_text(const redisReply* r);

// {outcome, users, connected, publications, ...}: what every script answer starts with. A
// count is -1 when the operation did not change it.
struct RedisHead {
    Outcome outcome = Outcome::failed;
    long long users = -1;
    long long connected = -1;
    long long publications = -1;
};
bool decode_redis_head(const redisReply* r, RedisHead& head);

// HMGET of the counts hash: {users, conn, pubs}, each a number or nil (0).
bool decode_redis_counts(const redisReply* r, StoreCounts& counts);

// GET_USER_INFO: head, then ip, port.
bool decode_redis_info(const redisReply* r, Address& ip, std::uint16_t& port);

// LIST_USERS and LIST_CONTENT: head, count, snapshot key ("" when the entries follow
// inline), then the inline entries, from element kRedisListFirst on. The count of a snapshot
// is at most kRedisMaxListEntries (what a tracker lets its snapshots hold in all).
inline constexpr std::size_t kRedisListFirst = 6;
inline constexpr std::size_t kRedisMaxListEntries = 4000000;
bool decode_redis_list(const redisReply* r, std::size_t& count, std::string& key);

// One entry of a list: "user\0ip\0port" (users) or "path\0description\0size\0id" (content),
// given to `sink`; false, and nothing given, when the entry has another shape.
enum class RedisListKind : std::uint8_t { users, content };
bool parse_redis_entry(RedisListKind kind, std::string_view entry, ListSink& sink);

// SEARCH: head, hits, then user, ip, port, path, description, size, content id for each.
bool decode_redis_hits(const redisReply* r, SearchHits& hits);

// SOURCES: head, sources, then user, ip, port, path, size for each.
bool decode_redis_sources(const redisReply* r, std::vector<ContentSource>& sources);

// One step of the liveness walk: head, at end (0 or 1), the place to go on from, then name,
// ip, port for each connected user. A damaged user is passed over (the walk must still move
// past it); a damaged answer is false.
struct RedisWalkStep {
    bool at_end = false;
    std::string after;
    std::vector<UserEndpoint> users;
};
bool decode_redis_walk(const redisReply* r, RedisWalkStep& step);

}  // namespace peerdex
