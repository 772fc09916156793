#include "cli.hh"

#include <cstdio>
#include <cstdlib>

#include "wire.hh"

namespace peerdex {

void bad_option(const char* program, const char* what, const char* value)
{
    std::fprintf(stderr, "%s: invalid %s '%s' (try --help)\n", program, what, value);
    std::exit(2);
}

std::uint64_t number_option(const char* program, const char* what, const char* value, std::uint64_t min,
                            std::uint64_t max)
{
    auto v = parse_decimal(value, max);
    if (!v || *v < min)
        bad_option(program, what, value);
    return *v;
}

}  // namespace peerdex
