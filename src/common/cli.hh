// Command-line helpers shared by the programs' main.cc files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace peerdex {

// Prints "<program>: invalid <what> '<value>' (try --help)" and exits 2.
[[noreturn]] void bad_option(const char* program, const char* what, const char* value);

// The last arms of every program's option switch: -h prints the usage on stdout and
// exits 0, -V prints "<program> <version>" and exits 0, anything else (getopt has
// said what) points at --help on stderr and exits 2.
[[noreturn]] void other_option(int option, const char* program, void (*usage)(FILE*));

// With arguments left after the options: "<program>: unexpected argument 'X' (try
// --help)" and exit 2.
void no_arguments_left(const char* program, int optind, int argc, char** argv);

// A decimal option value in [min, max], or bad_option().
std::uint64_t number_option(const char* program, const char* what, const char* value, std::uint64_t min,
                            std::uint64_t max);

// The same for a count held in a size_t: `max` fits one on every target, 32-bit ones too.
inline std::size_t size_option(const char* program, const char* what, const char* value, std::size_t min,
                               std::size_t max)
{
    return static_cast<std::size_t>(number_option(program, what, value, min, max));
}

}  // namespace peerdex
