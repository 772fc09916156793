#include "oplog.hh"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "console.hh"
#include "oncrpc.hh"
#include <rpc/pmap_prot.h>  // after rpc/rpc.h, which it needs
#include "oplog.h"
#include "wire.hh"
#include "write.hh"

namespace peerdex {

namespace {

// One call in flight at a time, each paying the log server's fsyncs: batches as large as
// the interface allows (about 250 KB, far under the 4 MiB record cap) amortise them.
constexpr std::size_t kMaxBatchEntries = OPLOG_MAX_BATCH;
// Under load a batch waits, up to this long after the previous one went, until it is
// full: the log server's cost per call (a journal record, two fdatasyncs, a thread-pool
// turn) is then paid per thousand entries rather than per hundred. A log server that
// heard nothing for that long gets the next entry at once.
constexpr std::uint64_t kFillMs = 10;
constexpr std::uint64_t kReplyTimeoutMs = 5000;
constexpr std::uint64_t kMinBackoffMs = 100;
constexpr std::uint64_t kMaxBackoffMs = 5000;
constexpr std::size_t kReadBufferBytes = 4096;  // replies are a few dozen bytes
constexpr std::uint16_t kRpcbindPort = 111;

bool resolve(const std::string& host, std::uint16_t port, OplogTarget& out, std::string& error)
{
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) {
        error = "cannot resolve '" + host + "': " + gai_strerror(rc);
        return false;
    }
    std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

xdrproc_t proc(bool_t (*f)(XDR*, oplog_batch*))
{
    return reinterpret_cast<xdrproc_t>(reinterpret_cast<void*>(f));
}

}  // namespace

bool parse_log_target(const std::string& spec, OplogTarget& out, std::string& error)
{
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        error = "--log wants HOST:PORT, got '" + spec + "'";
        return false;
    }
    std::string host = spec.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    auto port = parse_decimal(spec.substr(colon + 1), 65535);
    if (!port || *port == 0) {
        error = "--log: invalid port in '" + spec + "'";
        return false;
    }
    out.via_rpcbind = false;
    out.name = spec;
    return resolve(host, static_cast<std::uint16_t>(*port), out, error);
}

bool rpcbind_log_target(const std::string& host, OplogTarget& out, std::string& error)
{
    out.via_rpcbind = true;
    out.name = host + " (rpcbind)";
    return resolve(host, kRpcbindPort, out, error);
}

struct OplogForwarder::Conn {
    uv_tcp_t tcp{};
    uv_connect_t connect_req{};
    OplogForwarder* owner = nullptr;  // null once abandoned
    oncrpc::RecordReader reader{64 * 1024};
    char buf[kReadBufferBytes];
};

OplogForwarder::OplogForwarder(uv_loop_t* loop, OplogTarget target, std::size_t queue_cap)
    : loop_(loop), target_(std::move(target)), cap_(queue_cap), backoff_ms_(kMinBackoffMs)
{
    std::random_device rd;
    instance_ = (std::uint64_t{rd()} << 32) ^ rd();
}

OplogForwarder::~OplogForwarder() = default;

void OplogForwarder::start()
{
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_timer_init(loop_, &flush_timer_);
    flush_timer_.data = this;
    uv_timer_init(loop_, &fill_timer_);
    fill_timer_.data = this;
    Console::info("s> oplog: forwarding to %s as instance %016llx", target_.name.c_str(),
                  static_cast<unsigned long long>(instance_));
    connect();
}

void OplogForwarder::record(std::string_view operation, std::string_view user, std::string_view path,
                            std::string_view ts)
{
    if (phase_ == Phase::closed)
        return;
    if (queue_.size() >= cap_) {
        queue_.pop_front();  // the oldest goes; if it was in flight, its ack covers one less
        if (inflight_ > 0)
            --inflight_;
        ++dropped_;
    }
    Pending& p = queue_.emplace_back();
    p.user.assign(user);
    p.path.assign(path);
    const std::size_t n = std::min(ts.size(), kTimestampBytes);  // the parser admits only 19
    if (n != 0)  // an empty view may have no data pointer at all
        std::memcpy(p.ts, ts.data(), n);
    p.ts[n] = '\0';
    p.ts_len = static_cast<std::uint8_t>(n);
    p.operation = operation;
    p.seq = next_seq_++;
    if (phase_ == Phase::ready)
        send_filled();
    else if (phase_ == Phase::idle)
        connect();
}

void OplogForwarder::connect()
{
    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    uv_tcp_init(loop_, &conn->tcp);
    conn->tcp.data = conn.get();
    conn->connect_req.data = conn.get();
    sockaddr_storage addr = target_.addr;
    if (target_.via_rpcbind && port_ != 0) {  // phase two: the log server itself
        auto* in = reinterpret_cast<sockaddr_in*>(&addr);
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
        (addr.ss_family == AF_INET6 ? in6->sin6_port : in->sin_port) = htons(port_);
    }
    const int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, reinterpret_cast<sockaddr*>(&addr),
                                  [](uv_connect_t* req, int status) {
                                      auto* c = static_cast<Conn*>(req->data);
                                      if (c->owner)
                                          c->owner->on_connected(status);
                                  });
    conn_ = conn.release();  // freed in the close callback
    phase_ = Phase::connecting;
    if (rc != 0)
        fail(uv_strerror(rc));
}

void OplogForwarder::on_connected(int status)
{
    if (status != 0) {
        fail(uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&conn_->tcp, 1);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&conn_->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* c = static_cast<Conn*>(h->data);
            *buf = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
            auto* c = static_cast<Conn*>(s->data);
            if (!c->owner)
                return;
            OplogForwarder* self = c->owner;
            if (nread < 0) {
                if (self->phase_ == Phase::ready) {
                    // Nothing in flight: the log server closed an idle link (its idle
                    // timeout). Not an outage; the next entry connects again.
                    self->close_conn();
                    self->phase_ = Phase::idle;
                    return;
                }
                self->fail(nread == UV_EOF ? "connection closed" : uv_strerror(static_cast<int>(nread)));
                return;
            }
            const char* p = buf->base;
            const char* end = p + nread;
            while (p < end && self->conn_ == c) {
                auto st = c->reader.next(p, end);
                if (st == oncrpc::RecordReader::Status::need_more)
                    break;
                if (st == oncrpc::RecordReader::Status::too_large) {
                    self->fail("oversized reply");
                    return;
                }
                self->on_record(c->reader.record());
            }
        });
    if (target_.via_rpcbind && port_ == 0) {
        phase_ = Phase::portmap;
        pmap mapping{OPLOG_PROG, OPLOG_VERS, IPPROTO_TCP, 0};
        std::string out;
        oncrpc::append_call(out, ++xid_, PMAPPROG, PMAPVERS, PMAPPROC_GETPORT, reinterpret_cast<xdrproc_t>(xdr_pmap),
                            &mapping);
        send(std::move(out));
        uv_timer_start(&timer_, on_timer, kReplyTimeoutMs, 0);
        return;
    }
    if (!healthy_)
        Console::error("s> oplog: log server %s reachable again; delivering %zu queued entries", target_.name.c_str(),
                       queue_.size());
    healthy_ = true;
    backoff_ms_ = kMinBackoffMs;
    phase_ = Phase::ready;
    send_batch();
}

void OplogForwarder::send_filled()
{
    const std::uint64_t now = uv_now(loop_);
    if (stopping_ || queue_.size() >= kMaxBatchEntries || now >= last_sent_ms_ + kFillMs) {
        uv_timer_stop(&fill_timer_);
        send_batch();
    } else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&fill_timer_))) {
        uv_timer_start(
            &fill_timer_,
            [](uv_timer_t* t) {
                auto* self = static_cast<OplogForwarder*>(t->data);
                if (self->phase_ == Phase::ready)
                    self->send_batch();
            },
            last_sent_ms_ + kFillMs - now, 0);
    }
}

void OplogForwarder::send_batch()
{
    if (queue_.empty()) {
        if (stopping_)
            finish();
        return;
    }
    const std::size_t n = std::min(queue_.size(), kMaxBatchEntries);
    entries_.resize(n);
    std::size_t size = 4;  // the array length
    for (std::size_t i = 0; i < n; ++i) {
        Pending& p = queue_[i];
        oplog_entry& e = entries_[i];
        // XDR_ENCODE only reads these strings.
        e.user = p.user.data();
        e.operation = const_cast<char*>(p.operation.data());
        e.path = p.path.data();
        e.timestamp = p.ts;
        e.instance = instance_;
        e.seq = p.seq;
        size += oncrpc::xdr_string_size(p.user.size()) + oncrpc::xdr_string_size(p.operation.size()) +
                oncrpc::xdr_string_size(p.path.size()) + oncrpc::xdr_string_size(p.ts_len) + 16;
    }
    oplog_batch batch{static_cast<u_int>(n), entries_.data()};
    std::string out;
    out.reserve(size + 48);
    if (!oncrpc::append_call(out, ++xid_, OPLOG_PROG, OPLOG_VERS, OPLOG_BATCH, proc(xdr_oplog_batch), &batch,
                             size)) {
        // Cannot happen with the tracker's field caps; never wedge the queue on it.
        Console::error("s> oplog: cannot encode entry %llu; dropped", static_cast<unsigned long long>(queue_[0].seq));
        queue_.pop_front();
        ++dropped_;
        send_batch();
        return;
    }
    inflight_ = n;
    phase_ = Phase::waiting;
    last_sent_ms_ = uv_now(loop_);
    send(std::move(out));
    uv_timer_start(&timer_, on_timer, kReplyTimeoutMs, 0);
}

void OplogForwarder::send(std::string data)
{
    // Write errors surface as read errors on the same connection.
    if (const int rc = write_string(reinterpret_cast<uv_stream_t*>(&conn_->tcp), std::move(data)); rc != 0)
        fail(uv_strerror(rc));
}

void OplogForwarder::on_record(std::string_view record)
{
    const auto reply = oncrpc::decode_reply(record);
    if (!reply || reply->xid != xid_) {
        fail("unexpected reply");
        return;
    }
    if (!reply->accepted || reply->stat != SUCCESS) {
        fail(phase_ == Phase::portmap ? "rpcbind refused the lookup" : "the log server refused the call");
        return;
    }
    uv_timer_stop(&timer_);
    if (phase_ == Phase::portmap) {
        u_int port = 0;
        if (!oncrpc::decode_body(record, reply->results_offset, reinterpret_cast<xdrproc_t>(xdr_u_int), &port) ||
            port == 0 || port > 65535) {
            fail("the log server is not registered with rpcbind");
            return;
        }
        port_ = static_cast<std::uint16_t>(port);
        close_conn();
        connect();
        return;
    }
    oplog_status status = OPLOG_ERROR;
    if (!oncrpc::decode_body(record, reply->results_offset, reinterpret_cast<xdrproc_t>(xdr_oplog_status),
                             &status) ||
        status != OPLOG_OK) {
        fail("the log server could not store the entries");
        return;
    }
    // Acknowledged: only now do the entries leave the queue.
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(inflight_));
    delivered_ += inflight_;
    inflight_ = 0;
    phase_ = Phase::ready;
    send_filled();
}

void OplogForwarder::on_timer(uv_timer_t* t)
{
    auto* self = static_cast<OplogForwarder*>(t->data);
    if (self->phase_ == Phase::backoff)
        self->connect();
    else
        self->fail("no reply in time");
}

void OplogForwarder::fail(const char* why)
{
    if (phase_ == Phase::closed)
        return;
    if (healthy_)
        Console::error("s> oplog: log server %s unavailable (%s); retrying, %zu entries queued", target_.name.c_str(),
                       why, queue_.size());
    healthy_ = false;
    close_conn();
    inflight_ = 0;  // resent in order on the next connection; logd drops duplicates
    if (target_.via_rpcbind)
        port_ = 0;  // the server may come back on another port
    phase_ = Phase::backoff;
    uv_timer_start(&timer_, on_timer, backoff_ms_, 0);
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
}

void OplogForwarder::close_conn()
{
    if (!conn_)
        return;
    conn_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&conn_->tcp),
             [](uv_handle_t* h) { std::unique_ptr<Conn> done(static_cast<Conn*>(h->data)); });
    conn_ = nullptr;
}

void OplogForwarder::stop(std::uint64_t flush_ms)
{
    if (stopping_ || phase_ == Phase::closed)
        return;
    stopping_ = true;
    if (queue_.empty()) {
        finish();
        return;
    }
    uv_timer_start(&flush_timer_, [](uv_timer_t* t) { static_cast<OplogForwarder*>(t->data)->finish(); }, flush_ms,
                   0);
    if (phase_ == Phase::backoff) {  // one more try right now rather than after the backoff
        uv_timer_stop(&timer_);
        connect();
    } else if (phase_ == Phase::idle) {
        connect();
    } else if (phase_ == Phase::ready) {  // a batch waiting to fill goes now
        uv_timer_stop(&fill_timer_);
        send_batch();
    }
}

void OplogForwarder::finish()
{
    if (phase_ == Phase::closed)
        return;
    phase_ = Phase::closed;
    close_conn();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&fill_timer_), nullptr);
    print_stats();
}

void OplogForwarder::print_stats() const
{
    Console::error("s> oplog: %llu delivered, %llu dropped (queue full), %zu queued",
                   static_cast<unsigned long long>(delivered_), static_cast<unsigned long long>(dropped_),
                   queue_.size());
}

}  // namespace peerdex
