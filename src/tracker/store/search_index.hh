// An inverted index of publications for SEARCH (peerdex-protocol(7), SEARCH). Pure: it
// knows documents by an opaque pointer and the tokens of their path and description
// (search.hh), and gives candidates newest first; the caller checks each with match(),
// the connected-owner rule and the name-first order.
//
// Layout: every document gets the next 32-bit id (newer documents have larger ids), and
// `docs_` maps ids to documents (null once removed). Each distinct folded token has a list
// of postings, in increasing id order: a posting is id << 1 | 1 when the token occurs in
// the document's file name (the last component of its path), so that the name-first
// order costs no second list. Adding appends, so a list never moves an element; removing
// leaves the posting (the id table says it is gone) and counts it dead in each of its
// lists, and a list with more dead postings than live ones is rewritten without them, so
// lists stay within twice their live size at an amortised constant cost. Lists grow by a
// quarter, not double, to keep their slack small. A token in more than one id in 32 is held
// as a bitmap instead (2 bits per id: any, in the file name), checked with one load; below
// one in 64 it is a list again.
//
// Tokens are found by a hash set (one probe per token on PUBLISH and DELETE) and kept in
// order by a second, ordered set used only by queries, where a prefix is one range of it,
// and when a token is first seen or dropped. A token left without postings stays until
// such tokens are half of all, then they go together. Adding and removing allocate
// nothing for tokens already known. Not done yet: the id table is never compacted (8
// bytes per document ever added in this run; a renumbering pass is the plan), and the
// lists are plain postings (delta coding is the plan if memory needs it).
//
// A query starts from its rarest include term (fewest postings over its prefix range) and
// walks those postings newest first, merging the lists of the range; a term whose prefix
// covers more than kMaxRangeLists tokens walks the id table instead. The small lists of a
// range (the rare tokens a prefix also covers) are first merged into one. A walk that
// holds a dense token goes 64 ids at a time (unless a term is checked in a window, or the
// walk has more than kMaxCheckLists lists): every term gives the block's word of ids, and
// the words are combined, so candidates are turned away 64 at a time. A walk of one or two
// sparse lists takes its candidates 64 at a time when the first term to check is an include
// term not checked in a window and its lists hold at most 16 times the walk's postings:
// they are merged with its lists and looked up in its bitmaps, so that only those in the
// term are checked further. Otherwise each
// candidate is checked against the other terms in the index: a term over a few lists in
// each of them (a branch-free look at the eight postings back, then galloping, from where
// the previous, newer candidate left each list), a wider one in a window of ids filled
// from its lists; so the publication itself is never read for a document that does not
// match. Only a term over more than kMaxRangeLists tokens leaves the check to match(). Candidates that pass reach the visitor through two
// short queues that fetch their memory ahead. The walk stops when the visitor says it has
// enough, or after `budget` postings examined (a quarter of what is left once the visitor
// wants file-name matches only): the work of one query is bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "flat_set.hh"
#include "search.hh"

namespace peerdex {

class SearchIndex {
public:
    using Id = std::uint32_t;
    static constexpr std::size_t kMaxRangeLists = 1024;
    // A term over at most this many lists (a prefix's rare lists merged into one) is
    // checked in the index, list by list, for each candidate of the rarest term.
    static constexpr std::size_t kMaxCheckLists = 8;
    // A wider one (up to kMaxRangeLists tokens) is checked in windows of this many ids;
    // a term wider still leaves the check to match().
    static constexpr Id kWindow = 4096;

    SearchIndex() = default;
    SearchIndex(const SearchIndex&) = delete;
    SearchIndex& operator=(const SearchIndex&) = delete;
    ~SearchIndex();

    // Adds a document (not null) and returns its id.
    Id add(const void* doc, std::string_view path, std::string_view description);
    // Removes document `id`, given with the same text it was added with.
    void remove(Id id, std::string_view path, std::string_view description);

    struct Candidate {
        const void* doc;
        // From the lists of the rarest include term: that term surely matches a token.
        bool exact;
        // ... and one of those tokens is in the file name (meaningful when exact; when
        // not exact, true: unknown). When decided: every include term is in the file name.
        bool named;
        // The index checked every other term in its own lists: the document matches, and
        // `named` says in which group. Else the caller must check with match().
        bool decided;
    };
    // What the visitor wants next: every candidate, only those that may match with every
    // include term in the file name (the index skips the others before any check), or none.
    enum class Want { all, named, stop };
    // Calls `visit` with the documents that may match `q` (every one that does is among
    // them, as far as the visitor's Want), newest first, until it says stop or `budget`
    // postings have been examined. Returns the number of postings examined.
    std::size_t candidates(const SearchQuery& q, std::size_t budget,
                           const std::function<Want(const Candidate&)>& visit) const;

    std::size_t size() const { return live_; }
    // Tokens with postings.
    std::size_t tokens() const { return by_text_.size() - empty_; }
    // Bytes held by the lists and the id table (not the tokens' nodes).
    std::size_t list_bytes() const;
    std::size_t id_table_bytes() const { return docs_.capacity() * sizeof(const void*); }
    // Tokens held as a bitmap rather than a list.
    std::size_t dense_tokens() const;

private:
    struct Token {
        std::string text;  // folded
        // Sparse form: the postings (id << 1 | in the file name), dead ones included.
        std::vector<Id> postings;
        // Dense form, when not empty (postings then empty): per 64 ids from id 0, a word of
        // the documents holding the token, then a word of those holding it in the file name.
        std::vector<std::uint64_t> bits;
        std::uint32_t dead = 0;  // sparse form: removed postings still in the list
        std::uint32_t live = 0;  // documents holding the token, in either form
        bool dense() const { return !bits.empty(); }
        // What a walk over the token costs, for choosing the rarest term.
        std::size_t weight() const { return dense() ? live : postings.size(); }
    };
    struct TokenText {
        std::string_view operator()(const Token* t) const { return t->text; }
    };
    struct Scratch {
        std::string text;                                // the folded tokens, one after another
        std::vector<std::pair<std::uint32_t, std::uint32_t>> spans;  // (offset, size | name bit 31)
    };

    // The distinct folded tokens of a document into scratch_, each marked when it occurs
    // in the file name.
    void gather(std::string_view path, std::string_view description);
    void compact(Token& t);
    // Between the two forms: dense once the token is in more than a 32nd of the ids given
    // (the bitmap then costs at most twice the list), sparse again below a 64th.
    void densify(Token& t);
    void sparsify(Token& t);
    void drop_empty();

    FlatSet<Token, std::string_view, TokenText, std::hash<std::string_view>> by_text_;  // owns the tokens
    // The same tokens in order, for prefixes. A key holds the token's first eight bytes
    // (big-endian, zero-padded: their order is the text's), so that a search down the tree
    // reads the token itself only where two keys share them: one cache miss a level, not two.
    struct Ordered {
        std::uint64_t head;
        Token* token;
    };
    struct Probe {
        std::uint64_t head;
        std::string_view text;
    };
    struct OrderedLess {
        using is_transparent = void;
        static std::string_view text(const Ordered& o) { return o.token->text; }
        static std::string_view text(const Probe& p) { return p.text; }
        template <class A, class B>
        bool operator()(const A& a, const B& b) const
        {
            return a.head != b.head ? a.head < b.head : text(a) < text(b);
        }
    };
    std::set<Ordered, OrderedLess> ordered_;
    std::vector<const void*> docs_;               // by id; null: removed
    std::size_t live_ = 0;
    std::size_t empty_ = 0;  // tokens without postings, kept until drop_empty()
    Scratch scratch_;
};

}  // namespace peerdex
