// Console output of the daemons (peerdex-protocol(7), CONSOLE LINES). stdout carries the
// contract lines, buffered and written once per loop iteration, not once per line; stderr
// gets one write per message.
//
// A daemon's stdout may be a pipe nobody reads. With `nonblocking` (the tracker), a
// pipe or socket on stdout is made non-blocking: lines wait in a bounded buffer, and
// when that is full they are dropped and counted, so the loop never stalls on them.
#pragma once

#include <cstdint>
#include <cstdio>

namespace peerdex {

enum class Verbosity { quiet, normal, verbose };

class Console {
public:
    static void init(Verbosity v, bool nonblocking = false);
    static Verbosity verbosity() { return verbosity_; }
    static bool normal() { return verbosity_ != Verbosity::quiet; }
    static bool verbose() { return verbosity_ == Verbosity::verbose; }

    // A contract line on stdout (suppressed by -q).
    static void line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    // A start-up line on stdout that -q keeps: it tells where the daemon listens.
    static void banner(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    // An informational message on stderr (suppressed by -q).
    static void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    // A diagnostic for -v on stderr.
    static void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    // An error on stderr, always shown.
    static void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    // Writes what stdout can take now.
    static void flush();
    // Lines dropped because stdout was not being read.
    static std::uint64_t dropped() { return dropped_; }

private:
    static inline Verbosity verbosity_ = Verbosity::normal;
    static inline std::uint64_t dropped_ = 0;
};

}  // namespace peerdex
