// Command-line helpers shared by the programs' main.cc files.
#pragma once

#include <cstdint>

namespace peerdex {

// Prints "<program>: invalid <what> '<value>' (try --help)" and exits 2.
[[noreturn]] void bad_option(const char* program, const char* what, const char* value);

// A decimal option value in [min, max], or bad_option().
std::uint64_t number_option(const char* program, const char* what, const char* value, std::uint64_t min,
                            std::uint64_t max);

}  // namespace peerdex
