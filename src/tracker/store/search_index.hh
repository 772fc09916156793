// An inverted index of publications for SEARCH (peerdex-protocol(7), SEARCH). Pure: it
// knows documents by an opaque pointer and the tokens of their path and description
// (search.hh), and gives candidates newest first; the caller checks each with match(),
// the connected-owner rule and the name-first order.
//
// Layout: every document gets the next 32-bit id (newer documents have larger ids), and
// `docs_` maps ids to documents (null once removed). Each distinct folded token has a list
// of the ids that contain it, in increasing order: adding appends, so a list never moves
// an element. Removing leaves the id in the lists (the id table says it is gone) and counts
// it dead in each of its lists; a list with more dead ids than live ones is rewritten
// without them, so lists stay within twice their live size at an amortised constant cost.
// The dictionary is ordered, so the tokens a prefix matches are one range of it. Not done
// yet: the id table is never compacted (8 bytes per document ever added in this run; a
// renumbering pass is the plan), and the lists are plain 32-bit ids (delta coding is the
// plan if the memory target needs it).
//
// A query starts from its rarest include term (fewest ids over its prefix range) and walks
// those ids newest first, merging the lists of the range; a term whose prefix covers more
// than kMaxRangeLists tokens walks the id table instead. The walk stops when the visitor
// says it has enough, or after `budget` ids examined: the work of one query is bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "search.hh"

namespace peerdex {

class SearchIndex {
public:
    using Id = std::uint32_t;
    static constexpr std::size_t kMaxRangeLists = 1024;

    // Adds a document (not null) and returns its id.
    Id add(const void* doc, std::string_view path, std::string_view description);
    // Removes document `id`, given with the same text it was added with.
    void remove(Id id, std::string_view path, std::string_view description);

    // Calls `visit` with the documents that may match `q` (every one that does is among
    // them), newest first, until it returns false or `budget` ids have been examined.
    // Returns the number of ids examined.
    std::size_t candidates(const SearchQuery& q, std::size_t budget,
                           const std::function<bool(const void* doc)>& visit) const;

    std::size_t size() const { return live_; }
    // Bytes held by the lists and the id table (not the dictionary's nodes).
    std::size_t list_bytes() const;

private:
    struct List {
        std::vector<Id> ids;  // increasing
        std::size_t dead = 0;
    };
    using Dictionary = std::map<std::string, List, std::less<>>;

    static std::vector<std::string> distinct_tokens(std::string_view path, std::string_view description);
    void compact(List& list);

    Dictionary dict_;
    std::vector<const void*> docs_;  // by id; null: removed
    std::size_t live_ = 0;
};

}  // namespace peerdex
