// The upload rate cap's arithmetic (token_bucket.hh), on a clock the test moves.
#include <gtest/gtest.h>

#include "token_bucket.hh"

namespace peerdex {
namespace {

// Senders that always want to send, as the rate gate drives them: take a chunk whenever
// the bucket allows, else wait for wait_ms(). Returns the bytes sent over `ms`.
std::uint64_t sent_over(TokenBucket& b, std::uint64_t start, std::uint64_t ms)
{
    std::uint64_t now = start, sent = 0;
    while (now < start + ms) {
        if (b.take(b.chunk(), now))
            sent += b.chunk();
        else
            now += std::max<std::uint64_t>(b.wait_ms(now), 1);
    }
    return sent;
}

TEST(TokenBucket, UnlimitedByDefault)
{
    TokenBucket b;
    EXPECT_FALSE(b.limited());
    EXPECT_EQ(b.wait_ms(0), 0u);
}

TEST(TokenBucket, FiveSecondsAtTheRateWithinOneChunk)
{
    for (const std::uint64_t rate : {20ull << 20, 2ull << 20, 100ull << 10, 5000ull}) {
        TokenBucket b;
        b.set_rate(rate, 1000);
        const std::uint64_t sent = sent_over(b, 1000, 5000);
        const std::uint64_t want = rate * 5;
        // One burst (50 ms of the rate) and one chunk of slack at most, never less than the rate
        // allows less one chunk.
        EXPECT_LE(sent, want + rate / 20 + b.chunk()) << rate;
        EXPECT_GE(sent + b.chunk(), want) << rate;
    }
}

TEST(TokenBucket, IdleTimeBuysAtMostOneBurst)
{
    TokenBucket b;
    b.set_rate(1 << 20, 0);
    // An hour of silence, then a greedy sender: 50 ms of the rate at once, then the rate.
    std::uint64_t now = 3600 * 1000, at_once = 0;
    while (b.take(4096, now))
        at_once += 4096;
    EXPECT_LE(at_once, (1u << 20) / 20 + 4096);
    EXPECT_GT(b.wait_ms(now), 0u);
}

TEST(TokenBucket, ChunksStayBetween1KiBAnd256KiB)
{
    TokenBucket b;
    b.set_rate(1000, 0);
    EXPECT_EQ(b.chunk(), 1024u);
    b.set_rate(1ull << 40, 0);
    EXPECT_EQ(b.chunk(), 256u * 1024);
}

TEST(TokenBucket, EverySenderGetsATurnWithin10sAtLowRates)
{
    // 64 downloaders of a peer capped at 4 KiB/s: a whole round of turns must fit in 10 s,
    // or the waiting ones would be cut as stalled (30 s without a byte).
    TokenBucket b;
    b.set_rate(4096, 0);
    const std::uint64_t chunk = b.chunk(64);
    EXPECT_LE(64 * chunk, 4096u * 10);
    EXPECT_GE(chunk, 64u);
    // Simulated: the 64 take turns; none waits more than 10 s (plus one turn) for its next.
    std::uint64_t now = 0, last[64] = {};
    for (int round = 0; round < 3; ++round)
        for (int s = 0; s < 64; ++s) {
            while (!b.take(chunk, now))
                now += std::max<std::uint64_t>(b.wait_ms(now), 1);
            if (round > 0) {
                EXPECT_LE(now - last[s], 10000u + 1000u * chunk / 4096 + 1) << s;
            }
            last[s] = now;
        }
    // Few senders at a high rate: smooth 20 ms chunks, not the fair-share bound.
    b.set_rate(10 << 20, now);
    EXPECT_EQ(b.chunk(3), (10u << 20) / 50);
}

}  // namespace
}  // namespace peerdex
