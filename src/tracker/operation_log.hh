// Where the tracker gives every completed operation (peerdex-tracker(8), OPERATION LOG). The
// one implementation is the forwarder to peerdex-logd (oplog.hh); a build without forwarding
// (-Doplog=disabled, no libtirpc) has none, and the server then logs nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace peerdex {

// --log-queue's default: entries kept while the log server is slow or down.
inline constexpr std::size_t kDefaultLogQueue = 100000;

class OperationLog {
public:
    virtual ~OperationLog() = default;
    // One entry: the operation's name, its user, path (or empty) and timestamp (or empty).
    virtual void record(std::string_view operation, std::string_view user, std::string_view path,
                        std::string_view ts) = 0;
    // Delivers what it can within flush_ms, then closes every handle.
    virtual void stop(std::uint64_t flush_ms) = 0;
    virtual void print_stats() const = 0;

    // For GET /metrics: entries delivered, dropped (queue full), waiting; whether the log
    // server answered the last call (false while it is unreachable).
    struct Counts {
        std::uint64_t delivered = 0, dropped = 0;
        std::size_t queued = 0;
        bool reachable = true;
    };
    virtual Counts counts() const = 0;
};

}  // namespace peerdex
