// The search index against a brute-force scan (a model test): under random additions and
// removals, for random queries, the documents the index offers and the caller keeps with
// match() are exactly the matching live documents, newest first; and the budget bounds
// the work.
#include "search_index.hh"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace peerdex {
namespace {

struct Doc {
    std::string path, description;
    SearchIndex::Id id = 0;
};

class Rng {
public:
    std::uint32_t next() { return state_ = state_ * 1664525u + 1013904223u; }
    std::size_t below(std::size_t n) { return (next() >> 8) % n; }

private:
    std::uint32_t state_ = 7;
};

const char* const kWords[] = {"song", "songbook", "Sonata", "live", "home", "bob", "alice", "mp3", "ogg",
                              "best", "of", "2", "22", "caf\xc3\xa9", "Chords", "s", "so", "x"};

std::string words(Rng& r, std::size_t n, const char* sep)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out += (i ? sep : "") + std::string(kWords[r.below(std::size(kWords))]);
    return out;
}

using Live = std::map<SearchIndex::Id, std::unique_ptr<Doc>>;

// Adds `d` to the index and to the live documents.
void add(SearchIndex& index, Live& live, std::unique_ptr<Doc> d)
{
    d->id = index.add(d.get(), d->path, d->description);
    live[d->id] = std::move(d);
}

// Removes one live document, drawn at random, from the index and from the live ones.
void remove_one(SearchIndex& index, Live& live, Rng& r)
{
    auto it = std::next(live.begin(), static_cast<long>(r.below(live.size())));
    index.remove(it->first, it->second->path, it->second->description);
    live.erase(it);
}

// The matching live documents, newest first, by scanning them all.
std::vector<const Doc*> brute(const Live& live, const SearchQuery& q)
{
    std::vector<const Doc*> out;
    for (auto it = live.rbegin(); it != live.rend(); ++it)
        if (match(q, it->second->path, it->second->description) != Match::none)
            out.push_back(it->second.get());
    return out;
}

// The matching documents among every candidate the index offers, in its order; and what
// the index decided alone is what match() says.
std::vector<const Doc*> matching(const SearchIndex& index, const SearchQuery& q)
{
    std::vector<const Doc*> got;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) {
        const auto* d = static_cast<const Doc*>(c.doc);
        const Match m = match(q, d->path, d->description);
        if (m != Match::none)
            got.push_back(d);
        if (c.decided) {
            EXPECT_EQ(c.named ? Match::name : Match::other, m) << d->path << " " << d->description;
        }
        return SearchIndex::Want::all;
    });
    return got;
}

// A visitor like the registry's: it wants file-name matches only once it holds `enough`
// others. Every file-name match still reaches it, in order, the first `enough` others too,
// and what the index decided is what match() says.
void agree_names_first(const SearchIndex& index, const Live& live, const SearchQuery& q, const std::string& text,
                       std::size_t enough)
{
    std::vector<const Doc*> names, others;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) {
        const auto* d = static_cast<const Doc*>(c.doc);
        const Match m = match(q, d->path, d->description);
        if (c.decided) {
            EXPECT_EQ(c.named ? Match::name : Match::other, m) << text << ": " << d->path << " " << d->description;
        }
        if (m == Match::name)
            names.push_back(d);
        else if (m == Match::other && others.size() < enough)
            others.push_back(d);
        return others.size() < enough ? SearchIndex::Want::all : SearchIndex::Want::named;
    });
    std::vector<const Doc*> want_names, want_others;
    for (const Doc* d : brute(live, q))
        (match(q, d->path, d->description) == Match::name ? want_names : want_others).push_back(d);
    want_others.resize(std::min(want_others.size(), enough));
    EXPECT_EQ(names, want_names) << "query \"" << text << "\"";
    EXPECT_EQ(others, want_others) << "query \"" << text << "\"";
}

TEST(SearchIndex, AgreesWithABruteForceScan)
{
    SearchIndex index;
    Live live;
    Rng r;
    for (int step = 0; step < 3000; ++step) {
        if (live.empty() || r.below(3) != 0) {
            auto d = std::make_unique<Doc>();
            d->path = "/" + words(r, 1 + r.below(3), "/") + "." + kWords[r.below(std::size(kWords))];
            d->description = words(r, r.below(3), " ");
            add(index, live, std::move(d));
        } else {
            remove_one(index, live, r);
        }
        ASSERT_EQ(index.size(), live.size());
        if (step % 10 != 0)
            continue;
        SearchQuery q;
        const std::string text = words(r, 1 + r.below(2), " ") + (r.below(3) == 0 ? " -" + words(r, 1, "") : "");
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        ASSERT_EQ(matching(index, q), brute(live, q)) << "query \"" << text << "\" at step " << step;
    }
}

// Tokens are kept in order by a key holding their first eight bytes: tokens that share
// them, terms longer than them and terms of exactly eight are matched on the whole text,
// and bytes above 0x7f order after ASCII ones (caf\xc3\xa9 after cafe and cafz).
TEST(SearchIndex, TermsLongerThanEightBytesMatchTheWholeToken)
{
    SearchIndex index;
    Live live;
    const char* const tokens[] = {"songbook", "songbooks", "songbookx1", "songbooka", "songboo", "songbooz",
                                  "songbooksx", "caf\xc3\xa9" "caf\xc3\xa9", "caf\xc3\xa9" "caf\xc3\xa9" "s", "zzzzzzzzzz",
                                  "caf", "cafe", "cafz", "caf\xc3\xa9"};
    Rng r;
    for (int i = 0; i < 300; ++i) {
        auto d = std::make_unique<Doc>();
        d->path = "/" + std::string(tokens[r.below(std::size(tokens))]) + "/" + tokens[r.below(std::size(tokens))];
        d->description = tokens[r.below(std::size(tokens))];
        add(index, live, std::move(d));
    }
    for (const char* text : {"songbook", "songbooks", "songbookx", "songbookx1", "songbooka", "songbookz", "songbooksx",
                             "songboo", "songbo", "caf\xc3\xa9" "caf", "caf\xc3\xa9" "caf\xc3\xa9", "caf\xc3\xa9" "caf\xc3\xa9" "s",
                             "zzzzzzzzz", "zzzzzzzzzzz", "songbooks -songbooksx", "caf", "cafe", "caf\xc3\xa9",
                             "songbooz", "songboo -songbook"}) {
        SearchQuery q;
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        EXPECT_EQ(matching(index, q), brute(live, q)) << text;
    }
}

// Prefix terms over many tokens (checked in windows of ids, not list by list), over more
// documents than one window, and a visitor that, like the registry's, wants only file-name
// matches once it holds enough of the others: every file-name match still reaches it, in
// order, and what the index decided is what match() says.
TEST(SearchIndex, WideTermsAndNamesOnlyAgreeWithABruteForceScan)
{
    SearchIndex index;
    Live live;
    Rng r;
    // w0 .. w299: the prefix "w1" covers w1, w10-w19 and w100-w199 (111 tokens); w1 is also
    // in a quarter of the file names, so it is dense (a bitmap) among sparse lists.
    const auto word = [&] { return "w" + std::to_string(r.below(300)); };
    for (int step = 0; step < 3 * static_cast<int>(SearchIndex::kWindow); ++step) {
        if (live.empty() || r.below(8) != 0) {
            auto d = std::make_unique<Doc>();
            d->path = "/" + word() + "/" + word() + " " + (r.below(4) == 0 ? "w1" : word()) + ".bin";
            d->description = word();
            add(index, live, std::move(d));
        } else {
            remove_one(index, live, r);
        }
    }
    ASSERT_EQ(index.dense_tokens(), 2u);  // "bin" and "w1"
    for (int round = 0; round < 300; ++round) {
        SearchQuery q;
        std::string text = word() + " w" + std::to_string(r.below(30));
        if (round % 3 == 0)
            text += " -w" + std::to_string(r.below(30));
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        agree_names_first(index, live, q, text, r.below(20));
    }
}

TEST(SearchIndex, StopsAtTheBudgetAndWhenTheVisitorHasEnough)
{
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    for (int i = 0; i < 1000; ++i) {
        docs.push_back(std::make_unique<Doc>(Doc{"/music/song" + std::to_string(i) + ".ogg", "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
    SearchQuery q;
    ASSERT_EQ(parse_query("song", q), QueryFault::none);  // a prefix of 1000 distinct tokens
    std::size_t seen = 0;
    EXPECT_EQ(index.candidates(q, 50, [&](const SearchIndex::Candidate&) { return ++seen, SearchIndex::Want::all; }), 50u);
    EXPECT_EQ(seen, 50u);
    seen = 0;
    std::vector<const void*> first;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) {
        first.push_back(c.doc);
        return first.size() < 3 ? SearchIndex::Want::all : SearchIndex::Want::stop;
    });
    // Newest first: the last three added.
    EXPECT_EQ(first, (std::vector<const void*>{docs[999].get(), docs[998].get(), docs[997].get()}));
    ASSERT_EQ(parse_query("ogg", q), QueryFault::none);  // one token, in every document
    EXPECT_EQ(index.candidates(q, 10, [](const SearchIndex::Candidate&) { return SearchIndex::Want::all; }), 10u);
}

// A visitor that holds enough hits outside the file-name group asks for file-name matches
// only: the walk for them gets a quarter of the budget left, not all of it.
TEST(SearchIndex, FileNameMatchesOnlyGetAQuarterOfTheBudgetLeft)
{
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    for (int i = 0; i < 1000; ++i) {  // "x" is never in the file name
        docs.push_back(std::make_unique<Doc>(Doc{"/x/f" + std::to_string(i) + ".bin", "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
    SearchQuery q;
    ASSERT_EQ(parse_query("x", q), QueryFault::none);
    std::size_t seen = 0;
    const std::size_t examined = index.candidates(q, 400, [&](const SearchIndex::Candidate&) {
        return ++seen, SearchIndex::Want::named;
    });
    EXPECT_GE(examined, 100u);  // the quarter of 400, after the first candidate
    EXPECT_LT(examined, 200u);  // not the whole budget
    EXPECT_EQ(index.candidates(q, 400, [&](const SearchIndex::Candidate&) { return SearchIndex::Want::all; }), 400u);
}

TEST(SearchIndex, RemovedDocumentsLeaveTheirListsWithin2xOfTheLive)
{
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    for (int i = 0; i < 10000; ++i) {  // "common" in half of them, "rare" in a hundredth
        const std::string word = i % 100 == 0 ? "rare" : i % 2 ? "common" : "other";
        docs.push_back(std::make_unique<Doc>(Doc{"/a/" + word + ".bin", "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
    // Five tokens; "a" and "bin" (every document), "common" and "other" (half) are dense:
    // 2 bits per id, where a list would cost 32 bits per document holding the token.
    const std::size_t lists = (10000 + 10000 + 5000 + 4900 + 100) * sizeof(SearchIndex::Id);
    const std::size_t full = index.list_bytes() - index.id_table_bytes();
    EXPECT_EQ(index.dense_tokens(), 4u);
    EXPECT_LT(full, lists / 8);
    for (int i = 0; i < 9990; ++i)
        index.remove(docs[static_cast<std::size_t>(i)]->id, docs[static_cast<std::size_t>(i)]->path, "");
    EXPECT_EQ(index.size(), 10u);
    // The id table keeps its 8 bytes per id ever given; the bitmaps became lists again and
    // the lists shrank with their documents.
    EXPECT_EQ(index.dense_tokens(), 0u);
    EXPECT_LT(index.list_bytes() - index.id_table_bytes(), lists / 200);
}

// 2000 documents holding "early", then `later` ones holding "f": "early" is dense among the
// first ids, its bitmap ending at the 2000th, and left untouched since.
struct EarlyThenMany {
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    explicit EarlyThenMany(int later)
    {
        for (int i = 0; i < 2000; ++i)
            add("/early.x");
        for (int i = 0; i < later; ++i)
            add("/f.x");
    }
    void add(const char* path)
    {
        docs.push_back(std::make_unique<Doc>(Doc{path, "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
};

// A bitmap covers ids up to the newest of its documents: a token dense among the first ids
// and rare among all of them becomes a list before it grows to the newest id.
TEST(SearchIndex, ATokenRareAmongManyIdsDoesNotGrowItsBitmap)
{
    EarlyThenMany corpus(200000);
    SearchIndex& index = corpus.index;
    const auto& docs = corpus.docs;
    EXPECT_EQ(index.dense_tokens(), 3u);  // early (untouched since), f, x
    const std::size_t before = index.list_bytes() - index.id_table_bytes();
    corpus.add("/early.x");
    EXPECT_EQ(index.dense_tokens(), 2u);
    // A list of 2001 postings (8 KB), not a bitmap of 202001 ids (50 KB).
    EXPECT_LT(index.list_bytes() - index.id_table_bytes(), before + 16 * 1024);
    SearchQuery q;
    ASSERT_EQ(parse_query("early", q), QueryFault::none);
    std::vector<const void*> found;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) { return found.push_back(c.doc), SearchIndex::Want::all; });
    ASSERT_EQ(found.size(), 2001u);
    EXPECT_EQ(found.front(), docs.back().get());
    EXPECT_EQ(found.back(), docs.front().get());
}

// The walk of a dense token starts at its newest document: the ids given since, none of
// which holds it, do not count against the budget.
TEST(SearchIndex, ADenseTokenUntouchedSinceEarlyIdsIsWalkedFromItsNewest)
{
    EarlyThenMany corpus(20000);  // 312 blocks of 64 ids without "early"
    const SearchIndex& index = corpus.index;
    const auto& docs = corpus.docs;
    ASSERT_EQ(index.dense_tokens(), 3u);  // early (untouched since), f, x
    SearchQuery q;
    ASSERT_EQ(parse_query("early", q), QueryFault::none);
    std::vector<const void*> found;
    EXPECT_EQ(index.candidates(q, 100, [&](const SearchIndex::Candidate& c) {
        return found.push_back(c.doc), SearchIndex::Want::all;
    }), 100u);
    ASSERT_EQ(found.size(), 100u);
    EXPECT_EQ(found.front(), docs[1999].get());
    EXPECT_EQ(found.back(), docs[1900].get());
}

// A token that turns dense (a bitmap), sparse again and dense again as documents holding it
// come and go, queried alone, with sparse tokens in one prefix range and as a check and an
// exclusion of others, agrees with a brute-force scan at every step.
TEST(SearchIndex, TokensChangingFormAgreeWithABruteForceScan)
{
    SearchIndex index;
    Live live;
    Rng r;
    const char* const queries[] = {"hot", "h", "ho", "h1", "hot h1", "h1 hot", "h -hot", "h1 -hot", "cold hot", "hot -h2"};
    std::size_t changes = 0;
    bool was_dense = false;
    for (int step = 0; step < 8000; ++step) {
        const bool growing = step / 1000 % 2 == 0;  // "hot" in half the new documents, then in none
        if (live.empty() || r.below(4) < (growing ? 3u : 1u)) {
            const std::string h = "h" + std::to_string(r.below(200));
            auto d = std::make_unique<Doc>();
            if (growing && r.below(2) == 0)
                d->path = r.below(2) ? "/hot/" + h + ".x" : "/" + h + "/hot.x";
            else
                d->path = "/" + h + "/cold.x";
            add(index, live, std::move(d));
        } else {
            remove_one(index, live, r);
        }
        const bool dense = index.dense_tokens() > 2;  // "x" and "cold" are dense throughout
        changes += dense != was_dense;
        was_dense = dense;
        if (step % 7 != 0)
            continue;
        SearchQuery q;
        const std::string text = queries[r.below(std::size(queries))];
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        ASSERT_EQ(matching(index, q), brute(live, q)) << "query \"" << text << "\" at step " << step;
    }
    EXPECT_GE(changes, 3u);  // dense, sparse, dense again at least
}

// Walks of one or two sparse lists whose first term to check goes 64 candidates at a time
// (merged with the term's lists, looked up in its bitmap): sparse words a000-a199 (the
// prefix "a00" covers ten of them), "d" in a quarter of the documents (a bitmap: in the file
// name or in the description) beside the rarer dx0-dx9 (the prefix "d" covers all eleven:
// the bitmap, the largest list and the others merged into one). Few enough documents that
// two prefixes of a query both merge their rare lists (a query may merge 2048 postings).
// With additions, removals and a visitor that wants file-name matches only once it holds
// enough others, the index agrees with a brute-force scan, and what it decided is what
// match() says, file-name group included.
TEST(SearchIndex, ChunkedWalksAgreeWithABruteForceScan)
{
    SearchIndex index;
    Live live;
    Rng r;
    const auto a = [&] {
        const std::size_t n = r.below(200);
        return "a" + std::string(n < 100 ? "0" : "") + (n < 10 ? "0" : "") + std::to_string(n);
    };
    for (int step = 0; step < 6000; ++step) {
        if (live.empty() || r.below(10) != 0) {
            auto d = std::make_unique<Doc>();
            const std::size_t kind = r.below(32);
            const std::string dx = "dx" + std::to_string(r.below(10));
            d->path = "/" + a() + "/" + a() + (kind < 4 ? " d" : kind == 4 ? " " + dx : "") + ".bin";
            d->description = a() + (kind >= 5 && kind < 9 ? " d" : "") + (kind == 9 ? " " + dx : "");
            add(index, live, std::move(d));
        } else {
            remove_one(index, live, r);
        }
    }
    ASSERT_EQ(index.dense_tokens(), 2u);  // "bin" and "d"
    const auto term = [&] {
        switch (r.below(5)) {
        case 0: return std::string("d");
        case 1: return std::string("dx");
        case 2: return "a0" + std::to_string(r.below(2));  // a prefix of ten tokens
        default: return a();
        }
    };
    for (int round = 0; round < 400; ++round) {
        SearchQuery q;
        // The walk: one sparse list, or two (a000-a009: the largest and the others merged).
        // Two such prefixes: merged lists in the walk and in the term, a document perhaps
        // twice in each.
        std::string text = (round % 3 == 0 ? "a0" + std::to_string(r.below(2)) : a()) + " " +
                           (round % 3 == 1 ? "a0" + std::to_string(r.below(2)) : term());
        if (round % 2 == 0)
            text += " " + term();
        if (round % 5 == 0)
            text += " -" + term();
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        agree_names_first(index, live, q, text, r.below(20));
    }
}

// The budget counts the walk's candidates one by one whether the first term to check is
// merged with them 64 at a time or checked one candidate after another. "v" and the prefix
// "uw" (uw0-uw9, ten lists too large to merge: checked in a window, one candidate at a
// time) are in the same documents, so "solo v" (a walk of one list, "v" merged with it)
// and "solo uw" must examine and offer the same; likewise "tk v" and "tk uw", whose walk is
// two lists (tk, and tk0-tk3 merged). "v" is in two walked documents in three, so the
// first term turns candidates away; the visitor asks for file-name matches only at one of
// many points, and at 200 a quarter of the budget is less than a chunk.
TEST(SearchIndex, ChunkedWalksCountTheBudgetAsAWalkOneByOne)
{
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    for (std::size_t i = 0; i < 198000; ++i) {  // every token below in at most one id in 32: lists
        std::string path = "/filler/f.bin";
        if (i % 33 == 32) {
            const std::size_t j = i / 33;
            const std::string solo = j % 50 == 49 ? "" : "solo ";
            const std::string tk = j % 50 == 48 ? "" : j % 8 == 0 ? "tk" + std::to_string(j % 4) + " " : "tk ";
            const std::string v = j % 3 == 0 ? "" : "v uw" + std::to_string(j % 10) + " ";
            const std::string words = solo + tk + v;
            path = j % 2 == 0 ? "/x/" + words + ".bin" : "/" + words + "/f.bin";  // in the file name or not
        } else if (i % 99 == 50) {
            path = "/filler/v uw" + std::to_string(i % 10) + "/f.bin";
        }
        docs.push_back(std::make_unique<Doc>(Doc{path, "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
    ASSERT_EQ(index.dense_tokens(), 3u);  // filler, f, bin
    const auto run = [&](const char* text, std::size_t budget, std::size_t named_after, std::vector<const void*>& seen) {
        SearchQuery q;
        EXPECT_EQ(parse_query(text, q), QueryFault::none);
        return index.candidates(q, budget, [&](const SearchIndex::Candidate& c) {
            seen.push_back(c.doc);
            return seen.size() < named_after ? SearchIndex::Want::all : SearchIndex::Want::named;
        });
    };
    std::vector<std::size_t> tries{SIZE_MAX};
    for (std::size_t k = 1; k <= 130; k += 3)
        tries.push_back(k);
    for (const auto& [merged, one_by_one] : {std::pair{"solo v", "solo uw"}, std::pair{"tk v", "tk uw"}})
        for (const std::size_t budget : {std::size_t{1000}, std::size_t{200}}) {
            std::size_t lowered = 0;  // tries in which the visitor's narrowing ended the walk early
            for (const std::size_t named_after : tries) {
                std::vector<const void*> a, b;
                const std::size_t ea = run(one_by_one, budget, named_after, a);
                const std::size_t eb = run(merged, budget, named_after, b);
                EXPECT_EQ(ea, eb) << merged << ", budget " << budget << ", named after " << named_after;
                EXPECT_EQ(a, b) << merged << ", budget " << budget << ", named after " << named_after;
                lowered += eb < budget;
                if (named_after == SIZE_MAX) {
                    EXPECT_EQ(eb, budget);
                    EXPECT_GT(b.size(), budget / 2);  // about two in three pass
                    EXPECT_LT(b.size(), budget);
                }
            }
            EXPECT_GE(lowered, 10u) << merged << ", budget " << budget;
        }
}

// A walk of two lists takes the first list's next 64 postings as they are when the
// second's next is older than all of them. "ra" (every 40th document, in its directory)
// is the walk's first list; ra1 and ra2 (a few of the same documents, in the file name)
// are merged into its second. The newest of those is the 192nd newest "ra" document, the
// oldest of the walk's third 64: not a run, since it is in both lists. It is given once,
// and named (every term of "ra zz" is in its file name).
TEST(SearchIndex, TwoListWalksGiveADocumentInBothOnceAtTheEdgeOfARun)
{
    SearchIndex index;
    Live live;
    for (std::size_t i = 0; i < 40000; ++i) {
        auto d = std::make_unique<Doc>();
        const std::size_t k = i / 40;  // the "ra" documents' order
        if (i % 40 == 0) {
            const std::string rare = k == 1000 - 192            ? " ra1"
                                     : k < 800 && k % 97 == 5 ? " ra" + std::to_string(1 + k % 2)
                                                              : "";
            d->path = "/ra/zz" + rare + ".bin";
        } else {
            d->path = i % 40 == 20 ? "/filler/zz.bin" : "/filler/f.bin";  // zz: a bitmap
        }
        add(index, live, std::move(d));
    }
    SearchQuery q;
    ASSERT_EQ(parse_query("ra zz", q), QueryFault::none);
    const std::vector<const Doc*> want = brute(live, q);
    ASSERT_EQ(want.size(), 1000u);
    EXPECT_EQ(matching(index, q), want);
    std::size_t named = 0;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) {
        named += c.decided && c.named;
        return SearchIndex::Want::all;
    });
    EXPECT_EQ(named, 10u);  // ra1 or ra2 in the file name: nine older documents and that one
}

// Walks that merge their lists in a heap, under additions and removals, agree with a
// brute-force scan: "k" alone walks its 40 lists (too many postings to merge); "h k" walks
// "h" (a dense token, the largest of h0-h49 and the rest of them merged into one list,
// which holds a document up to three times when its tokens are among them) while "k", over 40
// lists, is checked in a window, so the walk cannot go by blocks. The other queries take
// the two-list walk or the blocks, for comparison.
TEST(SearchIndex, WalksOverManyListsAgreeWithABruteForceScan)
{
    SearchIndex index;
    Live live;
    Rng r;
    const char* const queries[] = {"k", "k -h", "h k", "h1 k", "h k -k1", "k h2", "h -k3", "k1 h"};
    for (int step = 0; step < 9000; ++step) {
        if (live.empty() || r.below(4) != 0) {
            auto d = std::make_unique<Doc>();
            const std::string k = "k" + std::to_string(r.below(40));
            const std::size_t h = r.below(8);  // "h" in a quarter of the names, h0-h49 in an eighth
            d->path = "/" + k + "/" + (h < 2 ? "h" : h == 2 ? "h" + std::to_string(r.below(50)) : "other") + ".x";
            for (int w = 0; w < 2; ++w) {  // two words, each "h" or one of h0-h49 an eighth of the time
                const std::size_t in = r.below(16);
                d->description += in < 2 ? " h" : in < 4 ? " h" + std::to_string(r.below(50)) : "";
            }
            add(index, live, std::move(d));
        } else {
            remove_one(index, live, r);
        }
        if (step % 11 != 0 || step < 4500)  // from 2250 documents: "k" has too many to merge
            continue;
        ASSERT_EQ(index.dense_tokens(), 3u);  // "h", "other" and "x"
        SearchQuery q;
        const std::string text = queries[r.below(std::size(queries))];
        ASSERT_EQ(parse_query(text, q), QueryFault::none) << text;
        ASSERT_EQ(matching(index, q), brute(live, q)) << "query \"" << text << "\" at step " << step;
    }
}

TEST(SearchIndex, TokensLeftWithoutPostingsGoAndComeBack)
{
    SearchIndex index;
    std::vector<std::unique_ptr<Doc>> docs;
    for (int i = 0; i < 5000; ++i) {  // 5000 distinct tokens, and "bin" in all
        docs.push_back(std::make_unique<Doc>(Doc{"/t" + std::to_string(i) + ".bin", "", 0}));
        docs.back()->id = index.add(docs.back().get(), docs.back()->path, "");
    }
    EXPECT_EQ(index.tokens(), 5001u);
    for (auto& d : docs)
        index.remove(d->id, d->path, "");
    EXPECT_EQ(index.tokens(), 0u);
    SearchQuery q;
    ASSERT_EQ(parse_query("t1", q), QueryFault::none);
    EXPECT_EQ(index.candidates(q, SIZE_MAX, [](const SearchIndex::Candidate&) { return SearchIndex::Want::all; }), 0u);
    // A token used again, whether it was swept or kept, is found again.
    Doc again{"/t1.bin", "", 0};
    again.id = index.add(&again, again.path, "");
    Doc other{"/t4999.bin", "", 0};
    other.id = index.add(&other, other.path, "");
    EXPECT_EQ(index.tokens(), 3u);
    std::vector<const void*> found;
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) { return found.push_back(c.doc), SearchIndex::Want::all; });
    EXPECT_EQ(found, (std::vector<const void*>{&again}));
    ASSERT_EQ(parse_query("t", q), QueryFault::none);
    found.clear();
    index.candidates(q, SIZE_MAX, [&](const SearchIndex::Candidate& c) { return found.push_back(c.doc), SearchIndex::Want::all; });
    EXPECT_EQ(found, (std::vector<const void*>{&other, &again}));  // newest first
}

}  // namespace
}  // namespace peerdex
