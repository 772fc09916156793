// One request over one connection with a stall timer, done once: the shape of every
// one-shot client transfer (GET_FILE, PUT_FILE, LIST_FILES). Both handles are closed,
// and no file operation is in flight, before the owner's done() runs, so done() may free
// the exchange and end the loop.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "reply.hh"

namespace peerdex {

struct Exchange {
    uv_loop_t* loop;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_connect_t connect{};
    ReplyDecoder reply;
    std::string request;
    uv_write_t request_write{};
    const char* who;         // "the server", "the peer": the other side in messages
    std::uint64_t limit_ms;  // no byte moved for this long fails it
    // ... but before the first byte of the reply, this long (when longer): a server may
    // queue a transfer (upload slots) or hash a file before it answers.
    std::uint64_t first_byte_ms = 0;
    bool got_byte = false;
    std::uint64_t last_progress = 0, started = 0;
    int handles = 2;
    int busy = 0;  // file operations in flight
    bool finished = false;
    bool reading = false;
    int code = -1;
    std::string why;

    Exchange(uv_loop_t* l, std::uint64_t limit, const char* other_side = "the server");
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;
    virtual ~Exchange() = default;

    virtual void connected() {}
    virtual void tick() {}  // every 200 ms while it runs
    // No byte moved for too long; by default it fails.
    virtual void stalled();
    // Where the next read goes; by default a buffer shared by every exchange (the
    // decoder copies what it keeps).
    virtual uv_buf_t buffer();
    // Bytes that arrived; by default they feed the reply decoder, then replied().
    virtual void received(const char* p, const char* end);
    // The other side closed; by default a complete reply is replied(), else a failure.
    virtual void closed();
    virtual void replied() {}  // the reply is complete (reply.code() set)
    virtual void done() = 0;   // once finished and everything is closed

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }
    void go(const sockaddr_storage& to);
    void set_reading(bool on);
    // Ends it with `c` (a reply code, or -1) and `reason`; done() follows.
    void finish(int c, const std::string& reason);
    // Call when a file operation that counted in `busy` ends after finish().
    void maybe_done();
    // Runs `work` on the thread pool, then `after` on the loop; it counts in `busy`
    // until `after` is called (which calls maybe_done() itself when it must).
    void on_pool(std::function<void()> work, std::function<void()> after);
};

}  // namespace peerdex
