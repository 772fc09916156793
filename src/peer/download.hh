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
#include <vector>

#include "reply.hh"

namespace peerdex {

// Another peer that published the same file (the tracker's SOURCES): where it listens and
// the path it published.
struct Source {
    std::string name;  // for messages: "carol's peer at 127.0.0.1:4001"
    sockaddr_storage addr{};
    std::string path;
};

struct DownloadOptions {
    std::uint64_t stall_ms = 30000;
    bool progress = false;    // a progress line on stderr
    bool resume = true;       // false (--no-resume): a partial left by an earlier run is dropped
    bool verify = true;       // false (--no-verify): GET_FILE, checked by its length only
    std::string expected_id;  // the content id the tracker gave, if any ("sha256:..."): the peer
                              // must serve exactly that file
    std::optional<std::uint64_t> expected_size;  // the size the tracker gave with the id
    std::string peer;         // how messages name the peer ("bob's peer at 127.0.0.1:4000")
    // Several sources at once (peerdex(1), --sources): with an expected id, the peer given
    // to start() and these, verified ranges from up to max_sources of them at a time.
    std::vector<Source> sources;
    std::size_t max_sources = 1;
    // Asks for the sources again (the tracker's SOURCES) every refresh_ms, and when every
    // known source is gone; answers through the callback (new ones are added, known ones
    // ignored). Empty: the sources are fixed.
    std::function<void(std::function<void(std::vector<Source>)>)> refresh;
    std::uint64_t refresh_ms = 10000;
    // What happens to sources as it happens (one dropped for bad data, one gone, one joined).
    std::function<void(const std::string&)> note;
};

// What a finished download did, for its success line.
struct DownloadInfo {
    bool verified = false;      // every byte checked against the file's content id
    std::string id;             // that id
    std::uint64_t reused = 0;   // bytes a partial from an earlier run gave
    std::uint64_t kept = 0;     // failed: verified bytes kept in the partial for the next run
    std::uint64_t size = 0;
    std::size_t sources = 0;     // sources that sent verified bytes
    std::uint64_t received = 0;  // bytes received from every source (more than size - reused
                                 // when a bad leaf, or a segment cut halfway, came again)
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
    // first: the bytes then come as GET_RANGE segments into a hidden partial beside the
    // target, from every source at once (one whole range when there is one source), each
    // leaf checked as it completes; a cut leaves the verified leaves for the next run. A
    // course peer (no trees) gets today's GET_FILE, unless an id was expected.
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
