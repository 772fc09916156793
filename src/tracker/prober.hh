// Liveness probes (peerdex-protocol(7), EXPIRY): the tracker connects to each connected
// user's peer listener, round after round, and closes without sending a byte. After
// `failures` consecutive failed probes of the same endpoint the store expires the user
// (disconnects it as DISCONNECT does). All on the tracker's loop, non-blocking.
//
// Pacing: a round walks every connected user once (Store::walk_connected). Probes start
// evenly spaced, interval / connected apart, never closer than 1 / rate, and at most
// `max_inflight` are open at once; a round that ends early waits for the interval to pass
// before the next begins. A full round therefore takes max(interval, connected / rate).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store.hh"

namespace peerdex {

struct ProbeOptions {
    std::uint64_t interval_ms = 60000;  // 0: no probing
    std::uint64_t timeout_ms = 5000;    // a connect not answered within this is a failure
    unsigned failures = 3;              // consecutive failures that expire a user
    unsigned rate = 1000;               // probes started per second, at most
    unsigned max_inflight = 64;         // probes open at once, at most
};

struct ProbeCounters {
    std::uint64_t probes = 0, ok = 0, failed = 0, local_errors = 0, expired = 0, rounds = 0;
};

class Prober {
public:
    // Called once per user the store expired.
    using Expired = std::function<void(std::string_view user)>;

    Prober(uv_loop_t* loop, Store& store, ProbeOptions options, Expired expired);
    Prober(const Prober&) = delete;
    Prober& operator=(const Prober&) = delete;
    ~Prober();

    void start();
    // Closes the timer and every open probe; answers the store still owes are still taken.
    void stop();
    const ProbeCounters& counters() const { return counters_; }

private:
    struct Probe;
    struct Failing {
        Address ip;
        std::uint16_t port = 0;
        unsigned count = 0;
        std::uint64_t round = 0;  // the round of the last failure
    };

    void pump();
    void arm(std::uint64_t delay_ms);
    void fetch();
    void drain_walk();
    void begin_round();
    void end_round();
    void launch(UserEndpoint&& target);
    void finished(Probe& probe, int status);
    void failed(const UserEndpoint& target);
    static void on_walk(void* ctx, std::uint64_t token, StoreReply&& reply);
    static void on_expire(void* ctx, std::uint64_t token, StoreReply&& reply);

    uv_loop_t* loop_;
    Store& store_;
    ProbeOptions options_;
    Expired expired_;
    uv_timer_t* timer_;  // freed in its close callback
    std::deque<UserEndpoint> queue_;  // walked, not yet probed
    std::unique_ptr<ListStream> walking_;  // the store's answer being read
    std::vector<Probe*> live_;             // open probes
    std::unordered_map<std::string, Failing> failing_;
    std::unordered_map<std::uint64_t, std::string> expiring_;  // store answers owed
    std::uint64_t next_token_ = 0;
    std::uint64_t round_ = 0;
    std::uint64_t round_start_ = 0;
    std::uint64_t next_round_at_ = 0;
    double next_due_ = 0;  // loop time (ms) at which the next probe may start
    unsigned inflight_ = 0;
    bool fetching_ = false;
    bool walk_short_ = false;  // the answer being read is the round's last
    bool walk_done_ = false;   // the store's walk reached the end of this round
    bool between_rounds_ = false;
    bool pumping_ = false;
    bool stopped_ = true;
    ProbeCounters counters_;
};

}  // namespace peerdex
