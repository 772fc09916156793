// How each operation's answer is encoded (answer.hh): the head of every kind of answer and
// list entries in chunks. The code for each outcome is result_code's (request_test.cc).
#include "answer.hh"

#include <gtest/gtest.h>

#include "addresses.hh"

namespace peerdex {
namespace {

using namespace std::string_literals;

class FixedList final : public ListStream {
public:
    explicit FixedList(std::size_t n) : n_(n) {}
    std::size_t count() const override { return n_; }
    Pull pull(ListSink&, Wakeup) override { return Pull::end; }

private:
    std::size_t n_;
};

TEST(Answer, CodesFollowTheOperation)
{
    std::string out;
    StoreReply r;
    r.outcome = Outcome::name_in_use;
    EXPECT_EQ(encode_answer(out, Op::register_user, r), 1);
    r.outcome = Outcome::not_connected;
    EXPECT_EQ(encode_answer(out, Op::publish, r), 2);
    r.outcome = Outcome::failed;
    EXPECT_EQ(encode_answer(out, Op::list_users, r), spec(Op::list_users).generic_error);
    EXPECT_EQ(out, "\x01\x02"s + static_cast<char>(spec(Op::list_users).generic_error));
}

TEST(Answer, HelloCarriesTheVersion)
{
    std::string out;
    EXPECT_EQ(encode_answer(out, Op::hello, StoreReply{}), 0);
    EXPECT_EQ(out, "\0peerdex/1\0"s);
    out.clear();
    StoreReply refused;
    refused.outcome = Outcome::failed;
    encode_answer(out, Op::hello, refused);
    EXPECT_EQ(out, std::string(1, static_cast<char>(spec(Op::hello).generic_error)));
}

TEST(Answer, ListHeadIsCodeThenCount)
{
    std::string out;
    StoreReply r;
    r.list = std::make_unique<FixedList>(12);
    EXPECT_EQ(encode_answer(out, Op::list_content, r), 0);
    EXPECT_EQ(out, "\x00"s "12\0"s);
}

TEST(Answer, UserInfoIsCodeIpPort)
{
    StoreReply r;
    r.ip = test::ipv4("10.1.2.3");
    r.port = 4321;
    std::string out;
    EXPECT_EQ(encode_answer(out, Op::get_user_info, r), 0);
    EXPECT_EQ(out, "\x00"s "10.1.2.3\0"s "4321\0"s);
    // Refused: the code alone.
    out.clear();
    r.outcome = Outcome::target_offline;
    EXPECT_EQ(encode_answer(out, Op::get_user_info, r), 3);
    EXPECT_EQ(out, "\x03");
}

TEST(Answer, ListEntriesFillChunksOfTheLimit)
{
    std::string out = "head";
    ListEncoder enc(out, 20);
    EXPECT_FALSE(enc.full());
    enc.user("bob", test::ipv4("127.0.0.1"), 7);
    EXPECT_EQ(out, "headbob\0"s "127.0.0.1\0"s "7\0"s);
    EXPECT_TRUE(enc.full());
    out.clear();
    ListEncoder paths(out, 100);
    paths.content("/a/b", "a description is not listed", kUnknownContent);
    EXPECT_EQ(out, "/a/b\0"s);
}

const char* const kId = "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827";

ContentMeta meta(const std::string& size, const std::string& id = "")
{
    ContentMeta m;
    EXPECT_TRUE(parse_content_meta(size, id, m)) << size << " " << id;
    return m;
}

TEST(Answer, HelloAnswersTheVersionOfItsDialect)
{
    std::string out;
    EXPECT_EQ(encode_answer(out, Op::hello, StoreReply{}, Dialect::v2), 0);
    EXPECT_EQ(out, "\0peerdex/2\0"s);
    out.clear();
    EXPECT_EQ(encode_answer(out, Op::hello, StoreReply{}, Dialect::v1), 0);
    EXPECT_EQ(out, "\0peerdex/1\0"s);
}

// peerdex-protocol(7), SESSIONS: LIST_CONTENT's entry is path, description, size, id in
// peerdex/2, the path alone otherwise, whatever is known of the file.
TEST(Answer, ContentEntriesOfEachDialect)
{
    const ContentMeta both = meta("5", kId), size_only = meta("0");
    std::string out;
    ListEncoder v2(out, 1000, Dialect::v2);
    v2.content("/a", "notes", both);
    v2.content("/b", "", size_only);
    v2.content("/c", "old", kUnknownContent);
    EXPECT_EQ(out, "/a\0notes\0" "5\0"s + kId + "\0" "/b\0\0" "0\0\0" "/c\0old\0\0\0"s);
    out.clear();
    ListEncoder v1(out, 1000, Dialect::v1);
    v1.content("/a", "notes", both);
    v1.content("/c", "old", kUnknownContent);
    EXPECT_EQ(out, "/a\0/c\0"s);
}

TEST(Answer, SearchHitsOfEachDialect)
{
    const ContentMeta big = meta("9223372036854775807", kId);
    const std::string head = "bob\0" "127.0.0.1\0" "35911\0" "/m/Song.ogg\0" "live\0"s;
    std::string out;
    ListEncoder v2(out, 1000, Dialect::v2);
    v2.hit("bob", test::ipv4("127.0.0.1"), 35911, "/m/Song.ogg", "live", big);
    v2.hit("bob", test::ipv4("127.0.0.1"), 35911, "/m/Song.ogg", "live", kUnknownContent);
    EXPECT_EQ(out, head + "9223372036854775807\0"s + kId + "\0"s + head + "\0\0"s);
    out.clear();
    ListEncoder v1(out, 1000);  // canonical connections and peerdex/1: today's bytes
    v1.hit("bob", test::ipv4("127.0.0.1"), 35911, "/m/Song.ogg", "live", big);
    EXPECT_EQ(out, head);
}

// SEARCH's answer holds its hits' strings in one buffer, which grows as hits are added:
// every hit still gives its own strings after the buffer has moved, empty ones included,
// and the stream gives them in order. A short answer (its buffer inside the string
// itself) moved into its stream too.
TEST(Answer, SearchHitsKeepTheirStringsAsTheAnswerGrows)
{
    SearchHits hits;
    const ContentMeta sized = meta("7", "");
    for (int i = 0; i < 1000; ++i)
        hits.add("u" + std::to_string(i), test::ipv4("127.0.0.1"), static_cast<std::uint16_t>(1000 + i),
                 "/p/" + std::to_string(i) + ".ogg", i % 2 ? "d" + std::to_string(i) : "",
                 i % 3 ? sized : kUnknownContent);
    ASSERT_EQ(hits.size(), 1000u);
    for (int i = 0; i < 1000; ++i) {
        const SearchHit h = hits[static_cast<std::size_t>(i)];
        EXPECT_EQ(h.user, "u" + std::to_string(i));
        EXPECT_EQ(h.port, 1000 + i);
        EXPECT_EQ(h.path, "/p/" + std::to_string(i) + ".ogg");
        EXPECT_EQ(h.description, i % 2 ? "d" + std::to_string(i) : "");
        EXPECT_EQ(h.meta, i % 3 ? sized : kUnknownContent);
    }
    std::string out;
    HitStream stream(std::move(hits));
    ListEncoder enc(out, 1000);
    EXPECT_EQ(stream.pull(enc, {}), ListStream::Pull::more);  // the encoder's window is full
    const std::string first = "u0\0" "127.0.0.1\0" "1000\0" "/p/0.ogg\0" "\0" "u1\0" "127.0.0.1\0" "1001\0"s;
    EXPECT_EQ(out.substr(0, first.size()), first);

    SearchHits small;
    small.add("a", test::ipv4("127.0.0.1"), 7, "/b", "", kUnknownContent);
    out.clear();
    HitStream short_stream(std::move(small));
    ListEncoder enc2(out, 1000);
    EXPECT_EQ(short_stream.pull(enc2, {}), ListStream::Pull::end);
    EXPECT_EQ(out, "a\0" "127.0.0.1\0" "7\0" "/b\0" "\0"s);
}

// SOURCES: the count, then user, ip, port, path and size per source.
TEST(Answer, SourcesCountAndEntries)
{
    std::string out;
    StoreReply r;
    std::vector<ContentSource> sources{{"bob", test::ipv4("127.0.0.1"), 35911, "/m/Song.ogg", 5},
                                       {"carol", test::ipv4("10.0.0.2"), 4000, "/a", 9223372036854775807u}};
    r.list = std::make_unique<SourceStream>(std::move(sources));
    EXPECT_EQ(encode_answer(out, Op::sources, r, Dialect::v2), 0);
    ListEncoder enc(out, 1000, Dialect::v2);
    EXPECT_EQ(r.list->pull(enc, {}), ListStream::Pull::end);
    EXPECT_EQ(out, "\0" "2\0" "bob\0" "127.0.0.1\0" "35911\0" "/m/Song.ogg\0" "5\0"
                   "carol\0" "10.0.0.2\0" "4000\0" "/a\0" "9223372036854775807\0"s);
    out.clear();
    r.outcome = Outcome::failed;
    EXPECT_EQ(encode_answer(out, Op::sources, r, Dialect::v2), 3);
    EXPECT_EQ(out, "\x03"s);
}

}  // namespace
}  // namespace peerdex
