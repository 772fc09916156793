// The tracker's network side: one libuv loop, one listener, one Session per client
// connection. All protocol logic lives in RequestParser and Registry; this layer moves
// bytes, applies back-pressure and enforces the connection limits.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "deadline.hh"
#include "registry.hh"

namespace peerdex {

inline constexpr std::uint16_t kDefaultTrackerPort = 4000;

struct TrackerOptions {
    std::string listen_addr;     // empty: every address, IPv6 and IPv4 (dual-stack)
    std::uint16_t port = kDefaultTrackerPort;
    std::size_t max_conns = 0;   // 0: derived from the file descriptor limit
    std::uint64_t idle_timeout_ms = 30000;
};

class Session;
class OplogForwarder;

class TrackerServer {
public:
    TrackerServer(uv_loop_t* loop, TrackerOptions options);
    TrackerServer(const TrackerServer&) = delete;
    TrackerServer& operator=(const TrackerServer&) = delete;
    ~TrackerServer();

    // Binds, listens and prints the init line. Returns 0 or a libuv error code.
    int start();
    // Stops accepting, lets pending replies finish (at most kDrainMs), closes every
    // handle so that uv_run returns.
    void stop();

    Registry& registry() { return registry_; }
    // Every handled operation is also given to `oplog` (may be null: logging off).
    void set_oplog(OplogForwarder* oplog) { oplog_ = oplog; }

private:
    friend class Session;

    static void on_connection(uv_stream_t* server, int status);
    static void on_sweep(uv_timer_t* timer);
    static void on_check(uv_check_t* check);
    void accept_one();
    void session_closed();

    uv_loop_t* loop_;
    TrackerOptions options_;
    Registry registry_;
    OplogForwarder* oplog_ = nullptr;
    uv_tcp_t listener_{};
    uv_timer_t sweep_{};
    uv_timer_t drain_{};
    uv_check_t flush_{};
    DeadlineList<Session> idle_;
    DeadlineList<Session> linger_;
    std::size_t sessions_ = 0;
    bool accept_pending_ = false;
    bool listening_ = false;
    bool stopping_ = false;
    bool emfile_reported_ = false;
};

}  // namespace peerdex
