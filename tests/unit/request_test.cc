#include "request.hh"

#include <gtest/gtest.h>

#include <vector>

namespace peerdex {
namespace {

std::string wire(std::initializer_list<std::string_view> fields)
{
    std::string s;
    for (auto f : fields) {
        s.append(f);
        s.push_back('\0');
    }
    return s;
}

struct Parsed {
    RequestParser::Result result;
    Op op;
    bool has_ts;
    std::string ts;
    std::vector<std::string> fields;
};

// Feeds every chunk, collecting every outcome other than need_more.
std::vector<Parsed> parse(const std::vector<std::string>& chunks, Dialect dialect = Dialect::v1,
                          std::vector<ContentMeta>* metas = nullptr)
{
    RequestParser parser;
    parser.set_dialect(dialect);
    std::vector<Parsed> out;
    for (const auto& c : chunks) {
        const char* p = c.data();
        const char* end = p + c.size();
        while (p < end) {
            auto r = parser.feed(p, end);
            if (r == RequestParser::Result::need_more)
                continue;
            Parsed o{r, parser.op(), false, {}, {}};
            if (r == RequestParser::Result::request) {
                const Request& q = parser.request();
                o.has_ts = q.has_timestamp;
                o.ts = q.timestamp;
                for (int i = 0; i < spec(q.op, dialect).field_count; ++i)
                    o.fields.push_back(q.fields[i]);
                if (metas)
                    metas->push_back(q.meta);
            }
            out.push_back(o);
            if (r != RequestParser::Result::request)
                return out;
        }
    }
    return out;
}

const char* kTs = "22/11/2026 22:38:16";

TEST(RequestParser, EveryOperationWithAndWithoutTimestamp)
{
    struct Case {
        std::vector<std::string_view> fields;
        Op op;
    } cases[] = {
        {{"HELLO", "peerdex/1"}, Op::hello},
        {{"REGISTER", "alice"}, Op::register_user},
        {{"UNREGISTER", "alice"}, Op::unregister_user},
        {{"CONNECT", "alice", "4000"}, Op::connect},
        {{"PUBLISH", "alice", "/f", "a description"}, Op::publish},
        {{"DELETE", "alice", "/f"}, Op::remove},
        {{"LIST_USERS", "alice"}, Op::list_users},
        {{"LIST_CONTENT", "alice", "bob"}, Op::list_content},
        {{"DISCONNECT", "alice"}, Op::disconnect},
        {{"GET_USER_INFO", "alice", "bob"}, Op::get_user_info},
    };
    for (const auto& c : cases) {
        for (bool with_ts : {false, true}) {
            std::string in;
            for (std::size_t i = 0; i < c.fields.size(); ++i) {
                in += wire({c.fields[i]});
                if (i == 0 && with_ts)
                    in += wire({kTs});
            }
            auto got = parse({in});
            ASSERT_EQ(got.size(), 1u) << c.fields[0];
            EXPECT_EQ(got[0].result, RequestParser::Result::request) << c.fields[0];
            EXPECT_EQ(got[0].op, c.op);
            EXPECT_EQ(got[0].has_ts, with_ts);
            if (with_ts) {
                EXPECT_EQ(got[0].ts, kTs);
            }
            EXPECT_EQ(got[0].fields, std::vector<std::string>(c.fields.begin() + 1, c.fields.end()));
        }
    }
}

TEST(RequestParser, SplitAtEveryByteBoundaryAndBatched)
{
    const std::string in = wire({"PUBLISH", kTs, "alice", "/x/y", "d e"}) + wire({"LIST_USERS", "alice"}) +
                           wire({"CONNECT", "alice", "65535"});
    for (std::size_t a = 0; a <= in.size(); ++a) {
        for (std::size_t b = a; b <= in.size(); b += 7) {
            auto got = parse({in.substr(0, a), in.substr(a, b - a), in.substr(b)});
            ASSERT_EQ(got.size(), 3u) << a << "," << b;
            EXPECT_EQ(got[0].op, Op::publish);
            EXPECT_TRUE(got[0].has_ts);
            EXPECT_EQ(got[0].fields, (std::vector<std::string>{"alice", "/x/y", "d e"}));
            EXPECT_EQ(got[1].op, Op::list_users);
            EXPECT_FALSE(got[1].has_ts);
            EXPECT_EQ(got[2].fields, (std::vector<std::string>{"alice", "65535"}));
        }
    }
}

TEST(RequestParser, UnknownOperations)
{
    for (const std::string& op : std::vector<std::string>{"BOGUS", "register", "", "GET_FILE", "REGISTERX", std::string(100, 'A')}) {
        auto got = parse({op + std::string(1, '\0') + "alice" + std::string(1, '\0')});
        ASSERT_EQ(got.size(), 1u) << op;
        EXPECT_EQ(got[0].result, RequestParser::Result::unknown_op) << op;
    }
}

TEST(RequestParser, MalformedFieldsGetTheGenericError)
{
    const std::string long_name(256, 'a');
    const std::vector<std::vector<std::string_view>> bad = {
        {"REGISTER", ""},
        {"REGISTER", long_name},
        {"REGISTER", "al ice"},
        {"REGISTER", "tab\tname"},
        {"REGISTER", "del\x7f"},
        {"REGISTER", kTs, kTs},  // a name shaped like a timestamp
        {"CONNECT", "alice", "0"},
        {"CONNECT", "alice", "65536"},
        {"CONNECT", "alice", "12ab"},
        {"CONNECT", "alice", "-1"},
        {"CONNECT", "alice", ""},
        {"CONNECT", "alice", "000000065535"},
        {"PUBLISH", "alice", "", "d"},
        {"PUBLISH", "alice", "/a b", "d"},
        {"PUBLISH", "alice", "/a", "line\nbreak"},
        {"PUBLISH", "alice", "/a", long_name},
        {"DELETE", "alice", long_name},
        {"LIST_CONTENT", "alice", ""},
        {"GET_USER_INFO", "alice", "\x01"},
    };
    for (const auto& fields : bad) {
        std::string in;
        for (auto f : fields)
            in += wire({f});
        auto got = parse({in});
        ASSERT_EQ(got.size(), 1u) << fields[0] << " " << fields.back();
        EXPECT_EQ(got[0].result, RequestParser::Result::malformed) << fields[0] << " " << fields.back();
        EXPECT_EQ(op_name(got[0].op), fields[0]);
    }
}

TEST(RequestParser, GenericErrorCodesFollowTheProtocolTable)
{
    EXPECT_EQ(spec(Op::register_user).generic_error, 2);
    EXPECT_EQ(spec(Op::unregister_user).generic_error, 2);
    EXPECT_EQ(spec(Op::connect).generic_error, 3);
    EXPECT_EQ(spec(Op::publish).generic_error, 4);
    EXPECT_EQ(spec(Op::remove).generic_error, 4);
    EXPECT_EQ(spec(Op::list_users).generic_error, 3);
    EXPECT_EQ(spec(Op::list_content).generic_error, 4);
    EXPECT_EQ(spec(Op::disconnect).generic_error, 3);
    EXPECT_EQ(spec(Op::get_user_info).generic_error, 4);
}

TEST(RequestParser, LongestValidFieldsPass)
{
    const std::string name(255, 'n');
    auto got = parse({wire({"PUBLISH", kTs, name, name, name})});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, RequestParser::Result::request);
    EXPECT_EQ(got[0].fields, (std::vector<std::string>{name, name, name}));
}

TEST(RequestParser, InProgressAndOpKnown)
{
    RequestParser parser;
    std::string in = wire({"REGISTER"});
    const char* p = in.data();
    EXPECT_FALSE(parser.in_progress());
    EXPECT_EQ(parser.feed(p, in.data() + in.size()), RequestParser::Result::need_more);
    EXPECT_TRUE(parser.in_progress());
    EXPECT_TRUE(parser.op_known());
    EXPECT_EQ(parser.op(), Op::register_user);
}

const char* const kId = "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827";

// peerdex-protocol(7), SESSIONS: PUBLISH in a peerdex/2 session has a size and an id field.
TEST(RequestParserV2, PublishCarriesSizeAndId)
{
    std::vector<ContentMeta> metas;
    const std::string upper = "sha256:8A2A5C9B768827DE5A9552C38A044C66959C68F6D2F21B5260AF54D2F87DB827";
    auto got = parse({wire({"PUBLISH", kTs, "alice", "/f", "d", "5", kId}) + wire({"PUBLISH", "alice", "/g", "", "", ""}) +
                      wire({"PUBLISH", "alice", "/h", "d", "0", ""}) +
                      wire({"PUBLISH", "alice", "/i", "d", "9223372036854775807", upper}) +
                      wire({"LIST_CONTENT", "alice", "bob"})},
                     Dialect::v2, &metas);
    ASSERT_EQ(got.size(), 5u);
    for (const Parsed& p : got)
        EXPECT_EQ(p.result, RequestParser::Result::request);
    EXPECT_EQ(got[0].fields, (std::vector<std::string>{"alice", "/f", "d", "5", kId}));
    EXPECT_TRUE(got[0].has_ts);
    ASSERT_EQ(metas.size(), 5u);
    EXPECT_TRUE(metas[0].has_size && metas[0].has_id);
    EXPECT_EQ(metas[0].size, 5u);
    EXPECT_EQ(content_id_text(metas[0].id), kId);
    EXPECT_EQ(metas[1], kUnknownContent);  // both empty: unknown
    EXPECT_TRUE(metas[2].has_size && !metas[2].has_id);
    EXPECT_EQ(metas[2].size, 0u);
    EXPECT_EQ(metas[3].size, 9223372036854775807u);
    EXPECT_EQ(content_id_text(metas[3].id), kId);  // either case in, lowercase out
    EXPECT_EQ(metas[4], kUnknownContent);          // not a PUBLISH: nothing left over
    EXPECT_EQ(got[4].fields, (std::vector<std::string>{"alice", "bob"}));
}

TEST(RequestParserV2, EveryBadSizeOrIdIsMalformed)
{
    const std::string upper_prefix = std::string("SHA256:") + (kId + 7);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"-1", ""},
        {"+5", ""},
        {"05", ""},
        {"00", ""},
        {" 5", ""},
        {"5 ", ""},
        {"1e3", ""},
        {"0x10", ""},
        {"9223372036854775808", ""},   // 2^63
        {"18446744073709551616", ""},  // 2^64, 20 digits
        {"99999999999999999999", ""},
        {"", kId},                      // an id without a size
        {"5", std::string(kId).substr(0, 70)},
        {"5", std::string(kId) + "0"},
        {"5", "sha1:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827"},
        {"5", upper_prefix},
        {"5", std::string(kId).replace(10, 1, "g")},
        {"5", "sha256:"},
        {"5", " "},
    };
    for (const auto& [size, id] : bad) {
        auto got = parse({wire({"PUBLISH", "alice", "/f", "d", size, id}) + wire({"REGISTER", "never"})}, Dialect::v2);
        ASSERT_EQ(got.size(), 1u) << size << " " << id;
        EXPECT_EQ(got[0].result, RequestParser::Result::malformed) << "size '" << size << "' id '" << id << "'";
        EXPECT_EQ(got[0].op, Op::publish);
        EXPECT_EQ(result_code(Op::publish, Outcome::failed), 4);
    }
}

// Canonical connections and peerdex/1 sessions: PUBLISH has its three fields, no more.
TEST(RequestParserV2, OtherDialectsKeepThreeFields)
{
    auto got = parse({wire({"PUBLISH", "alice", "/f", "d"}) + wire({"REGISTER", "5"})});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].fields, (std::vector<std::string>{"alice", "/f", "d"}));
    EXPECT_EQ(got[1].op, Op::register_user);
    // ... and a peerdex/2 PUBLISH split at every byte is the same request.
    const std::string in = wire({"PUBLISH", "alice", "/f", "d", "123", kId});
    for (std::size_t a = 0; a <= in.size(); ++a) {
        std::vector<ContentMeta> metas;
        got = parse({in.substr(0, a), in.substr(a)}, Dialect::v2, &metas);
        ASSERT_EQ(got.size(), 1u) << a;
        ASSERT_EQ(metas.size(), 1u) << a;
        EXPECT_EQ(metas[0].size, 123u) << a;
    }
}

// SOURCES is peerdex/2's alone: elsewhere it is an unknown OP, closed without reply.
TEST(RequestParserV2, SourcesOnlyInPeerdex2)
{
    const std::string in = wire({"SOURCES", "alice", kId, "10"});
    for (std::size_t a = 0; a <= in.size(); ++a) {
        auto got = parse({in.substr(0, a), in.substr(a) + wire({"SOURCES", kTs, "bob", "junk", "x"})}, Dialect::v2);
        ASSERT_EQ(got.size(), 2u) << a;
        EXPECT_EQ(got[0].result, RequestParser::Result::request);
        EXPECT_EQ(got[0].op, Op::sources);
        EXPECT_EQ(got[0].fields, (std::vector<std::string>{"alice", kId, "10"}));
        // A wrong id or limit is the operation's to judge (code 3 after the requester's checks).
        EXPECT_EQ(got[1].result, RequestParser::Result::request);
        EXPECT_TRUE(got[1].has_ts);
        EXPECT_EQ(got[1].fields, (std::vector<std::string>{"bob", "junk", "x"}));
    }
    auto got = parse({in});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, RequestParser::Result::unknown_op);
    // An id longer than its read cap is malformed: code 3, and the connection closes.
    got = parse({wire({"SOURCES", "alice", std::string(kMaxWantedIdReadBytes + 1, 'a'), "10"})}, Dialect::v2);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, RequestParser::Result::malformed);
    EXPECT_EQ(spec(Op::sources).generic_error, 3);
    EXPECT_EQ(result_code(Op::sources, Outcome::no_such_user), 1);
    EXPECT_EQ(result_code(Op::sources, Outcome::not_connected), 2);
    EXPECT_EQ(result_code(Op::sources, Outcome::failed), 3);
}

TEST(FieldProblem, SaysWhichLimitWasBroken)
{
    EXPECT_EQ(field_problem(FieldKind::description, std::string(255, 'd')), "");
    EXPECT_EQ(field_problem(FieldKind::description, std::string(300, 'd')),
              "is 300 bytes long; the protocol allows at most 255");
    EXPECT_EQ(field_problem(FieldKind::user, ""), "is empty");
    EXPECT_EQ(field_problem(FieldKind::path, "/my notes.txt"),
              "contains a space; the protocol allows none in user names and paths");
    EXPECT_NE(field_problem(FieldKind::user, "22/11/2026 22:38:16").find("timestamp"), std::string::npos);
    EXPECT_NE(field_problem(FieldKind::description, "a\tb").find("control"), std::string::npos);
    EXPECT_EQ(field_problem(FieldKind::port, "0"), "is not a port number from 1 to 65535");
    for (const char* v : {"", "x", "/a b", "22/11/2026 22:38:16"})
        EXPECT_EQ(field_valid(FieldKind::user, v), field_problem(FieldKind::user, v).empty()) << v;
}

TEST(ResultCode, EveryCodeOfTheProtocolTable)
{
    using O = Outcome;
    // (op, outcome, code) for every line of peerdex-protocol(7), TRACKER REQUESTS.
    const struct {
        Op op;
        O outcome;
        int code;
    } table[] = {
        {Op::register_user, O::ok, 0},       {Op::register_user, O::name_in_use, 1},
        {Op::register_user, O::failed, 2},   {Op::unregister_user, O::ok, 0},
        {Op::unregister_user, O::no_such_user, 1}, {Op::unregister_user, O::failed, 2},
        {Op::connect, O::ok, 0},             {Op::connect, O::no_such_user, 1},
        {Op::connect, O::already_connected, 2}, {Op::connect, O::failed, 3},
        {Op::publish, O::ok, 0},             {Op::publish, O::no_such_user, 1},
        {Op::publish, O::not_connected, 2},  {Op::publish, O::already_published, 3},
        {Op::publish, O::failed, 4},         {Op::remove, O::ok, 0},
        {Op::remove, O::no_such_user, 1},    {Op::remove, O::not_connected, 2},
        {Op::remove, O::not_published, 3},   {Op::remove, O::failed, 4},
        {Op::list_users, O::ok, 0},          {Op::list_users, O::no_such_user, 1},
        {Op::list_users, O::not_connected, 2}, {Op::list_users, O::failed, 3},
        {Op::list_content, O::ok, 0},        {Op::list_content, O::no_such_user, 1},
        {Op::list_content, O::not_connected, 2}, {Op::list_content, O::no_such_target, 3},
        {Op::list_content, O::failed, 4},    {Op::disconnect, O::ok, 0},
        {Op::disconnect, O::no_such_user, 1}, {Op::disconnect, O::not_connected, 2},
        {Op::disconnect, O::failed, 3},      {Op::get_user_info, O::ok, 0},
        {Op::get_user_info, O::no_such_user, 1}, {Op::get_user_info, O::not_connected, 2},
        {Op::get_user_info, O::no_such_target, 3}, {Op::get_user_info, O::target_offline, 3},
        {Op::get_user_info, O::failed, 4},
    };
    for (const auto& t : table)
        EXPECT_EQ(result_code(t.op, t.outcome), t.code) << op_name(t.op) << " " << static_cast<int>(t.outcome);
    // An outcome an operation cannot have is its generic error, never another code.
    EXPECT_EQ(result_code(Op::register_user, O::not_connected), 2);
    EXPECT_EQ(result_code(Op::connect, O::not_connected), 3);
    EXPECT_EQ(result_code(Op::list_users, O::no_such_target), 3);
    EXPECT_EQ(result_code(Op::disconnect, O::already_published), 3);
}

}  // namespace
}  // namespace peerdex
