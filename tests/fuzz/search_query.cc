// SEARCH (peerdex-protocol(7), SEARCH): any query parses or is refused with a reason; an
// accepted one has between 1 and 16 terms, each folded and non-empty; folding is idempotent;
// matching any path and description against it is safe.
#include <string>

#include "pieces.hh"
#include "search.hh"

using namespace peerdex;
using peerdex::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    // Query, path and description: the input cut in three at NULs (missing parts are empty).
    std::string_view rest = in.bytes;
    std::string_view parts[3];
    for (auto& part : parts) {
        const std::size_t nul = rest.find('\0');
        part = rest.substr(0, nul);
        rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    }
    const std::string folded = fold(parts[0]);
    check(fold(folded) == folded, "folding is not idempotent");
    search_tokens(parts[1]);
    parse_search_limit(parts[2]);
    SearchQuery q;
    const QueryFault fault = parse_query(parts[0], q);
    check(*query_fault_text(fault) != '\0' || fault == QueryFault::none, "a refusal without a reason");
    if (fault != QueryFault::none)
        return 0;
    check(!q.include.empty(), "an accepted query includes nothing");
    check(q.include.size() + q.exclude.size() <= 16, "more than 16 terms accepted");
    for (const auto* terms : {&q.include, &q.exclude})
        for (const std::string& t : *terms)
            check(!t.empty() && fold(t) == t, "a term is empty or not folded");
    const Match m = match(q, parts[1], parts[2]);
    (void)m;
    return 0;
}
