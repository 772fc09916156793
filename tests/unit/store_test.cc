#include "store.hh"

#include <gtest/gtest.h>
#include <rpc/rpc.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "decode.hh"
#include "oplog.h"

namespace peerdex {
namespace {

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

LogEntry entry(std::uint64_t seq, std::string user = "alice", std::uint64_t instance = 0xa)
{
    return LogEntry{std::move(user), "REGISTER", "", "22/11/2026 22:38:16", instance, seq};
}

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/peerdex-store-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = tmpl;
        log = dir + "/ops.log";
        state = log + ".state";
    }
    void TearDown() override
    {
        for (auto f : {log, state, state + ".tmp", log + ".1"})
            std::remove(f.c_str());
        rmdir(dir.c_str());
    }
    std::string dir, log, state;
};

TEST(LogLine, FormatOfProtocolSection5)
{
    EXPECT_EQ(format_line({"alice", "REGISTER", "", "22/11/2026 22:38:16", 1, 1}), "alice REGISTER 22/11/2026 22:38:16");
    EXPECT_EQ(format_line({"alice", "PUBLISH", "/home/alice/notes.txt", "22/11/2026 22:38:20", 1, 2}),
              "alice PUBLISH /home/alice/notes.txt 22/11/2026 22:38:20");
    EXPECT_EQ(format_line({"bob", "CONNECT", "", "", 1, 3}), "bob CONNECT");  // no timestamp sent
}

// The arguments of an OPLOG_BATCH call as the tracker encodes them (rpcgen routines).
std::string batch_args(std::vector<oplog_entry> entries)
{
    std::vector<char> buf(1 << 20);
    XDR xdrs;
    xdrmem_create(&xdrs, buf.data(), static_cast<u_int>(buf.size()), XDR_ENCODE);
    oplog_batch b{static_cast<u_int>(entries.size()), entries.data()};
    EXPECT_TRUE(xdr_oplog_batch(&xdrs, &b));
    std::string out(buf.data(), xdr_getpos(&xdrs));
    xdr_destroy(&xdrs);
    return out;
}

oplog_entry wire_entry(const char* user, const char* op, const char* path, const char* ts, std::uint64_t seq)
{
    return oplog_entry{const_cast<char*>(user), const_cast<char*>(op), const_cast<char*>(path), const_cast<char*>(ts),
                       0xa, seq};
}

TEST_F(StoreTest, BatchArgumentsDecodeIntoTheirLines)
{
    const std::string args = batch_args({wire_entry("alice", "REGISTER", "", "22/11/2026 22:38:16", 1),
                                         wire_entry("alice", "PUBLISH", "/a b.txt", "22/11/2026 22:38:17", 2),
                                         wire_entry("bob", "LIST_USERS", "", "", 3)});
    LogBatch batch;
    ASSERT_TRUE(decode_oplog_args(args, 0, OPLOG_BATCH, batch));
    EXPECT_EQ(batch.size(), 3u);
    LogStore s(log, state, FsyncPolicy::never);
    ASSERT_EQ(s.open(), 0);
    ASSERT_EQ(s.append(batch), 0);
    EXPECT_EQ(slurp(log), "alice REGISTER 22/11/2026 22:38:16\nalice PUBLISH /a b.txt 22/11/2026 22:38:17\n"
                          "bob LIST_USERS\n");
    // The same entries again are duplicates: instance and seq were decoded too.
    LogBatch again;
    ASSERT_TRUE(decode_oplog_args(args, 0, OPLOG_BATCH, again));
    ASSERT_EQ(s.append(again), 0);
    EXPECT_EQ(s.duplicates(), 3u);
}

TEST_F(StoreTest, OneEntryCallDecodes)
{
    const std::string args = batch_args({wire_entry("carol", "CONNECT", "", "22/11/2026 22:38:16", 9)});
    LogBatch batch;
    ASSERT_TRUE(decode_oplog_args(std::string_view(args).substr(4), 0, OPLOG_ENTRY, batch));  // no count
    EXPECT_EQ(batch.size(), 1u);
    LogBatch wrong;
    EXPECT_FALSE(decode_oplog_args(args, 0, 99, wrong));  // not an operation-log procedure
}

TEST_F(StoreTest, ArgumentsOutsideTheCapsOrCutShortAreRefused)
{
    const std::string args = batch_args({wire_entry("alice", "REGISTER", "", "22/11/2026 22:38:16", 1),
                                         wire_entry("alice", "PUBLISH", "/x", "22/11/2026 22:38:17", 2)});
    for (std::size_t cut = 0; cut < args.size(); ++cut) {
        LogBatch batch;
        EXPECT_FALSE(decode_oplog_args(args.substr(0, cut), 0, OPLOG_BATCH, batch)) << "cut at " << cut;
    }
    LogBatch batch;
    EXPECT_FALSE(decode_oplog_args(args, args.size() + 1, OPLOG_BATCH, batch));  // offset past the end
    // A count over OPLOG_MAX_BATCH, followed by enough bytes for it: refused by the cap.
    std::string over(4, '\0');
    const std::uint32_t n = htonl(OPLOG_MAX_BATCH + 1);
    std::memcpy(over.data(), &n, 4);
    over += std::string(static_cast<std::size_t>(OPLOG_MAX_BATCH + 1) * 32, '\0');
    LogBatch big;
    EXPECT_FALSE(decode_oplog_args(over, 0, OPLOG_BATCH, big));
    // The longest name decodes; one byte more (which no encoder writes: the length and
    // the padding byte patched) is refused.
    const std::string longest(OPLOG_MAX_NAME, 'n');
    std::string wire = batch_args({wire_entry(longest.c_str(), "REGISTER", "", "", 1)});
    LogBatch fits;
    EXPECT_TRUE(decode_oplog_args(wire, 0, OPLOG_BATCH, fits));
    static_assert(OPLOG_MAX_NAME % 4 == 3, "the name's padding holds the extra byte");
    const std::uint32_t len = htonl(OPLOG_MAX_NAME + 1);
    std::memcpy(wire.data() + 4, &len, 4);
    wire[8 + OPLOG_MAX_NAME] = 'n';
    LogBatch longer;
    EXPECT_FALSE(decode_oplog_args(wire, 0, OPLOG_BATCH, longer));
}

TEST_F(StoreTest, DuplicatesAreDroppedPerInstance)
{
    LogStore s(log, state, FsyncPolicy::batch);
    ASSERT_EQ(s.open(), 0);
    ASSERT_EQ(s.append({entry(1), entry(2)}), 0);
    ASSERT_EQ(s.append({entry(1), entry(2), entry(3)}), 0);  // a retried batch plus one new
    ASSERT_EQ(s.append({entry(1, "other", 0xb)}), 0);         // another tracker instance
    EXPECT_EQ(s.written(), 4u);
    EXPECT_EQ(s.duplicates(), 2u);
    EXPECT_EQ(slurp(log), "alice REGISTER 22/11/2026 22:38:16\nalice REGISTER 22/11/2026 22:38:16\n"
                          "alice REGISTER 22/11/2026 22:38:16\nother REGISTER 22/11/2026 22:38:16\n");
    // Out of order inside one batch: what is not above the last stored is dropped.
    ASSERT_EQ(s.append({entry(5, "five"), entry(4, "four"), entry(6, "six")}), 0);
    EXPECT_EQ(s.written(), 6u);
    EXPECT_EQ(s.duplicates(), 3u);
    EXPECT_NE(slurp(log).find("five REGISTER 22/11/2026 22:38:16\nsix REGISTER"), std::string::npos);
    EXPECT_EQ(slurp(log).find("four"), std::string::npos);
}

TEST_F(StoreTest, StateSurvivesARestart)
{
    {
        LogStore s(log, state, FsyncPolicy::never);
        ASSERT_EQ(s.open(), 0);
        ASSERT_EQ(s.append({entry(1), entry(2)}), 0);
    }
    LogStore again(log, state, FsyncPolicy::never);
    ASSERT_EQ(again.open(), 0);
    EXPECT_EQ(again.last_seq(0xa), 2u);
    ASSERT_EQ(again.append({entry(2), entry(3)}), 0);
    EXPECT_EQ(again.written(), 1u);
    EXPECT_EQ(again.duplicates(), 1u);
}

// kill -9 after the intent record and part of the lines: the batch is removed at
// start and counts as never stored, so its retry writes it once.
TEST_F(StoreTest, BatchCutShortIsTruncatedAtStart)
{
    {
        LogStore s(log, state, FsyncPolicy::never);
        ASSERT_EQ(s.open(), 0);
        ASSERT_EQ(s.append({entry(1)}), 0);
    }
    const std::string before = slurp(log);
    {
        std::ofstream j(state, std::ios::app);
        j << "J " << before.size() << " " << before.size() + 70 << " a:3\n";
        std::ofstream l(log, std::ios::app);
        l << "alice REGISTER 22/11/2026 22:38:16\nalice REGIS";  // the crash
    }
    LogStore s(log, state, FsyncPolicy::never);
    ASSERT_EQ(s.open(), 0);
    EXPECT_EQ(slurp(log), before);
    EXPECT_EQ(s.last_seq(0xa), 1u);
    ASSERT_EQ(s.append({entry(2), entry(3)}), 0);
    EXPECT_EQ(s.written(), 2u);
}

// kill -9 after the lines were written but before the reply: the batch is stored, and
// its retry is dropped.
TEST_F(StoreTest, CompleteBatchBeforeTheAckIsKept)
{
    {
        LogStore s(log, state, FsyncPolicy::never);
        ASSERT_EQ(s.open(), 0);
        ASSERT_EQ(s.append({entry(1), entry(2)}), 0);
    }  // no reply was sent
    LogStore s(log, state, FsyncPolicy::never);
    ASSERT_EQ(s.open(), 0);
    ASSERT_EQ(s.append({entry(1), entry(2)}), 0);
    EXPECT_EQ(s.written(), 0u);
    EXPECT_EQ(s.duplicates(), 2u);
}

TEST_F(StoreTest, TornJournalRecordIsIgnored)
{
    {
        LogStore s(log, state, FsyncPolicy::never);
        ASSERT_EQ(s.open(), 0);
        ASSERT_EQ(s.append({entry(1)}), 0);
    }
    {
        std::ofstream j(state, std::ios::app);
        j << "J 35 70 a:";  // no newline: torn
    }
    LogStore s(log, state, FsyncPolicy::never);
    ASSERT_EQ(s.open(), 0);
    EXPECT_EQ(s.last_seq(0xa), 1u);
}

TEST_F(StoreTest, ReopenAfterRotationWritesToTheNewFile)
{
    LogStore s(log, state, FsyncPolicy::batch);
    ASSERT_EQ(s.open(), 0);
    ASSERT_EQ(s.append({entry(1)}), 0);
    ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
    ASSERT_EQ(s.reopen(), 0);
    ASSERT_EQ(s.append({entry(2, "bob")}), 0);
    EXPECT_EQ(slurp(log + ".1"), "alice REGISTER 22/11/2026 22:38:16\n");
    EXPECT_EQ(slurp(log), "bob REGISTER 22/11/2026 22:38:16\n");
    // And the journal describes the new file: a restart neither truncates nor repeats.
    LogStore again(log, state, FsyncPolicy::batch);
    ASSERT_EQ(again.open(), 0);
    EXPECT_EQ(slurp(log), "bob REGISTER 22/11/2026 22:38:16\n");
    EXPECT_EQ(again.last_seq(0xa), 2u);
}

TEST_F(StoreTest, JournalIsCompacted)
{
    LogStore s(log, state, FsyncPolicy::never);
    ASSERT_EQ(s.open(), 0);
    for (std::uint64_t i = 1; i <= 40000; ++i)
        ASSERT_EQ(s.append({entry(i, "u", i % 7)}), 0);
    EXPECT_LT(slurp(state).size(), 2u << 20);
    LogStore again(log, state, FsyncPolicy::never);
    ASSERT_EQ(again.open(), 0);
    EXPECT_EQ(again.last_seq(0), 39998u);  // the last multiple of 7
    EXPECT_EQ(again.last_seq(6), 39997u);
    EXPECT_EQ(again.last_seq(2), 40000u);
}

TEST_F(StoreTest, UnwritableLogIsAClearError)
{
    LogStore s(dir + "/no/such/dir/ops.log", "", FsyncPolicy::batch);
    EXPECT_LT(s.open(), 0);
    EXPECT_NE(s.message().find("cannot open log file"), std::string::npos);
}

}  // namespace
}  // namespace peerdex
