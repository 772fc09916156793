// The tracker's session layer: one libuv loop, one listener, one Session per client
// connection. Requests are parsed by RequestParser, answered by a Store (store/store.hh)
// through reply slots, and encoded by answer.hh; this layer moves bytes, keeps replies in
// request order, applies back-pressure and enforces the connection limits.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "acceptor.hh"
#include "metrics.hh"
#include "prober.hh"
#include "reply_slots.hh"
#include "store.hh"

namespace peerdex {

inline constexpr std::uint16_t kDefaultTrackerPort = 4000;
// SEARCHes a session may send per second, on average, with bursts of as many; a person
// typing never reaches it, a script scanning the index does (0: no limit).
inline constexpr unsigned kDefaultSearchRate = 100;

struct TrackerOptions {
    std::string listen_addr;     // empty: every address, IPv6 and IPv4 (dual-stack)
    std::uint16_t port = kDefaultTrackerPort;
    std::size_t max_conns = 0;   // 0: derived from the file descriptor limit
    std::uint64_t idle_timeout_ms = 30000;
    ProbeOptions probe;          // liveness probes and expiry (interval 0: off)
    AuthMode auth = AuthMode::none;  // --auth: what the store checks; here, for messages
    unsigned max_results = kDefaultMaxResults;  // --max-results: SEARCH's limit is capped to it
    unsigned search_rate = kDefaultSearchRate;  // --search-rate: SEARCHes per second and session
};

// What GET /metrics reports of the sessions (peerdex-tracker(8), METRICS): replies by
// operation and code, their latency, bytes moved.
struct TrackerMetrics {
    static constexpr std::size_t kOps = static_cast<std::size_t>(Op::sources) + 1;
    static constexpr std::size_t kCodes = 11;  // 0 to 9, then every other code counted as one
    std::uint64_t replies[kOps][kCodes] = {};
    Histogram latency[kOps];
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t sessions = 0;  // accepted since start
    std::uint64_t search_hits = 0;  // entries of the SEARCH answers given
};

class Session;
class OperationLog;

class TrackerServer {
public:
    TrackerServer(uv_loop_t* loop, TrackerOptions options, std::unique_ptr<Store> store);
    TrackerServer(const TrackerServer&) = delete;
    TrackerServer& operator=(const TrackerServer&) = delete;
    ~TrackerServer();

    // Binds, listens and prints the init line. Returns 0 or a libuv error code.
    int start();
    // Stops accepting, lets pending replies finish (at most kDrainMs), closes every
    // handle and the store so that uv_run returns.
    void stop();

    const Store& store() const { return *store_; }
    // The liveness prober, or null while probing is off.
    const Prober* prober() const { return prober_.get(); }
    // Changes refused because the user belongs to another address or key (--auth).
    std::uint64_t ownership_refused() const { return ownership_refused_; }
    // SEARCHes submitted, and times a session was held back by its search rate.
    std::uint64_t searches() const { return searches_; }
    std::uint64_t search_throttled() const { return search_throttled_; }
    unsigned max_results() const { return options_.max_results; }
    const TrackerMetrics& metrics() const { return metrics_; }
    std::size_t open_sessions() const { return acceptor_.open(); }
    // Store::counts() for the status page; the store itself, for the page's own requests.
    Store& store() { return *store_; }
    const OperationLog* oplog() const { return oplog_; }
    // Every handled operation is also given to `oplog` (may be null: logging off).
    void set_oplog(OperationLog* oplog) { oplog_ = oplog; }

private:
    friend class Session;

    static void on_check(uv_check_t* check);
    // A session over its search rate: not read until its bucket refills.
    void throttle(Session* s);
    static void on_throttle_timer(uv_timer_t* timer);
    void flush_later(Session* s);
    void flush_answers();
    // Completions and wakeups of the store, routed to their slot's session by token.
    static void on_answer(void* ctx, std::uint64_t token, StoreReply&& reply);
    static void on_list_ready(void* ctx, std::uint64_t token);
    void finish();
    void expired(std::string_view user);

    uv_loop_t* loop_;
    TrackerOptions options_;
    std::unique_ptr<Store> store_;
    ReplySlots slots_;
    std::vector<Session*> starved_;    // sessions waiting for a free reply slot
    std::vector<Session*> flush_due_;  // sessions with answers to write at the end of the turn
    std::vector<Session*> throttled_;  // sessions over their search rate
    OperationLog* oplog_ = nullptr;
    std::unique_ptr<Prober> prober_;
    TrackerMetrics metrics_;
    std::uint64_t ownership_refused_ = 0;
    std::uint64_t searches_ = 0;
    std::uint64_t search_throttled_ = 0;
    Acceptor acceptor_;
    uv_check_t flush_{};
    uv_idle_t flush_idle_{};
    uv_timer_t throttle_timer_{};
    bool started_ = false;
    bool stopping_ = false;
};

}  // namespace peerdex
