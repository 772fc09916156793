// One GET_FILE download from a peer (peerdex-protocol(7), PEER TRANSFERS) on the loop: the
// file is written (on the thread pool) to a temporary file beside the target and renamed
// into place only after exactly SIZE bytes arrived; on any failure nothing is left behind.
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
    enum class Result { ok, not_found, failed };
    using Done = std::function<void(Result, const std::string& why)>;

    // Starts at once; `done` is called exactly once, after every handle is closed.
    static void start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path, std::string local_path,
                      std::uint64_t stall_ms, bool progress, Done done);

    struct State;
};

}  // namespace peerdex
