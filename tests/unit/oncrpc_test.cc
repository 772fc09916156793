#include "oncrpc.hh"

#include <gtest/gtest.h>

#include <vector>

#include "oplog.h"

namespace peerdex::oncrpc {
namespace {

xdrproc_t entry_proc()
{
    return reinterpret_cast<xdrproc_t>(reinterpret_cast<void*>(xdr_oplog_entry));
}

std::string sample_call(std::uint32_t xid)
{
    char user[] = "alice", op[] = "PUBLISH", path[] = "/home/alice/notes.txt", ts[] = "22/11/2026 22:38:20";
    oplog_entry e{user, op, path, ts, 0xabcdefULL, 42};
    std::string out;
    EXPECT_TRUE(append_call(out, xid, OPLOG_PROG, OPLOG_VERS, OPLOG_ENTRY, entry_proc(), &e));
    return out;
}

std::vector<std::string> records(const std::string& stream, std::size_t cut)
{
    RecordReader reader;
    std::vector<std::string> out;
    for (auto part : {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)}) {
        const char* p = part.data();
        const char* end = p + part.size();
        while (p < end)
            if (reader.next(p, end) == RecordReader::Status::record)
                out.emplace_back(reader.record());
    }
    return out;
}

TEST(OncRpc, CallRoundTripThroughTheRpcgenRoutines)
{
    const std::string wire = sample_call(7);
    auto recs = records(wire, 0);
    ASSERT_EQ(recs.size(), 1u);
    auto call = decode_call(recs[0]);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->xid, 7u);
    EXPECT_EQ(call->rpcvers, 2u);
    EXPECT_EQ(call->prog, static_cast<std::uint32_t>(OPLOG_PROG));
    EXPECT_EQ(call->vers, static_cast<std::uint32_t>(OPLOG_VERS));
    EXPECT_EQ(call->proc, static_cast<std::uint32_t>(OPLOG_ENTRY));
    oplog_entry e{};
    ASSERT_TRUE(decode_body(recs[0], call->args_offset, entry_proc(), &e));
    EXPECT_STREQ(e.user, "alice");
    EXPECT_STREQ(e.path, "/home/alice/notes.txt");
    EXPECT_EQ(e.instance, 0xabcdefULL);
    EXPECT_EQ(e.seq, 42u);
    xdr_free(entry_proc(), reinterpret_cast<char*>(&e));
}

TEST(OncRpc, RecordsSplitAtEveryByteAndBackToBack)
{
    const std::string wire = sample_call(1) + sample_call(2);
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        auto recs = records(wire, cut);
        ASSERT_EQ(recs.size(), 2u) << cut;
        EXPECT_EQ(decode_call(recs[1])->xid, 2u);
    }
}

TEST(OncRpc, MultiFragmentRecordIsReassembled)
{
    const std::string one = sample_call(9);
    const std::string body = one.substr(4);
    // Same body in three fragments, only the last with the high bit.
    auto mark = [](std::uint32_t v) {
        return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                           static_cast<char>(v)};
    };
    const std::string wire = mark(10) + body.substr(0, 10) + mark(5) + body.substr(10, 5) +
                             mark(0x80000000u | static_cast<std::uint32_t>(body.size() - 15)) + body.substr(15);
    auto recs = records(wire, 3);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0], body);
}

TEST(OncRpc, OversizedRecordIsRefusedBeforeBuffering)
{
    RecordReader reader(1024);
    const std::string wire("\x80\x00\x04\x01", 4);  // 1025 bytes announced
    const char* p = wire.data();
    EXPECT_EQ(reader.next(p, p + wire.size()), RecordReader::Status::too_large);
}

TEST(OncRpc, MalformedHeadersAreRejected)
{
    EXPECT_FALSE(decode_call(""));
    EXPECT_FALSE(decode_call(std::string(8, '\0') + "\0\0\0\1"));  // a REPLY, not a CALL
    std::string call = sample_call(3).substr(4);
    EXPECT_FALSE(decode_call(call.substr(0, 30)));  // truncated inside the header
    // An authenticator claiming more than 400 bytes.
    std::string bad = call;
    bad[24 + 4] = '\x01';
    bad[24 + 5] = '\x00';
    EXPECT_FALSE(decode_call(bad));
}

TEST(OncRpc, HugeStringLengthFailsToDecode)
{
    std::string rec = sample_call(4).substr(4);
    auto call = decode_call(rec);
    ASSERT_TRUE(call);
    // Overwrite the user string's length with 4 GB.
    for (int i = 0; i < 4; ++i)
        rec[call->args_offset + i] = '\xff';
    oplog_entry e{};
    EXPECT_FALSE(decode_body(rec, call->args_offset, entry_proc(), &e));
    xdr_free(entry_proc(), reinterpret_cast<char*>(&e));
}

TEST(OncRpc, RepliesRoundTrip)
{
    std::string out;
    const oplog_status ok = OPLOG_OK;
    ASSERT_TRUE(append_reply(out, 5, SUCCESS, reinterpret_cast<xdrproc_t>(xdr_oplog_status), &ok));
    append_reply(out, 6, PROG_MISMATCH, nullptr, nullptr, 1, 1);
    append_rpc_mismatch(out, 7);
    auto recs = records(out, 0);
    ASSERT_EQ(recs.size(), 3u);
    auto r = decode_reply(recs[0]);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->accepted);
    EXPECT_EQ(r->stat, static_cast<std::uint32_t>(SUCCESS));
    oplog_status st = OPLOG_ERROR;
    ASSERT_TRUE(decode_body(recs[0], r->results_offset, reinterpret_cast<xdrproc_t>(xdr_oplog_status), &st));
    EXPECT_EQ(st, OPLOG_OK);
    EXPECT_EQ(decode_reply(recs[1])->stat, static_cast<std::uint32_t>(PROG_MISMATCH));
    EXPECT_FALSE(decode_reply(recs[2])->accepted);
}

}  // namespace
}  // namespace peerdex::oncrpc
