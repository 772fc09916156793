// The matching rules of SEARCH (peerdex-protocol(7), SEARCH): tokens, the query's terms,
// and whether a publication matches. Pure; the tracker's index and the client's own search
// of a course tracker (which has no SEARCH) share them, so both answer alike.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace peerdex {

inline constexpr std::size_t kMaxQueryBytes = 255;
inline constexpr std::size_t kMaxQueryTerms = 16;
inline constexpr unsigned kMaxSearchLimit = 1000;
// The tracker's answer holds at most this many hits unless --max-results says otherwise.
inline constexpr unsigned kDefaultMaxResults = 100;
// Candidate publications one query may examine before it answers with what it has
// (--search-budget): the bound on the work of a query whose terms match nearly everything.
// 15000 keeps the p99 of a query at 2M publications under 0.1 ms and costs 0.13% of the
// hits against 20000 (docs/PERFORMANCE.md, Search).
inline constexpr std::size_t kDefaultSearchBudget = 15000;

// SEARCH's limit: decimal 1 to 1000, nothing else (no sign, no spaces); 0 when invalid.
unsigned parse_search_limit(std::string_view s);

// A byte of a token: an ASCII letter or digit, or a byte >= 0x80.
inline bool search_token_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Calls f(token) for each maximal run of token bytes in `text`, in order, as it is (not
// folded); f returns false to stop. Allocates nothing.
template <class F>
void for_each_search_token(std::string_view text, F f)
{
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && !search_token_byte(static_cast<unsigned char>(text[i])))
            ++i;
        const std::size_t start = i;
        while (i < text.size() && search_token_byte(static_cast<unsigned char>(text[i])))
            ++i;
        if (i > start && !f(text.substr(start, i - start)))
            return;
    }
}

// The maximal runs of ASCII letters, digits and bytes >= 0x80 in `text`, in order, as they
// are (not folded). Everything else separates.
std::vector<std::string_view> search_tokens(std::string_view text);

// The last component of a path: what the name-first group of SEARCH looks at.
inline std::string_view file_name_of(std::string_view path)
{
    const std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// ASCII letters to lower case; every other byte as it is.
std::string fold(std::string_view s);

struct SearchQuery {
    std::vector<std::string> include;  // folded
    std::vector<std::string> exclude;  // folded, without the '-'
};

enum class QueryFault { none, empty, too_long, too_many_terms, no_include };

// Parses a query: terms separated by spaces; a term starting with '-' excludes; inside a
// term the token separators split it into several terms of the same kind, each counting
// toward the 16. A lone "-" (or a term of separators only) adds nothing.
QueryFault parse_query(std::string_view query, SearchQuery& out);
// Why a query was refused, for messages ("has 17 terms; at most 16").
const char* query_fault_text(QueryFault f);

// How a publication matches: not at all, by its file name (every include term is a prefix
// of a token of the path's last component: the first group of the answer), or elsewhere.
enum class Match { none, name, other };
Match match(const SearchQuery& q, std::string_view path, std::string_view description);

}  // namespace peerdex
