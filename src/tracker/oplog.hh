// Forwards every tracker operation to peerdex-logd (peerdex-protocol(7), OPERATION LOG)
// without ever blocking the loop.
//
// Why XDR over a libuv stream rather than rpcgen's client stubs on uv_queue_work:
// the stubs block a pool thread per call, and libuv's pool (4 threads) is shared with
// file work; a slow log server would pin it. Encoding the rpcgen-generated XDR
// routines ourselves keeps one non-blocking connection on the loop, lets batches
// pipeline naturally (entries queue while a call is in flight), and makes timeouts
// and reconnection ordinary loop events. The rpcbind lookup (LOG_RPC_IP) is the same
// kind of call, to port 111.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "operation_log.hh"
#include "wire.hh"

struct oplog_entry;  // rpcgen's, from oplog.h

namespace peerdex {

struct OplogTarget {
    sockaddr_storage addr{};   // the log server, or its host's rpcbind (port 111)
    bool via_rpcbind = false;
    std::string name;          // for messages
};

// Parses "HOST:PORT" or "[V6]:PORT" (resolving HOST now, at start-up).
bool parse_log_target(const std::string& spec, OplogTarget& out, std::string& error);
// LOG_RPC_IP: the host whose rpcbind knows the log server.
bool rpcbind_log_target(const std::string& host, OplogTarget& out, std::string& error);

class OplogForwarder final : public OperationLog {
public:

    OplogForwarder(uv_loop_t* loop, OplogTarget target, std::size_t queue_cap);
    OplogForwarder(const OplogForwarder&) = delete;
    OplogForwarder& operator=(const OplogForwarder&) = delete;
    ~OplogForwarder() override;

    void start();
    // Queues one entry; the oldest is dropped (and counted) when the queue is full.
    void record(std::string_view operation, std::string_view user, std::string_view path,
                std::string_view ts) override;
    void stop(std::uint64_t flush_ms) override;
    void print_stats() const override;
    Counts counts() const override { return {delivered_, dropped_, queue_.size(), healthy_}; }

private:
    struct Pending {
        std::string user, path;
        char ts[kTimestampBytes + 1];  // fixed size: no allocation for the usual 19 bytes
        std::uint8_t ts_len;
        std::string_view operation;    // a static operation name
        std::uint64_t seq;
    };
    struct Conn;
    // idle: no connection, none needed (the log server closed an idle one).
    enum class Phase { idle, connecting, portmap, ready, waiting, backoff, closed };

    void connect();
    void on_connected(int status);
    void on_record(std::string_view record);
    void send_filled();  // now, or once the batch has filled or waited kFillMs
    void send_batch();
    void send(std::string data);
    void fail(const char* why);
    void close_conn();
    void finish();
    static void on_timer(uv_timer_t* t);

    uv_loop_t* loop_;
    OplogTarget target_;
    std::size_t cap_;
    std::uint64_t instance_;
    std::uint64_t next_seq_ = 1;
    std::uint32_t xid_ = 0;
    std::deque<Pending> queue_;
    std::vector<oplog_entry> entries_;  // reused for every batch
    std::size_t inflight_ = 0;       // entries at the head of queue_ in the call in flight
    Conn* conn_ = nullptr;
    Phase phase_ = Phase::idle;
    uv_timer_t timer_{};             // reply timeout or reconnect backoff
    uv_timer_t flush_timer_{};
    uv_timer_t fill_timer_{};        // a batch waiting to fill under load
    std::uint64_t last_sent_ms_ = 0;  // loop time the last batch went
    std::uint64_t backoff_ms_;
    std::uint16_t port_ = 0;         // learned from rpcbind
    bool healthy_ = true;            // for saying "unreachable" and "back" once each
    bool stopping_ = false;
    std::uint64_t delivered_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace peerdex
