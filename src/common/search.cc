#include "search.hh"

namespace peerdex {

namespace {

char fold_byte(char c)
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// True when `term` (folded) is a prefix of `token` (as it is), ASCII case folded.
bool prefix_of(std::string_view term, std::string_view token)
{
    if (term.size() > token.size())
        return false;
    for (std::size_t i = 0; i < term.size(); ++i)
        if (term[i] != fold_byte(token[i]))
            return false;
    return true;
}

bool any_token_has_prefix(std::string_view term, std::string_view text)
{
    bool found = false;
    for_each_search_token(text, [&](std::string_view t) { return !(found = prefix_of(term, t)); });
    return found;
}

}  // namespace

std::vector<std::string_view> search_tokens(std::string_view text)
{
    std::vector<std::string_view> out;
    for_each_search_token(text, [&](std::string_view t) {
        out.push_back(t);
        return true;
    });
    return out;
}

std::string fold(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        c = fold_byte(c);
    return out;
}

QueryFault parse_query(std::string_view query, SearchQuery& out)
{
    out = SearchQuery();
    if (query.size() > kMaxQueryBytes)
        return QueryFault::too_long;
    std::size_t terms = 0;
    std::size_t i = 0;
    while (i < query.size()) {
        while (i < query.size() && query[i] == ' ')
            ++i;
        const std::size_t start = i;
        while (i < query.size() && query[i] != ' ')
            ++i;
        std::string_view word = query.substr(start, i - start);
        if (word.empty())
            continue;
        const bool excluding = word[0] == '-';
        if (excluding)
            word.remove_prefix(1);
        for (std::string_view t : search_tokens(word)) {
            if (++terms > kMaxQueryTerms)
                return QueryFault::too_many_terms;
            (excluding ? out.exclude : out.include).push_back(fold(t));
        }
    }
    if (terms == 0)
        return QueryFault::empty;
    return out.include.empty() ? QueryFault::no_include : QueryFault::none;
}

const char* query_fault_text(QueryFault f)
{
    switch (f) {
    case QueryFault::none:
        return "is valid";
    case QueryFault::empty:
        return "has no term (letters, digits or bytes beyond ASCII)";
    case QueryFault::too_long:
        return "is longer than 255 bytes";
    case QueryFault::too_many_terms:
        return "has more than 16 terms (separators inside a word split it into several)";
    case QueryFault::no_include:
        return "only excludes: give at least one term without '-'";
    }
    return "is not valid";
}

Match match(const SearchQuery& q, std::string_view path, std::string_view description)
{
    // Allocates nothing: the index calls it for every candidate it cannot decide alone.
    const std::string_view name = file_name_of(path);
    for (const std::string& term : q.exclude)
        if (any_token_has_prefix(term, path) || any_token_has_prefix(term, description))
            return Match::none;
    bool in_name = true;
    for (const std::string& term : q.include) {
        if (in_name && any_token_has_prefix(term, name))
            continue;
        in_name = false;
        if (!any_token_has_prefix(term, path) && !any_token_has_prefix(term, description))
            return Match::none;
    }
    return in_name ? Match::name : Match::other;
}

unsigned parse_search_limit(std::string_view s)
{
    if (s.empty() || s.size() > 4)
        return 0;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v <= kMaxSearchLimit ? v : 0;
}

}  // namespace peerdex
