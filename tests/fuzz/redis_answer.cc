// What the shared store reads from Redis (redis_answer.hh): RESP bytes, fed in pieces to
// hiredis's reader capped as the store caps it, and every answer read given to every decoder.
// No array longer than the cap is ever built, and whatever a decoder accepts holds together:
// the rows it returns are the rows the answer had, every port is a port.
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "pieces.hh"
#include "redis_answer.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Sink final : ListSink {
    std::size_t entries = 0;
    void user(std::string_view, const Address&, std::uint16_t port) override
    {
        check(port != 0, "a list entry has port 0");
        ++entries;
    }
    void content(std::string_view, std::string_view, const ContentMeta&) override { ++entries; }
    void hit(std::string_view, const Address&, std::uint16_t, std::string_view, std::string_view,
             const ContentMeta&) override
    {
    }
    void source(std::string_view, const Address&, std::uint16_t, std::string_view, std::uint64_t) override {}
    bool full() const override { return false; }
};

void check_cap(const redisReply* r, int depth)
{
    check(depth < 16, "an answer nests deeper than hiredis's reader allows");
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    check(r->elements <= kMaxRedisElements, "an array longer than the cap was built");
    for (std::size_t i = 0; i < r->elements; ++i)
        check_cap(r->element[i], depth + 1);
}

void decode(const redisReply* r)
{
    check_cap(r, 0);
    RedisHead head;
    decode_redis_head(r, head);
    StoreCounts counts;
    decode_redis_counts(r, counts);
    Address ip;
    std::uint16_t port = 0;
    if (decode_redis_info(r, ip, port))
        check(port != 0, "info with port 0");

    std::size_t count = 0;
    std::string key;
    if (decode_redis_list(r, count, key)) {
        check(key.empty() ? count == r->elements - kRedisListFirst : r->elements == kRedisListFirst,
              "a list's count does not match its entries");
        for (RedisListKind kind : {RedisListKind::users, RedisListKind::content}) {
            Sink sink;
            std::size_t parsed = 0;
            for (std::size_t i = kRedisListFirst; i < r->elements; ++i)
                parsed += parse_redis_entry(kind, redis_text(r->element[i]), sink);
            check(sink.entries == parsed, "an entry was refused after it was given");
        }
    }
    SearchHits hits;
    if (decode_redis_hits(r, hits)) {
        check(5 + 7 * hits.size() == r->elements, "hits are not the answer's rows");
        for (std::size_t i = 0; i < hits.size(); ++i)
            check(hits[i].port != 0, "a hit with port 0");
    }
    std::vector<ContentSource> sources;
    if (decode_redis_sources(r, sources)) {
        check(5 + 5 * sources.size() == r->elements, "sources are not the answer's rows");
        for (const ContentSource& s : sources)
            check(s.port != 0, "a source with port 0");
    }
    RedisWalkStep step;
    if (decode_redis_walk(r, step)) {
        check(step.users.size() <= (r->elements - 6) / 3, "the walk gave more users than rows");
        for (const UserEndpoint& u : step.users)
            check(u.port != 0, "a walked user with port 0");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    fuzz::Pieces pieces(in.seed);
    redisReader* reader = redisReaderCreate();
    cap_redis_reader(reader);
    fuzz::for_each_piece(in.bytes, &pieces, [&](const char* p, const char* end) {
        if (redisReaderFeed(reader, p, static_cast<std::size_t>(end - p)) != REDIS_OK)
            return false;
        for (;;) {
            void* reply = nullptr;
            if (redisReaderGetReply(reader, &reply) != REDIS_OK)
                return false;
            if (!reply)
                return true;
            decode(static_cast<redisReply*>(reply));
            freeReplyObject(reply);
        }
    });
    redisReaderFree(reader);
    return 0;
}
