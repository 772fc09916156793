// Console output of the daemons (PROTOCOL.md §6). stdout carries the contract lines
// and is flushed once per loop iteration, not once per line; stderr is unbuffered.
#pragma once

#include <cstdio>

namespace peerdex {

enum class Verbosity { quiet, normal, verbose };

class Console {
public:
    static void init(Verbosity v);
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
    static void flush();

private:
    static inline Verbosity verbosity_ = Verbosity::normal;
    static inline bool dirty_ = false;
};

}  // namespace peerdex
