// peerdex-logd's network side: an ONC-RPC server on one libuv loop. Records are
// bounded, connections time out, and the blocking file work of LogStore runs on the
// thread pool one job at a time, in arrival order.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "acceptor.hh"
#include "address.hh"
#include "store.hh"

namespace peerdex {

inline constexpr std::uint16_t kDefaultLogdPort = 4001;

enum class RpcbindMode { automatic, yes, no };

struct LogdOptions {
    std::string listen_addr;  // empty: every address
    std::uint16_t port = kDefaultLogdPort;
    std::size_t max_conns = 1024;
    std::uint64_t idle_timeout_ms = 60000;
    RpcbindMode rpcbind = RpcbindMode::automatic;
    // Who may send entries (--allow); a connection from elsewhere is closed unread.
    std::vector<Subnet> allow;
};

class LogdSession;
struct StoreJob;

class LogdServer {
public:
    LogdServer(uv_loop_t* loop, LogStore& store, LogdOptions options);
    LogdServer(const LogdServer&) = delete;
    LogdServer& operator=(const LogdServer&) = delete;
    ~LogdServer();

    int start();
    void stop();
    void reopen();  // SIGHUP
    void print_stats() const;

    // For GET /metrics: the store's figures as of its last finished job (read on the loop,
    // never while the worker writes them), and the server's own.
    struct Metrics {
        std::uint64_t written = 0, duplicates = 0, store_failures = 0;
        Histogram syncs;
        std::uint64_t calls = 0, rejected = 0, not_allowed = 0, connections = 0;
        std::size_t open = 0;
    };
    Metrics metrics() const;

private:
    friend class LogdSession;

    void submit(std::unique_ptr<StoreJob> job);
    void run_next_job();
    static void job_work(uv_work_t* req);
    static void job_done(uv_work_t* req, int status);

    uv_loop_t* loop_;
    LogStore& store_;
    LogdOptions options_;
    Acceptor acceptor_;
    std::deque<std::unique_ptr<StoreJob>> jobs_;
    bool job_running_ = false;
    std::uint16_t bound_port_ = 0;
    bool registered_ = false;
    bool stopping_ = false;
    std::string last_error_;
    std::uint64_t calls_ = 0;
    std::uint64_t rejected_ = 0;
    std::uint64_t not_allowed_ = 0;  // connections closed unread (--allow)
    std::uint64_t connections_ = 0;
    Metrics store_seen_;             // written, duplicates, syncs, failures: copied at each job's end
};

}  // namespace peerdex
