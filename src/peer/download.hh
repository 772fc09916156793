// One download from a peer on the loop. The target's name appears only once the file is
// complete (and, with a content id, verified) and synced. Unverified (a course peer,
// peerdex-protocol(7), PEER TRANSFERS): the bytes go to an unnamed file and nothing is left
// behind by a failure, a cancel or a crash. Verified (FILE RANGES): the verified part of a
// cut download stays in a hidden partial for the next run (partial_file.hh).
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "reply.hh"

namespace peerdex {

struct DownloadOptions {
    std::uint64_t stall_ms = 30000;
    bool progress = false;    // a progress line on stderr
    bool resume = true;       // false (--no-resume): a partial left by an earlier run is dropped
    bool verify = true;       // false (--no-verify): GET_FILE, checked by its length only
    std::string expected_id;  // the content id the tracker gave, if any ("sha256:..."): the peer
                              // must serve exactly that file
    std::optional<std::uint64_t> expected_size;  // the size the tracker gave with the id
    std::string peer;         // how messages name the peer ("bob's peer at 127.0.0.1:4000")
};

// What a finished download did, for its success line.
struct DownloadInfo {
    bool verified = false;      // every byte checked against the file's content id
    std::string id;             // that id
    std::uint64_t reused = 0;   // bytes a partial from an earlier run gave
    std::uint64_t kept = 0;     // failed: verified bytes kept in the partial for the next run
    std::uint64_t size = 0;
};

class Download {
public:
    enum class Result { ok, not_found, failed, cancelled };
    using Done = std::function<void(Result, const std::string& why, const DownloadInfo& info)>;

    struct State;
    // Starts at once; `done` is called exactly once, after every handle is closed. The
    // handle returned is valid until then.
    //
    // A peer that serves hash trees (peerdex-protocol(7), FILE RANGES) gives the file's tree
    // first: the bytes then come as one GET_RANGE into a hidden partial beside the target,
    // each leaf checked as it completes, and a cut leaves the verified part for the next
    // run. A course peer (no trees) gets today's GET_FILE, unless an id was expected.
    static State* start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path,
                        std::string local_path, DownloadOptions options, Done done);
    // Where a download of `remote` asked to land at `local` goes: `local` itself, or
    // when it is empty or a directory, the last component of `remote` inside it. Empty
    // when `remote` gives no file name; `why` then says what to do.
    static std::string target(const std::string& remote, const std::string& local, std::string& why);
    // Stops it now: `done` follows with Result::cancelled.
    static void cancel(State* s);
};

}  // namespace peerdex
