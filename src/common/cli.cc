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

void other_option(int option, const char* program, void (*usage)(FILE*))
{
    if (option == 'h') {
        usage(stdout);
        std::exit(0);
    }
    if (option == 'V') {
        std::printf("%s %s\n", program, PEERDEX_VERSION);
        std::exit(0);
    }
    // getopt has named the option; the whole usage would bury that line.
    std::fprintf(stderr, "Try '%s --help' for the options.\n", program);
    std::exit(2);
}

void no_arguments_left(const char* program, int optind, int argc, char** argv)
{
    if (optind < argc) {
        std::fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", program, argv[optind]);
        std::exit(2);
    }
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
