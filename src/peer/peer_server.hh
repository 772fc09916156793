// The peer listener (peerdex-protocol(7), PEER TRANSFERS and FILE SERVER): GET_FILE,
// LIST_FILES and PUT_FILE over any number of connections, each with bounded buffers; file
// work runs on the thread pool so that a slow disk never stalls the loop. What a name
// means is SharedFiles' business: the interactive client's published paths (uploads
// refused), or with share_directory() the plain names inside one directory (`peerdex
// serve`, uploads stored atomically).
#pragma once

#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "acceptor.hh"
#include "files.hh"
#include "shared_files.hh"
#include "token_bucket.hh"

namespace peerdex {

class PeerConn;

// A bounded number of jobs at once (0: no bound); the others wait, in order of arrival.
// The waiting are bounded by the listener's connection cap.
struct SlotQueue {
    std::size_t max = 0;
    std::size_t used = 0;
    std::deque<PeerConn*> waiting;
    // True when `c` has a slot now; false when it waits.
    bool take(PeerConn* c)
    {
        if (max == 0 || used < max) {
            ++used;
            return true;
        }
        waiting.push_back(c);
        return false;
    }
    // Frees a slot; the next one waiting, if any, has it (returned; null: none).
    PeerConn* release()
    {
        --used;
        if (waiting.empty() || (max != 0 && used >= max))
            return nullptr;
        PeerConn* next = waiting.front();
        waiting.pop_front();
        ++used;
        return next;
    }
    void forget(PeerConn* c) { waiting.erase(std::remove(waiting.begin(), waiting.end(), c), waiting.end()); }
};

// --upload-rate on the loop: senders take tokens before each chunk; those that find the
// bucket in debt wait, in order, for a timer that lets them go as the debt is paid.
class RateGate {
public:
    explicit RateGate(uv_loop_t* loop);
    ~RateGate();
    RateGate(const RateGate&) = delete;
    RateGate& operator=(const RateGate&) = delete;
    void set_rate(std::uint64_t bytes_per_s) { bucket_.set_rate(bytes_per_s, uv_now(loop_)); }
    bool limited() const { return bucket_.limited(); }
    std::uint64_t rate() const { return bucket_.rate(); }
    std::uint64_t chunk(std::size_t senders) const { return bucket_.chunk(senders); }
    // True when `c` may send `n` bytes now; else it waits and tokens_granted() follows.
    bool take(std::uint64_t n, PeerConn* c);
    void forget(PeerConn* c);
    std::size_t waiting() const { return waiting_.size(); }
    // Forgets every waiting sender (all closed) and stops the timer; the timer handle stays
    // (unreferenced) for a later start, until the gate is destroyed.
    void halt();

private:
    void arm();
    void fire();

    uv_loop_t* loop_;
    // On the heap: the gate may be destroyed before the loop runs its close callback, which
    // frees the handle, so the loop never holds a handle in freed memory.
    uv_timer_t* timer_;
    TokenBucket bucket_;
    std::deque<PeerConn*> waiting_;
    PeerConn* granting_ = nullptr;  // the sender whose turn it is, inside fire()
    bool armed_ = false;
};

class PeerServer {
public:
    PeerServer(uv_loop_t* loop, std::string listen_addr, std::uint16_t port);
    PeerServer(const PeerServer&) = delete;
    PeerServer& operator=(const PeerServer&) = delete;
    ~PeerServer();

    // Serve mode: share the directory open as dir_fd (kept open by the caller).
    void share_directory(int dir_fd, bool read_only, std::uint64_t max_upload);

    // Listens (port 0: a free port between 1024 and 49151). Returns 0 or a libuv error.
    // `program` names the messages of a failure to listen on a requested port.
    int start(const char* program = "peerdex");
    // Closes the listener and every connection now (transfers in progress are cut;
    // an upload cut short leaves nothing).
    void stop();
    // Closes the listener and the connections still sending their request, lets the
    // transfers in progress finish for at most `grace_ms`, then stops; `done` runs once
    // every connection is closed.
    void drain(std::uint64_t grace_ms, std::function<void()> done);
    std::uint16_t port() const { return port_; }
    const sockaddr_storage& bound() const { return bound_; }

    // --upload-slots (transfers sent at once, 0: no limit; more wait in order) and
    // --upload-rate (bytes per second over all transfers, 0: no limit), for GET_FILE and
    // GET_RANGE.
    void set_upload_limits(std::size_t slots, std::uint64_t rate)
    {
        uploads_.max = slots;
        rate_.set_rate(rate);
    }
    // Where GET_TREE finds and keeps trees (the client's cache; empty: hashed every time).
    void set_tree_cache(std::string dir) { tree_cache_ = std::move(dir); }

    // The connected user's published paths (what is shared unless share_directory()).
    void publish(const std::string& path) { published_.publish(path); }
    void unpublish(const std::string& path) { published_.unpublish(path); }
    void set_published(std::unordered_set<std::string> paths) { published_.set(std::move(paths)); }
    bool published(const std::string& path) const { return published_.contains(path); }

    // The counters since the first start(), as `s`, SIGUSR1 and STATS print them.
    std::string stats_text() const;

private:
    friend class PeerConn;
    void drop_departed();
    void drained();
    void list_slot_freed();


    uv_loop_t* loop_;
    std::string listen_addr_;
    std::uint16_t requested_port_;
    std::uint16_t port_ = 0;
    sockaddr_storage bound_{};
    Acceptor acceptor_;  // idle: connections at work; linger: refused ones reading what is left
    PublishedFiles published_;
    std::unique_ptr<SharedDirectory> directory_;
    const SharedFiles* shared_ = &published_;  // what GET_FILE, LIST_FILES and PUT_FILE see
    // LIST_FILES replies being built or sent (each may be tens of MB), and the
    // connections waiting for a slot: memory stays bounded however many ask at once.
    std::size_t listings_ = 0;
    std::deque<PeerConn*> list_waiting_;
    std::uint64_t max_upload_ = UINT64_MAX;
    SlotQueue uploads_;  // GET_FILE and GET_RANGE transfers (--upload-slots)
    SlotQueue trees_;    // GET_TREE builds: hashing takes a pool thread for long
    RateGate rate_;
    std::string tree_cache_;
    PeerStats stats_;
    std::uint64_t started_ms_ = 0;
    std::function<void()> drained_;
};

}  // namespace peerdex
