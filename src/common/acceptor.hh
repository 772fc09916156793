// What every peerdex listener does alike, written once: accept up to a cap (beyond it libuv
// stops polling the listener and the kernel backlog holds new clients until a slot frees),
// sweep two deadline lists (at work: the idle timeout; closing: the linger), and drain (stop
// accepting, let each connection finish what it is doing, cut what is left after a grace
// period, say when the last one is gone). The tracker, the log server and the peer listener
// each give it their connection type; what a connection does with its bytes is theirs.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "deadline.hh"

namespace peerdex {

// The part of a daemon's connection the acceptor works with. A connection owns itself: it
// calls Acceptor::closed() from its handle's close callback and frees itself after.
class Accepted {
public:
    virtual ~Accepted() = default;
    virtual uv_tcp_t* tcp() = 0;
    // Accepted: start reading.
    virtual void start() = 0;
    // Its deadline (idle or linger) passed.
    virtual void expire() = 0;
    // The daemon is stopping: finish what is under way, then close.
    virtual void drain() = 0;
    // Close now.
    virtual void close() = 0;

    Accepted* dl_prev = nullptr;  // DeadlineList links
    Accepted* dl_next = nullptr;
    std::uint64_t dl_stamp = 0;
    void* dl_owner = nullptr;

private:
    friend class Acceptor;
    Accepted* prev_ = nullptr;  // every open connection, for drain and stop
    Accepted* next_ = nullptr;
};

struct AcceptorLimits {
    std::size_t max_conns = 1024;
    std::uint64_t idle_ms = 30000;
    std::uint64_t linger_ms = 2000;
    std::uint64_t sweep_ms = 1000;
    int backlog = 128;
};

class Acceptor {
public:
    // `make` returns a new connection (its handle not yet initialized), or null.
    Acceptor(uv_loop_t* loop, const char* program, AcceptorLimits limits, std::function<Accepted*()> make);
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;
    ~Acceptor();

    // Listens on addr:port (listen_tcp's rules; `program` names its error messages, null for
    // none) and fills `bound`. May be called again after close_listener(). 0 or a libuv error.
    int listen(const std::string& addr, std::uint16_t port, const char* program, sockaddr_storage& bound);
    void close_listener();
    bool listening() const { return listener_ != nullptr; }

    // Progress: the idle deadline starts again. Closing: the linger deadline starts.
    void touch(Accepted* c) { idle_.touch(c, uv_now(loop_)); }
    void linger(Accepted* c) { linger_.touch(c, uv_now(loop_)); }
    // Out of whichever deadline list holds it (before it closes).
    static void forget(Accepted* c) { DeadlineList<Accepted>::unlink(c); }
    // Its handle has closed: one slot more, and a client waiting in the backlog gets it.
    void closed(Accepted* c);

    std::size_t open() const { return open_; }
    std::size_t max_conns() const { return limits_.max_conns; }
    // Also run by every sweep, after the expired connections (a daemon's own periodic work).
    void on_sweep(std::function<void(std::uint64_t now)> hook) { sweep_hook_ = std::move(hook); }

    // Stops accepting and asks every connection to drain(); after `grace_ms` closes those
    // left. `done` runs once the last connection has closed (at once when there is none).
    void drain(std::uint64_t grace_ms, std::function<void()> done);
    // Stops accepting and closes every connection now; `done` as for drain().
    void stop(std::function<void()> done) { drain(0, std::move(done)); }

private:
    static void on_connection(uv_stream_t* server, int status);
    static void on_timer(uv_timer_t* timer);
    void accept_one();
    void sweep(std::uint64_t now);
    void cut_all();
    void finish_if_done();

    uv_loop_t* loop_;
    const char* program_;
    AcceptorLimits limits_;
    std::function<Accepted*()> make_;
    uv_tcp_t* listener_ = nullptr;  // heap: freed in its close callback
    uv_timer_t* timer_ = nullptr;   // the sweep, while anything is open or listening
    DeadlineList<Accepted> idle_;
    DeadlineList<Accepted> linger_;
    Accepted* head_ = nullptr;
    std::size_t open_ = 0;
    std::function<void(std::uint64_t)> sweep_hook_;
    std::function<void()> drained_;
    std::uint64_t drain_deadline_ = 0;
    bool draining_ = false;
    bool accept_pending_ = false;
    bool emfile_reported_ = false;
};

}  // namespace peerdex
