// The peer listener of the interactive client (PROTOCOL.md §3): serves GET_FILE for
// exactly the paths its connected user published, any number of downloaders at once,
// each streamed in bounded chunks (file reads on the thread pool).
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_set>

#include "deadline.hh"

namespace peerdex {

class PeerConn;

class PeerServer {
public:
    PeerServer(uv_loop_t* loop, std::string listen_addr, std::uint16_t port);
    PeerServer(const PeerServer&) = delete;
    PeerServer& operator=(const PeerServer&) = delete;
    ~PeerServer();

    // Listens (port 0: a free port between 1024 and 49151). Returns 0 or a libuv error.
    int start();
    void stop();
    std::uint16_t port() const { return port_; }

    void publish(const std::string& path) { published_.insert(path); }
    void unpublish(const std::string& path) { published_.erase(path); }
    void set_published(std::unordered_set<std::string> paths) { published_ = std::move(paths); }
    bool published(const std::string& path) const { return published_.count(path) != 0; }

private:
    friend class PeerConn;
    static void on_connection(uv_stream_t* s, int status);
    static void on_sweep(uv_timer_t* t);
    void accept_one();
    void conn_closed();

    uv_loop_t* loop_;
    std::string listen_addr_;
    std::uint16_t requested_port_;
    std::uint16_t port_ = 0;
    uv_tcp_t* listener_ = nullptr;
    uv_timer_t* sweep_ = nullptr;
    DeadlineList<PeerConn> idle_;
    std::unordered_set<std::string> published_;  // read by LIST_FILES
    std::size_t conns_ = 0;
    bool accept_pending_ = false;
    bool running_ = false;
};

}  // namespace peerdex
