// The tracker's network side: one libuv loop, one listener, one Session per client
// connection. All protocol logic lives in RequestParser and Registry; this layer moves
// bytes, applies back-pressure and enforces the connection limits.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

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

// Sessions ordered by their last deadline reset; all share one timeout, so the list
// stays sorted by appending and the expired ones are always at the head.
class DeadlineList {
public:
    explicit DeadlineList(std::uint64_t timeout_ms) : timeout_ms_(timeout_ms) {}
    void touch(Session* s, std::uint64_t now);  // (re)insert at the tail
    void remove(Session* s);
    Session* expired(std::uint64_t now) const;  // the head, if past its deadline
    Session* head() const { return head_; }

private:
    Session* head_ = nullptr;
    Session* tail_ = nullptr;
    std::uint64_t timeout_ms_;
};

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
    std::size_t session_count() const { return sessions_; }

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
    uv_tcp_t listener_{};
    uv_timer_t sweep_{};
    uv_timer_t drain_{};
    uv_check_t flush_{};
    DeadlineList idle_;
    DeadlineList linger_;
    std::size_t sessions_ = 0;
    bool accept_pending_ = false;
    bool listening_ = false;
    bool stopping_ = false;
    bool emfile_reported_ = false;
};

}  // namespace peerdex
