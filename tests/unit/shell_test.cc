#include <gtest/gtest.h>

#include "command.hh"
#include "reply.hh"

namespace peerdex {
namespace {

TEST(ParseLine, CommandWordIsCaseInsensitiveArgumentsAreNot)
{
    auto p = parse_line("  register   Alice \r\n");
    ASSERT_EQ(p.kind, ParsedLine::Kind::command);
    EXPECT_EQ(p.command, Command::register_user);
    EXPECT_EQ(p.args, std::vector<std::string>{"Alice"});
    EXPECT_EQ(parse_line("LiSt_UsErS").command, Command::list_users);
    EXPECT_EQ(parse_line("").kind, ParsedLine::Kind::empty);
    EXPECT_EQ(parse_line(" \t ").kind, ParsedLine::Kind::empty);
}

TEST(ParseLine, PublishKeepsTheDescriptionsSpaces)
{
    auto p = parse_line("PUBLISH /tmp/a.txt   my   notes, v2 ");
    ASSERT_EQ(p.kind, ParsedLine::Kind::command);
    EXPECT_EQ(p.args, (std::vector<std::string>{"/tmp/a.txt", "my   notes, v2"}));
    EXPECT_EQ(parse_line("PUBLISH /tmp/a.txt").kind, ParsedLine::Kind::syntax_error);
}

TEST(ParseLine, SearchKeepsItsQueryAndGetTakesOneOrTwo)
{
    auto p = parse_line("search  Song_2   -live ");
    ASSERT_EQ(p.kind, ParsedLine::Kind::command);
    EXPECT_EQ(p.command, Command::search);
    EXPECT_EQ(p.args, std::vector<std::string>{"Song_2   -live"});
    EXPECT_EQ(parse_line("SEARCH").kind, ParsedLine::Kind::syntax_error);
    p = parse_line("GET 2 /tmp/x");
    ASSERT_EQ(p.kind, ParsedLine::Kind::command);
    EXPECT_EQ(p.command, Command::get);
    EXPECT_EQ(p.args, (std::vector<std::string>{"2", "/tmp/x"}));
    EXPECT_EQ(parse_line("GET 1").args, std::vector<std::string>{"1"});
    EXPECT_EQ(parse_line("GET").kind, ParsedLine::Kind::syntax_error);
    EXPECT_EQ(parse_line("GET 1 a b").kind, ParsedLine::Kind::syntax_error);
    EXPECT_EQ(result_line(Command::search, 2), "c> SEARCH FAIL, USER NOT CONNECTED");
    EXPECT_EQ(result_line(Command::search, 3), "c> SEARCH FAIL");
    EXPECT_TRUE(complete("GET 1 ", "x", {}).files);
}

TEST(ParseLine, WrongArgumentCountsAndUnknownWords)
{
    for (const char* bad : {"REGISTER", "REGISTER a b", "CONNECT", "LIST_USERS x", "GET_FILE a b", "QUIT now",
                            "DELETE", "LIST_CONTENT"}) {
        EXPECT_EQ(parse_line(bad).kind, ParsedLine::Kind::syntax_error) << bad;
    }
    auto p = parse_line("FETCH x");
    EXPECT_EQ(p.kind, ParsedLine::Kind::unknown);
    EXPECT_EQ(unknown_command_line(p.word), "c> Error: command FETCH not valid.");
    EXPECT_EQ(syntax_error_line(Command::get_file), "c> Syntax error. Usage: GET_FILE <user> <remote path> <local path>");
    EXPECT_EQ(syntax_error_line(Command::list_users), "c> Syntax error. Usage: LIST_USERS");
}

TEST(ParseLine, StatsAndHelpTakeNoArguments)
{
    EXPECT_EQ(parse_line("stats").command, Command::stats);
    EXPECT_EQ(parse_line("Help").command, Command::help);
    EXPECT_EQ(parse_line("STATS x").kind, ParsedLine::Kind::syntax_error);
    EXPECT_EQ(syntax_error_line(Command::help), "c> Syntax error. Usage: HELP");
}

TEST(Complete, CommandWordsUsersAndPaths)
{
    const std::vector<std::string> users{"alice", "albert", "bob"};
    EXPECT_EQ(complete("", "LIST_", users).words, (std::vector<std::string>{"LIST_USERS", "LIST_CONTENT"}));
    EXPECT_EQ(complete("", "get", users).words, (std::vector<std::string>{"GET_FILE", "GET"}));
    EXPECT_EQ(complete("", "se", users).words, (std::vector<std::string>{"SEARCH"}));
    EXPECT_EQ(complete("  ", "q", users).words, (std::vector<std::string>{"QUIT"}));
    EXPECT_EQ(complete("LIST_CONTENT ", "al", users).words, (std::vector<std::string>{"alice", "albert"}));
    EXPECT_EQ(complete("get_file ", "b", users).words, (std::vector<std::string>{"bob"}));
    EXPECT_TRUE(complete("GET_FILE bob ", "/ho", users).files);
    EXPECT_TRUE(complete("GET_FILE bob /home/bob/x ", "", users).files);
    EXPECT_TRUE(complete("PUBLISH ", "no", users).files);
    EXPECT_FALSE(complete("PUBLISH notes.txt ", "my", users).files);  // the description
    EXPECT_TRUE(complete("REGISTER ", "a", users).words.empty());     // a new name
    EXPECT_TRUE(complete("LIST_USERS ", "", users).words.empty());
}

TEST(HelpLines, EveryCommandWithItsArguments)
{
    const auto lines = help_lines();
    ASSERT_EQ(lines.size(), 15u);
    EXPECT_EQ(lines[0], "c> Commands:");
    EXPECT_EQ(lines[1], "\tREGISTER <user>");
    EXPECT_EQ(lines[5], "\tPUBLISH <path> <description>");
    EXPECT_EQ(lines[9], "\tGET_FILE <user> <remote path> <local path>");
    EXPECT_EQ(lines[10], "\tSEARCH <terms...>");
    EXPECT_EQ(lines[11], "\tGET <n> [local path]");
    EXPECT_EQ(lines[12], "\tSTATS");
    EXPECT_EQ(lines[14], "\tQUIT");
}

TEST(ResultLine, EveryLineOfProtocolSection6)
{
    const std::vector<std::pair<Command, std::vector<std::string>>> table = {
        {Command::register_user, {"REGISTER OK", "USERNAME IN USE", "REGISTER FAIL"}},
        {Command::unregister_user, {"UNREGISTER OK", "USER DOES NOT EXIST", "UNREGISTER FAIL"}},
        {Command::connect, {"CONNECT OK", "CONNECT FAIL, USER DOES NOT EXIST", "USER ALREADY CONNECTED", "CONNECT FAIL"}},
        {Command::publish, {"PUBLISH OK", "PUBLISH FAIL, USER DOES NOT EXIST", "PUBLISH FAIL, USER NOT CONNECTED",
                            "PUBLISH FAIL, CONTENT ALREADY PUBLISHED", "PUBLISH FAIL"}},
        {Command::remove, {"DELETE OK", "DELETE FAIL, USER DOES NOT EXIST", "DELETE FAIL, USER NOT CONNECTED",
                           "DELETE FAIL, CONTENT NOT PUBLISHED", "DELETE FAIL"}},
        {Command::list_users, {"LIST_USERS OK", "LIST_USERS FAIL, USER DOES NOT EXIST",
                               "LIST_USERS FAIL, USER NOT CONNECTED", "LIST_USERS FAIL"}},
        {Command::list_content, {"LIST_CONTENT OK", "LIST_CONTENT FAIL, USER DOES NOT EXIST",
                                 "LIST_CONTENT FAIL, USER NOT CONNECTED", "LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST",
                                 "LIST_CONTENT FAIL"}},
        {Command::disconnect, {"DISCONNECT OK", "DISCONNECT FAIL, USER DOES NOT EXIST",
                               "DISCONNECT FAIL, USER NOT CONNECTED", "DISCONNECT FAIL"}},
        {Command::get_file, {"GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST", "GET_FILE FAIL"}},
    };
    for (const auto& [cmd, lines] : table) {
        for (std::size_t code = 0; code < lines.size(); ++code)
            EXPECT_EQ(result_line(cmd, static_cast<int>(code)), "c> " + lines[code]);
        EXPECT_EQ(result_line(cmd, -1), "c> " + std::string(command_name(cmd)) + " FAIL");  // unreachable
        EXPECT_EQ(result_line(cmd, 7), "c> " + std::string(command_name(cmd)) + " FAIL");
    }
    EXPECT_EQ(result_line(Command::quit, 0), "+++ FINISHED +++");
    EXPECT_EQ(result_line(Command::stats, 0), "c> STATS OK");
}

ReplyDecoder::Status feed_all(ReplyDecoder& d, const std::string& s)
{
    const char* p = s.data();
    auto st = d.feed(p, s.data() + s.size());
    return st;
}

TEST(ReplyDecoder, RawAndDecimalCodes)
{
    ReplyDecoder d;
    for (const auto& [wire, code] : std::vector<std::pair<std::string, int>>{
             {std::string("\x00", 1), 0}, {"\x03", 3}, {std::string("0\0", 2), 0}, {std::string("2\0", 2), 2},
             {std::string("-1\0", 3), -1}, {std::string("\x01trailing", 9), 1}}) {
        d.expect_code_only();
        EXPECT_EQ(feed_all(d, wire), ReplyDecoder::Status::done) << wire;
        EXPECT_EQ(d.code(), code) << wire;
    }
    d.expect_code_only();
    EXPECT_EQ(feed_all(d, "1"), ReplyDecoder::Status::need_more);  // no NUL: complete at EOF
    EXPECT_EQ(d.eof(), ReplyDecoder::Status::done);
    EXPECT_EQ(d.code(), 1);
    d.expect_code_only();
    EXPECT_EQ(feed_all(d, "x"), ReplyDecoder::Status::error);
    d.expect_code_only();
    EXPECT_EQ(d.eof(), ReplyDecoder::Status::error);
}

TEST(ReplyDecoder, ListsSplitAnywhere)
{
    static const char kWire[] = "0\0" "2\0" "carol\0" "127.0.0.1\0" "23456\0" "alice\0" "::1\0" "35911\0";
    const std::string wire(kWire, sizeof kWire - 1);
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ReplyDecoder d;
        d.expect_list(3);
        const char* p = wire.data();
        auto st = d.feed(p, wire.data() + cut);
        if (st != ReplyDecoder::Status::done)
            st = d.feed(p, wire.data() + wire.size());
        ASSERT_EQ(st, ReplyDecoder::Status::done) << cut;
        EXPECT_EQ(d.count(), 2u);
        EXPECT_EQ(d.fields(), (std::vector<std::string>{"carol", "127.0.0.1", "23456", "alice", "::1", "35911"}));
    }
}

TEST(ReplyDecoder, CapsAndTruncation)
{
    ReplyDecoder d;
    d.expect_list(1);
    EXPECT_EQ(feed_all(d, std::string("\x00" "99999999999\0", 13)), ReplyDecoder::Status::error);  // count cap
    d.expect_list(1);
    EXPECT_EQ(feed_all(d, std::string("\x00" "1\0", 3) + std::string(300, 'p')), ReplyDecoder::Status::error);
    d.expect_fields(2);
    EXPECT_EQ(feed_all(d, std::string("\x00" "10.0.0.1\0", 10)), ReplyDecoder::Status::need_more);
    EXPECT_EQ(d.eof(), ReplyDecoder::Status::error);
    d.expect_fields(2);
    EXPECT_EQ(feed_all(d, std::string("\x03", 1)), ReplyDecoder::Status::done);  // no fields after a failure
    EXPECT_EQ(d.code(), 3);
}

// A count under the entry cap followed by fields without end: refused once the fields held
// pass the byte cap, not after the count's worth of them.
TEST(ReplyDecoder, FieldsHeldAreCapped)
{
    const std::string field = std::string(100, 'f') + '\0';
    std::string entries;
    for (int i = 0; i < 10; ++i)
        entries += field;
    ReplyDecoder d;
    d.set_max_bytes(10 * (100 + sizeof(std::string)));
    d.expect_list(1);
    EXPECT_EQ(feed_all(d, std::string("\x00" "10\0", 4) + entries), ReplyDecoder::Status::done);  // at the cap
    EXPECT_EQ(d.fields().size(), 10u);
    d.expect_list(1);
    EXPECT_EQ(feed_all(d, std::string("\x00" "11\0", 4) + entries + field), ReplyDecoder::Status::error);
    EXPECT_EQ(d.error(), "reply larger than the client holds");
    EXPECT_LE(d.fields().size(), 10u);
}

}  // namespace
}  // namespace peerdex
