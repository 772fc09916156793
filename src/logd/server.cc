#include "server.hh"

#include <netinet/in.h>
#include <poll.h>
#include <rpc/pmap_clnt.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "address.hh"
#include "console.hh"
#include "decode.hh"
#include "acceptor.hh"
#include "write.hh"
#include "oncrpc.hh"
#include "oplog.h"

namespace peerdex {

namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;
// How long start-up waits to learn whether an rpcbind listens on this host.
constexpr int kRpcbindProbeMs = 300;
constexpr std::uint16_t kRpcbindPort = 111;
constexpr int kListenBacklog = 128;

char read_buffer[kReadBufferBytes];

bool rpcbind_running()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kRpcbindPort);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (!up && errno == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        up = ::poll(&p, 1, kRpcbindProbeMs) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    ::close(fd);
    return up;
}

}  // namespace

struct StoreJob {
    uv_work_t req{};
    LogdServer* server = nullptr;
    LogdSession* session = nullptr;  // null once the session is gone
    std::uint32_t xid = 0;
    bool reopen = false;
    LogBatch batch;
    int rc = 0;
};

class LogdSession final : public Accepted {
public:
    explicit LogdSession(LogdServer& s) : server_(s) { tcp_.data = this; }

    uv_tcp_t* tcp() override { return &tcp_; }
    void start() override
    {
        if (!allowed()) {
            close();  // not one byte read: nothing from there is decoded
            return;
        }
        ++server_.connections_;
        touch();
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
    }
    void expire() override
    {
        // A call being stored (a slow disk's fsync) is not idleness: its reply is due.
        if (job_) {
            touch();
            return;
        }
        Console::debug("logd: idle timeout");
        close();
    }
    // At a stop every connection closes at once. A call being stored still completes; its
    // sender gets no reply, retries, and finds it stored.
    void drain() override { close(); }
    void close() override;
    void job_finished(const StoreJob& job);

    uv_tcp_t tcp_{};

private:
    static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf)
    {
        *buf = uv_buf_init(read_buffer, sizeof read_buffer);
    }
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_stream_t* stream, int status);
    static void on_close(uv_handle_t* h);

    void process(const char* p, const char* end);
    bool dispatch(std::string_view record);
    void send(std::string data);
    void touch() { server_.acceptor_.touch(this); }
    bool allowed();
    void pause();
    void resume();

    LogdServer& server_;
    oncrpc::RecordReader reader_;
    std::string stash_;  // input read while a call is being stored
    StoreJob* job_ = nullptr;
    std::size_t writes_ = 0;
    bool reading_ = true;
    bool closed_ = false;
};

// --allow: the peer's address (IPv4-mapped IPv6 as IPv4) must be in one of the blocks.
bool LogdSession::allowed()
{
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        const Address a = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
        for (const Subnet& s : server_.options_.allow)
            if (s.contains(a))
                return true;
    }
    ++server_.not_allowed_;
    Console::debug("logd: closed a connection from %s: not in --allow",
                   endpoint_string(reinterpret_cast<sockaddr*>(&ss)).c_str());
    return false;
}

void LogdSession::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
{
    auto* s = static_cast<LogdSession*>(stream->data);
    if (nread < 0) {
        s->close();
        return;
    }
    s->touch();
    s->process(buf->base, buf->base + nread);
}

void LogdSession::process(const char* p, const char* end)
{
    while (p < end && !closed_) {
        if (job_) {
            // One call at a time per connection: keep the rest until the reply is out.
            stash_.append(p, end);
            pause();
            return;
        }
        switch (reader_.next(p, end)) {
        case oncrpc::RecordReader::Status::need_more:
            return;
        case oncrpc::RecordReader::Status::too_large:
            Console::debug("logd: record over %zu bytes, closing", oncrpc::kMaxRecordBytes);
            ++server_.rejected_;
            close();
            return;
        case oncrpc::RecordReader::Status::record:
            if (!dispatch(reader_.record())) {
                ++server_.rejected_;
                close();
                return;
            }
        }
    }
}

bool LogdSession::dispatch(std::string_view record)
{
    const auto call = oncrpc::decode_call(record);
    if (!call)
        return false;  // not an RPC call: nothing sensible to answer
    ++server_.calls_;
    std::string out;
    if (call->rpcvers != 2) {
        oncrpc::append_rpc_mismatch(out, call->xid);
    } else if (call->prog != OPLOG_PROG) {
        oncrpc::append_reply(out, call->xid, PROG_UNAVAIL);
    } else if (call->vers != OPLOG_VERS) {
        oncrpc::append_reply(out, call->xid, PROG_MISMATCH, nullptr, nullptr, OPLOG_VERS, OPLOG_VERS);
    } else if (call->proc == 0) {
        oncrpc::append_reply(out, call->xid, SUCCESS);  // NULL procedure: void result
    } else if (call->proc == OPLOG_ENTRY || call->proc == OPLOG_BATCH) {
        auto job = std::make_unique<StoreJob>();
        job->xid = call->xid;
        const bool ok = decode_oplog_args(record, call->args_offset, call->proc, job->batch);
        if (!ok) {
            Console::debug("logd: undecodable arguments (xid %u)", call->xid);
            oncrpc::append_reply(out, call->xid, GARBAGE_ARGS);
        } else {
            job->session = this;
            job_ = job.get();
            server_.submit(std::move(job));
            return true;
        }
    } else {
        oncrpc::append_reply(out, call->xid, PROC_UNAVAIL);
    }
    send(std::move(out));
    return true;
}

void LogdSession::job_finished(const StoreJob& job)
{
    job_ = nullptr;
    const oplog_status status = job.rc == 0 ? OPLOG_OK : OPLOG_ERROR;
    std::string out;
    oncrpc::append_reply(out, job.xid, SUCCESS, reinterpret_cast<xdrproc_t>(xdr_oplog_status), &status);
    send(std::move(out));
    touch();
    resume();
}

void LogdSession::send(std::string data)
{
    if (write_string(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(data), on_write) != 0) {
        close();
        return;
    }
    ++writes_;
}

void LogdSession::on_write(uv_stream_t* stream, int status)
{
    auto* s = static_cast<LogdSession*>(stream->data);
    --s->writes_;
    if (status < 0)
        s->close();
}

void LogdSession::pause()
{
    if (reading_) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
        reading_ = false;
    }
}

void LogdSession::resume()
{
    if (closed_)
        return;
    if (!stash_.empty()) {
        std::string input;
        input.swap(stash_);
        process(input.data(), input.data() + input.size());
    }
    if (!closed_ && !job_ && !reading_) {
        reading_ = true;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
    }
}

void LogdSession::close()
{
    if (closed_)
        return;
    closed_ = true;
    if (job_)
        job_->session = nullptr;  // the entries are still stored; nobody to tell
    Acceptor::forget(this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void LogdSession::on_close(uv_handle_t* h)
{
    std::unique_ptr<LogdSession> self(static_cast<LogdSession*>(h->data));
    self->server_.acceptor_.closed(self.get());
}

// ---- LogdServer -----------------------------------------------------------------------

LogdServer::LogdServer(uv_loop_t* loop, LogStore& store, LogdOptions options)
    : loop_(loop),
      store_(store),
      options_(std::move(options)),
      acceptor_(loop, "peerdex-logd",
                AcceptorLimits{options_.max_conns, options_.idle_timeout_ms, 0,
                               std::clamp<std::uint64_t>(options_.idle_timeout_ms / 4, 50, 1000), kListenBacklog},
                [this]() -> Accepted* { return std::make_unique<LogdSession>(*this).release(); })
{
}

LogdServer::~LogdServer() = default;

int LogdServer::start()
{
    sockaddr_storage ss{};
    if (int rc = acceptor_.listen(options_.listen_addr, options_.port, "peerdex-logd", ss); rc != 0)
        return rc;
    bound_port_ = port_of(reinterpret_cast<sockaddr*>(&ss));

    std::string how = "direct";
    if (options_.rpcbind != RpcbindMode::no) {
        if (rpcbind_running()) {
            pmap_unset(OPLOG_PROG, OPLOG_VERS);  // a stale registration of a previous run
            registered_ = pmap_set(OPLOG_PROG, OPLOG_VERS, IPPROTO_TCP, bound_port_) != 0;
            how = registered_ ? "registered with rpcbind" : "rpcbind refused the registration";
        } else {
            how = "rpcbind not running: not registered";
        }
        if (!registered_ && options_.rpcbind == RpcbindMode::yes) {
            Console::error("peerdex-logd: --rpcbind yes: %s", how.c_str());
            return UV_ECONNREFUSED;
        }
    }
    Console::error("peerdex-logd: listening on %s (program %#x version %u, %s)",
                   endpoint_string(reinterpret_cast<sockaddr*>(&ss)).c_str(), OPLOG_PROG, OPLOG_VERS,
                   how.c_str());

    return 0;
}

void LogdServer::submit(std::unique_ptr<StoreJob> job)
{
    job->server = this;
    job->req.data = job.get();
    jobs_.push_back(std::move(job));
    run_next_job();
}

void LogdServer::run_next_job()
{
    if (job_running_ || jobs_.empty())
        return;
    job_running_ = true;
    uv_queue_work(loop_, &jobs_.front()->req, job_work, job_done);
}

void LogdServer::job_work(uv_work_t* req)
{
    auto* job = static_cast<StoreJob*>(req->data);
    job->rc = job->reopen ? job->server->store_.reopen() : job->server->store_.append(job->batch);
}

void LogdServer::job_done(uv_work_t* req, int)
{
    auto* self = static_cast<StoreJob*>(req->data)->server;
    std::unique_ptr<StoreJob> job = std::move(self->jobs_.front());
    self->jobs_.pop_front();
    self->job_running_ = false;
    self->store_seen_.written = self->store_.written();
    self->store_seen_.duplicates = self->store_.duplicates();
    self->store_seen_.syncs = self->store_.syncs();
    if (job->rc != 0)
        ++self->store_seen_.store_failures;
    if (job->rc != 0) {
        if (self->store_.message() != self->last_error_)
            Console::error("peerdex-logd: %s", self->store_.message().c_str());
        self->last_error_ = self->store_.message();
    } else {
        self->last_error_.clear();
    }
    if (job->session)
        job->session->job_finished(*job);
    self->run_next_job();
}

void LogdServer::reopen()
{
    auto job = std::make_unique<StoreJob>();
    job->reopen = true;
    submit(std::move(job));
}

LogdServer::Metrics LogdServer::metrics() const
{
    Metrics m = store_seen_;
    m.calls = calls_;
    m.rejected = rejected_;
    m.not_allowed = not_allowed_;
    m.connections = connections_;
    m.open = acceptor_.open();
    return m;
}

void LogdServer::print_stats() const
{
    Console::error("peerdex-logd: %llu calls, %llu entries written, %llu duplicates dropped, %llu bad records, "
                   "%llu connections not allowed",
                   static_cast<unsigned long long>(calls_), static_cast<unsigned long long>(store_.written()),
                   static_cast<unsigned long long>(store_.duplicates()), static_cast<unsigned long long>(rejected_),
                   static_cast<unsigned long long>(not_allowed_));
}

void LogdServer::stop()
{
    if (stopping_)
        return;
    stopping_ = true;
    if (registered_)
        pmap_unset(OPLOG_PROG, OPLOG_VERS);
    registered_ = false;
    // The loop ends when the connections have closed and the jobs under way are stored.
    acceptor_.stop([] {});
}

}  // namespace peerdex
