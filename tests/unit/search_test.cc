// The rules of SEARCH (peerdex-protocol(7), SEARCH), one by one, with the page's examples.
#include "search.hh"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace peerdex {
namespace {

using V = std::vector<std::string>;

V tokens(std::string_view s)
{
    V out;
    for (auto t : search_tokens(s))
        out.emplace_back(t);
    return out;
}

SearchQuery query(std::string_view q)
{
    SearchQuery out;
    EXPECT_EQ(parse_query(q, out), QueryFault::none) << q;
    return out;
}

TEST(SearchTokens, RunsOfLettersDigitsAndHighBytes)
{
    EXPECT_EQ(tokens("/home/bob/Song_2.ogg"), (V{"home", "bob", "Song", "2", "ogg"}));
    EXPECT_EQ(tokens("  live at home "), (V{"live", "at", "home"}));
    EXPECT_EQ(tokens("caf\xc3\xa9-au-lait"), (V{"caf\xc3\xa9", "au", "lait"}));  // UTF-8 stays inside a token
    EXPECT_EQ(tokens("..//--"), V{});
    EXPECT_EQ(tokens(""), V{});
}

TEST(SearchQueryParse, TermsSeparatorsAndExclusion)
{
    SearchQuery q = query("  Song_2   -live.mp3 ");
    EXPECT_EQ(q.include, (V{"song", "2"}));  // folded, split inside the term
    EXPECT_EQ(q.exclude, (V{"live", "mp3"}));
    q = query("A\xc3\x89 b");
    EXPECT_EQ(q.include, (V{"a\xc3\x89", "b"}));  // only ASCII letters fold
    q = query("x - y");                           // a lone '-' adds nothing
    EXPECT_EQ(q.include, (V{"x", "y"}));
    EXPECT_TRUE(q.exclude.empty());
}

TEST(SearchQueryParse, Bounds)
{
    SearchQuery q;
    EXPECT_EQ(parse_query("", q), QueryFault::empty);
    EXPECT_EQ(parse_query("   ", q), QueryFault::empty);
    EXPECT_EQ(parse_query("-- ..", q), QueryFault::empty);
    EXPECT_EQ(parse_query("-song", q), QueryFault::no_include);
    EXPECT_EQ(parse_query(std::string(255, 'a'), q), QueryFault::none);
    EXPECT_EQ(parse_query(std::string(256, 'a'), q), QueryFault::too_long);
    std::string sixteen, seventeen;
    for (int i = 0; i < 16; ++i)
        sixteen += "t" + std::to_string(i) + " ";
    seventeen = sixteen + "x";
    EXPECT_EQ(parse_query(sixteen, q), QueryFault::none);
    EXPECT_EQ(parse_query(seventeen, q), QueryFault::too_many_terms);
    EXPECT_EQ(parse_query("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", q), QueryFault::too_many_terms);  // 17 in one word
}

TEST(SearchMatch, ThePagesExamples)
{
    const std::string song = "/music/Song_2.ogg", song_d = "live at home";
    const std::string book = "/docs/songbook.pdf", book_d = "chords";
    EXPECT_EQ(match(query("song"), song, song_d), Match::name);
    EXPECT_EQ(match(query("song"), book, book_d), Match::name);  // a prefix of "songbook"
    EXPECT_EQ(match(query("song -chords"), book, book_d), Match::none);
    EXPECT_EQ(match(query("song -chords"), song, song_d), Match::name);
    EXPECT_EQ(match(query("home"), song, song_d), Match::other);  // a description token
    EXPECT_EQ(match(query("home"), book, book_d), Match::none);
}

TEST(SearchMatch, PrefixesCaseGroupsAndExclusion)
{
    const std::string p = "/Home/Bob/Best_Of.MP3", d = "Greatest hits";
    EXPECT_EQ(match(query("BEST of"), p, d), Match::name);
    EXPECT_EQ(match(query("mp"), p, d), Match::name);
    EXPECT_EQ(match(query("home"), p, d), Match::other);       // a directory, not the file name
    EXPECT_EQ(match(query("best greatest"), p, d), Match::other);  // one term outside the name
    EXPECT_EQ(match(query("est"), p, d), Match::none);         // prefixes only, not substrings
    EXPECT_EQ(match(query("best -gr"), p, d), Match::none);    // an exclude term is a prefix too
    EXPECT_EQ(match(query("best -bobby"), p, d), Match::name);  // longer than the token: no prefix
    EXPECT_EQ(match(query("bestof"), p, d), Match::none);       // the separator splits the tokens
    EXPECT_EQ(match(query("best_of"), p, d), Match::name);      // ... and the term alike
    EXPECT_EQ(match(query("file"), "file", ""), Match::name);   // a path without a '/'
}

}  // namespace
}  // namespace peerdex
