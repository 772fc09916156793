// The shared store's reading of Redis answers (redis_answer.hh): each answer is written in
// RESP, as Redis would send it, and read by hiredis's own reader, capped as the store caps it.
#include "redis_answer.hh"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

namespace peerdex {
namespace {

struct ReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct Read {
    Reply reply;
    bool error = false;
};

// The first answer in `resp`, through a capped reader.
Read read(const std::string& resp)
{
    redisReader* reader = redisReaderCreate();
    cap_redis_reader(reader);
    redisReaderFeed(reader, resp.data(), resp.size());
    void* out = nullptr;
    Read r;
    r.error = redisReaderGetReply(reader, &out) != REDIS_OK;
    r.reply.reset(static_cast<redisReply*>(out));
    redisReaderFree(reader);
    return r;
}

std::string bulk(const std::string& s)
{
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

std::string integer(long long n)
{
    return ":" + std::to_string(n) + "\r\n";
}

// {outcome ok, three counts unchanged}, then `rest` (already encoded, `n` elements).
std::string answer(std::size_t n, const std::string& rest)
{
    return "*" + std::to_string(4 + n) + "\r\n" + integer(0) + integer(-1) + integer(-1) + integer(-1) + rest;
}

struct Sink final : ListSink {
    std::vector<std::string> seen;
    void user(std::string_view name, const Address& ip, std::uint16_t port) override
    {
        seen.push_back(std::string(name) + "@" + ip.str() + ":" + std::to_string(port));
    }
    void content(std::string_view path, std::string_view description, const ContentMeta& meta) override
    {
        seen.push_back(std::string(path) + "|" + std::string(description) + "|" +
                       (meta.has_size ? std::to_string(meta.size) : "-"));
    }
    void hit(std::string_view, const Address&, std::uint16_t, std::string_view, std::string_view,
             const ContentMeta&) override
    {
    }
    void source(std::string_view, const Address&, std::uint16_t, std::string_view, std::uint64_t) override {}
    bool full() const override { return false; }
};

TEST(RedisReader, RefusesAnArrayLongerThanTheCap)
{
    // Uncapped, hiredis would allocate for the count and wait for the elements.
    const Read huge = read("*" + std::to_string(kMaxRedisElements + 1) + "\r\n");
    EXPECT_TRUE(huge.error);
    EXPECT_FALSE(huge.reply);
    const Read nested = read("*1\r\n*2000000000\r\n");
    EXPECT_TRUE(nested.error);
    // At the cap it is an answer still arriving, not an error.
    const Read big = read("*" + std::to_string(kMaxRedisElements) + "\r\n");
    EXPECT_FALSE(big.error);
    EXPECT_FALSE(big.reply);
}

TEST(RedisHead, OutcomeAndCounts)
{
    RedisHead head;
    const Read ok = read("*4\r\n:2\r\n:10\r\n:-1\r\n:7\r\n");
    ASSERT_TRUE(decode_redis_head(ok.reply.get(), head));
    EXPECT_EQ(head.outcome, static_cast<Outcome>(2));
    EXPECT_EQ(head.users, 10);
    EXPECT_EQ(head.connected, -1);
    EXPECT_EQ(head.publications, 7);
    EXPECT_FALSE(decode_redis_head(read("*4\r\n:-1\r\n:0\r\n:0\r\n:0\r\n").reply.get(), head));
    EXPECT_FALSE(decode_redis_head(read("*4\r\n:99\r\n:0\r\n:0\r\n:0\r\n").reply.get(), head));
    EXPECT_FALSE(decode_redis_head(read("*3\r\n:0\r\n:0\r\n:0\r\n").reply.get(), head));
    EXPECT_FALSE(decode_redis_head(read("-ERR no\r\n").reply.get(), head));
    EXPECT_FALSE(decode_redis_head(nullptr, head));
}

TEST(RedisCounts, NumbersStringsAndNil)
{
    StoreCounts counts;
    ASSERT_TRUE(decode_redis_counts(read("*3\r\n$2\r\n12\r\n$-1\r\n:-5\r\n").reply.get(), counts));
    EXPECT_EQ(counts.users, 12u);
    EXPECT_EQ(counts.connected, 0u);
    EXPECT_EQ(counts.publications, 0u);  // a negative count is none
    counts.users = 3;
    EXPECT_FALSE(decode_redis_counts(read("*3\r\n$2\r\n1x\r\n:0\r\n:0\r\n").reply.get(), counts));
    EXPECT_EQ(counts.users, 3u);  // untouched
}

TEST(RedisInfo, AddressAndPort)
{
    Address ip;
    std::uint16_t port = 0;
    ASSERT_TRUE(decode_redis_info(read(answer(2, bulk("127.0.0.1") + integer(4000))).reply.get(), ip, port));
    EXPECT_EQ(ip.str(), "127.0.0.1");
    EXPECT_EQ(port, 4000);
    EXPECT_FALSE(decode_redis_info(read(answer(2, bulk("127.0.0.1") + integer(0))).reply.get(), ip, port));
    EXPECT_FALSE(decode_redis_info(read(answer(2, bulk("127.0.0.1") + integer(65536))).reply.get(), ip, port));
    EXPECT_FALSE(decode_redis_info(read(answer(2, bulk("nowhere") + integer(1))).reply.get(), ip, port));
}

TEST(RedisList, InlineEntriesMatchTheCount)
{
    std::size_t count = 0;
    std::string key = "x";
    const Read two = read(answer(4, integer(2) + bulk("") + bulk("a") + bulk("b")));
    ASSERT_TRUE(decode_redis_list(two.reply.get(), count, key));
    EXPECT_EQ(count, 2u);
    EXPECT_EQ(key, "");
    EXPECT_FALSE(decode_redis_list(read(answer(3, integer(2) + bulk("") + bulk("a"))).reply.get(), count, key));
    EXPECT_FALSE(decode_redis_list(read(answer(3, integer(-1) + bulk("") + bulk("a"))).reply.get(), count, key));
}

TEST(RedisList, ASnapshotKeyComesAlone)
{
    std::size_t count = 0;
    std::string key;
    ASSERT_TRUE(decode_redis_list(read(answer(2, integer(100000) + bulk("{pdx}:snap:4"))).reply.get(), count, key));
    EXPECT_EQ(count, 100000u);
    EXPECT_EQ(key, "{pdx}:snap:4");
    EXPECT_FALSE(
        decode_redis_list(read(answer(3, integer(1) + bulk("{pdx}:snap:4") + bulk("a"))).reply.get(), count, key));
    EXPECT_FALSE(decode_redis_list(read(answer(2, integer(1) + integer(5))).reply.get(), count, key));
    // A count no snapshot can hold is refused, not trusted.
    ASSERT_TRUE(decode_redis_list(read(answer(2, integer(static_cast<long long>(kRedisMaxListEntries)) + bulk("{pdx}:snap:5"))).reply.get(),
                                  count, key));
    EXPECT_FALSE(decode_redis_list(
        read(answer(2, integer(static_cast<long long>(kRedisMaxListEntries) + 1) + bulk("{pdx}:snap:6"))).reply.get(), count, key));
    EXPECT_FALSE(decode_redis_list(read(answer(2, integer(1LL << 62) + bulk("{pdx}:snap:7"))).reply.get(), count, key));
}

TEST(RedisEntry, UsersAndContent)
{
    using namespace std::string_literals;
    Sink sink;
    EXPECT_TRUE(parse_redis_entry(RedisListKind::users, "bob\0"s "127.0.0.1\0"s "4000", sink));
    EXPECT_TRUE(parse_redis_entry(RedisListKind::content, "/a b\0"s "desc\0"s "12\0"s, sink));
    EXPECT_TRUE(parse_redis_entry(RedisListKind::content, "/c\0\0\0"s, sink));
    EXPECT_EQ(sink.seen, (std::vector<std::string>{"bob@127.0.0.1:4000", "/a b|desc|12", "/c||-"}));
    sink.seen.clear();
    EXPECT_FALSE(parse_redis_entry(RedisListKind::users, "bob\0"s "127.0.0.1\0"s "0", sink));
    EXPECT_FALSE(parse_redis_entry(RedisListKind::users, "bob\0"s "127.0.0.1\0"s "65536", sink));
    EXPECT_FALSE(parse_redis_entry(RedisListKind::users, "bob\0"s "127.0.0.1", sink));
    EXPECT_FALSE(parse_redis_entry(RedisListKind::users, "bob\0"s "127.0.0.1\0"s "1\0"s, sink));
    EXPECT_FALSE(parse_redis_entry(RedisListKind::content, "/a\0"s "d\0"s "x\0"s, sink));
    EXPECT_FALSE(parse_redis_entry(RedisListKind::content, "/a\0"s "d", sink));
    EXPECT_TRUE(sink.seen.empty());
}

std::string hit(const std::string& user, long long port)
{
    return bulk(user) + bulk("127.0.0.1") + integer(port) + bulk("/" + user + ".ogg") + bulk("song") + bulk("9") +
           bulk("");
}

TEST(RedisHits, CountMatchesTheRows)
{
    SearchHits hits;
    ASSERT_TRUE(decode_redis_hits(read(answer(15, integer(2) + hit("ann", 4001) + hit("bob", 4002))).reply.get(), hits));
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_EQ(hits[1].user, "bob");
    EXPECT_EQ(hits[1].port, 4002);
    EXPECT_EQ(hits[1].path, "/bob.ogg");
    EXPECT_EQ(hits[1].meta.size, 9u);
    EXPECT_FALSE(decode_redis_hits(read(answer(15, integer(3) + hit("ann", 4001) + hit("bob", 4002))).reply.get(), hits));
    EXPECT_FALSE(decode_redis_hits(read(answer(9, integer(1) + hit("ann", 4001) + bulk("x"))).reply.get(), hits));
    // A count whose product with the row width wraps to the 5 elements there (7 x wraps is
    // 2^64 + 5): multiplied, it would ask for a vector of 2^61 hits.
    const long long wraps = static_cast<long long>((~0ULL / 7) + 1);
    ASSERT_EQ(7 * static_cast<unsigned long long>(wraps), 5u);
    const std::string five = bulk("a") + bulk("b") + bulk("c") + bulk("d") + bulk("e");
    EXPECT_FALSE(decode_redis_hits(read(answer(6, integer(wraps) + five)).reply.get(), hits));
    EXPECT_FALSE(decode_redis_hits(read(answer(8, integer(1) + hit("ann", 0))).reply.get(), hits));
}

TEST(RedisSources, EverySourceHasASize)
{
    std::vector<ContentSource> sources;
    const std::string one = bulk("ann") + bulk("::1") + integer(5000) + bulk("/f") + bulk("4294967296");
    ASSERT_TRUE(decode_redis_sources(read(answer(6, integer(1) + one)).reply.get(), sources));
    ASSERT_EQ(sources.size(), 1u);
    EXPECT_EQ(sources[0].ip.str(), "::1");
    EXPECT_EQ(sources[0].size, 4294967296u);
    const std::string no_size = bulk("ann") + bulk("::1") + integer(5000) + bulk("/f") + bulk("");
    EXPECT_FALSE(decode_redis_sources(read(answer(6, integer(1) + no_size)).reply.get(), sources));
}

TEST(RedisWalk, ADamagedUserIsPassedOver)
{
    RedisWalkStep step;
    const std::string users = bulk("ann") + bulk("127.0.0.1") + integer(4001) + bulk("bad") + bulk("x") +
                              integer(4002) + bulk("cy") + bulk("127.0.0.2") + integer(4003);
    ASSERT_TRUE(decode_redis_walk(read(answer(11, integer(1) + bulk("17") + users)).reply.get(), step));
    EXPECT_TRUE(step.at_end);
    EXPECT_EQ(step.after, "17");
    ASSERT_EQ(step.users.size(), 2u);
    EXPECT_EQ(step.users[0].name, "ann");
    EXPECT_EQ(step.users[1].name, "cy");
    EXPECT_EQ(step.users[1].port, 4003);
    EXPECT_FALSE(decode_redis_walk(read(answer(4, integer(0) + bulk("1") + bulk("ann") + bulk("127.0.0.1"))).reply.get(),
                                   step));
    EXPECT_FALSE(decode_redis_walk(read(answer(2, integer(0) + integer(1))).reply.get(), step));
}

}  // namespace
}  // namespace peerdex
