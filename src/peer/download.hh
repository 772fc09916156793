// One GET_FILE download from a peer (peerdex-protocol(7), PEER TRANSFERS) on the loop: the
// file is written (on the thread pool) to an unnamed file in the target's directory and
// named only after exactly SIZE bytes arrived and were synced; on any failure, a cancel or
// even a crash, nothing is left behind.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>

#include "reply.hh"

namespace peerdex {

class Download {
public:
    enum class Result { ok, not_found, failed, cancelled };
    using Done = std::function<void(Result, const std::string& why)>;

    struct State;
    // Starts at once; `done` is called exactly once, after every handle is closed. The
    // handle returned is valid until then.
    static State* start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path, std::string local_path,
                      std::uint64_t stall_ms, bool progress, Done done);
    // Where a download of `remote` asked to land at `local` goes: `local` itself, or
    // when it is empty or a directory, the last component of `remote` inside it. Empty
    // when `remote` gives no file name; `why` then says what to do.
    static std::string target(const std::string& remote, const std::string& local, std::string& why);
    // Stops it now: `done` follows with Result::cancelled.
    static void cancel(State* s);
};

}  // namespace peerdex
