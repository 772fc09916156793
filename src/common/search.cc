#include "search.hh"

namespace peerdex {

namespace {

bool token_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

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

bool any_token_has_prefix(std::string_view term, const std::vector<std::string_view>& tokens)
{
    for (std::string_view t : tokens)
        if (prefix_of(term, t))
            return true;
    return false;
}

}  // namespace

std::vector<std::string_view> search_tokens(std::string_view text)
{
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && !token_byte(static_cast<unsigned char>(text[i])))
            ++i;
        const std::size_t start = i;
        while (i < text.size() && token_byte(static_cast<unsigned char>(text[i])))
            ++i;
        if (i > start)
            out.push_back(text.substr(start, i - start));
    }
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
    const std::size_t slash = path.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    const std::vector<std::string_view> name_tokens = search_tokens(name);
    std::vector<std::string_view> all = search_tokens(path);
    const std::vector<std::string_view> described = search_tokens(description);
    all.insert(all.end(), described.begin(), described.end());
    for (const std::string& term : q.exclude)
        if (any_token_has_prefix(term, all))
            return Match::none;
    bool in_name = true;
    for (const std::string& term : q.include) {
        if (any_token_has_prefix(term, name_tokens))
            continue;
        in_name = false;
        if (!any_token_has_prefix(term, all))
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
