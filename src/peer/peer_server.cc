#include "peer_server.hh"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "console.hh"
#include "listen.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kChunkBytes = 256 * 1024;     // per connection, the whole of its buffering
constexpr std::uint64_t kStallMs = 30000;           // a downloader that reads nothing for this long
constexpr std::size_t kMaxOpBytes = 16;
constexpr std::uint16_t kFirstFreePort = 1024, kLastFreePort = 49151;  // some trackers refuse higher
constexpr int kPortTries = 64;
constexpr std::uint64_t kSweepMs = 1000;
// Downloaders served at once; more wait in the listen backlog (file descriptors are finite).
constexpr std::size_t kMaxConns = 256;
}  // namespace

class PeerConn {
public:
    explicit PeerConn(PeerServer& s) : server_(s) { tcp_.data = this; }
    uv_tcp_t tcp_{};
    PeerConn* dl_prev = nullptr;
    PeerConn* dl_next = nullptr;
    std::uint64_t dl_stamp = 0;
    void* dl_owner = nullptr;

    void start()
    {
        touch();
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
    }
    void close();

private:
    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf)
    {
        auto* c = static_cast<PeerConn*>(h->data);
        *buf = uv_buf_init(c->in_, sizeof c->in_);
    }
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
    void request(const std::string& op, const std::string& path);
    void list_files();
    void reply(std::string bytes, bool then_stream);
    void read_chunk();
    void touch() { server_.idle_.touch(this, uv_now(server_.loop_)); }

    PeerServer& server_;
    FieldReader reader_{kMaxOpBytes};
    std::string op_;
    bool have_op_ = false;
    bool replied_ = false;
    bool closed_ = false;
    uv_file file_ = -1;
    std::uint64_t size_ = 0, offset_ = 0;
    uv_fs_t fs_{};
    bool fs_busy_ = false;
    uv_write_t write_{};
    std::string head_;
    std::unique_ptr<char[]> chunk_;
    char in_[512];
};

void PeerConn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf)
{
    auto* c = static_cast<PeerConn*>(s->data);
    if (n < 0 || c->replied_) {
        if (n < 0)
            c->close();
        return;  // input after the request is ignored
    }
    c->touch();
    const char* p = buf->base;
    const char* end = p + n;
    while (p < end && !c->replied_) {
        auto st = c->reader_.next(p, end);
        if (st == FieldReader::Status::need_more)
            return;
        if (st == FieldReader::Status::too_long) {
            c->reply(std::string(1, c->have_op_ ? '\x01' : '\x02'), false);  // no such path / no such op
            return;
        }
        if (!c->have_op_) {
            c->op_ = std::string(c->reader_.field());
            c->have_op_ = true;
            c->reader_.start(kMaxFieldBytes);
            // §7: this listener lists its published files and refuses uploads.
            if (c->op_ == "LIST_FILES") {
                c->replied_ = true;
                c->list_files();
                return;
            }
            if (c->op_ == "PUT_FILE") {
                c->reply(std::string(1, '\x01'), false);
                return;
            }
            continue;
        }
        c->request(c->op_, std::string(c->reader_.field()));
    }
}

void PeerConn::request(const std::string& op, const std::string& path)
{
    replied_ = true;
    if (op != "GET_FILE") {
        reply(std::string(1, '\x02'), false);  // this listener speaks GET_FILE only
        return;
    }
    // Only the exact published strings: no resolution of "..", nothing else on disk.
    if (!server_.published(path)) {
        Console::debug("peer: refused GET_FILE %s: not published", path.c_str());
        reply(std::string(1, '\x01'), false);
        return;
    }
    fs_.data = this;
    fs_busy_ = true;
    uv_fs_open(server_.loop_, &fs_, path.c_str(), O_RDONLY | O_CLOEXEC, 0, [](uv_fs_t* req) {
        auto* c = static_cast<PeerConn*>(req->data);
        const auto fd = static_cast<uv_file>(req->result);
        uv_fs_req_cleanup(req);
        c->fs_busy_ = false;
        if (c->closed_) {
            if (fd >= 0) {
                uv_fs_t close_req;
                uv_fs_close(nullptr, &close_req, fd, nullptr);
            }
            c->close();
            return;
        }
        if (fd < 0) {
            c->reply(std::string(1, '\x01'), false);
            return;
        }
        c->file_ = fd;
        uv_fs_t st;
        // fstat of an open file does not block on the disk.
        if (uv_fs_fstat(nullptr, &st, fd, nullptr) != 0 || !S_ISREG(st.statbuf.st_mode)) {
            uv_fs_req_cleanup(&st);
            c->reply(std::string(1, '\x01'), false);
            return;
        }
        c->size_ = st.statbuf.st_size;
        uv_fs_req_cleanup(&st);
        std::string head(1, '\0');
        Encoder(head).number(c->size_);
        c->reply(std::move(head), true);
    });
}

namespace {
struct ListJob {
    uv_work_t req{};
    PeerConn* conn;
    std::vector<std::string> paths;
    std::string out;
};
}  // namespace

// LIST_FILES: `00 N·` then `name·size·mtime·` per published regular file, sorted by
// name; the stat calls run on the thread pool.
void PeerConn::list_files()
{
    auto job = std::make_unique<ListJob>();
    job->conn = this;
    job->paths.assign(server_.published_.begin(), server_.published_.end());
    job->req.data = job.get();
    fs_busy_ = true;
    uv_queue_work(
        server_.loop_, &job->req,
        [](uv_work_t* w) {
            auto* j = static_cast<ListJob*>(w->data);
            std::sort(j->paths.begin(), j->paths.end());
            std::string entries;
            std::size_t n = 0;
            for (const auto& p : j->paths) {
                struct stat st {};
                if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
                    continue;  // as for GET_FILE: only what exists as a regular file
                Encoder e(entries);
                e.field(p);
                e.number(static_cast<std::uint64_t>(st.st_size));
                e.number(static_cast<std::uint64_t>(st.st_mtime));
                ++n;
            }
            j->out.assign(1, '\0');
            Encoder(j->out).number(n);
            j->out += entries;
        },
        [](uv_work_t* w, int) {
            std::unique_ptr<ListJob> j(static_cast<ListJob*>(w->data));
            PeerConn* c = j->conn;
            c->fs_busy_ = false;
            if (c->closed_) {
                c->close();  // frees it now that no work refers to it
                return;
            }
            c->reply(std::move(j->out), false);
        });
    job.release();  // freed in its completion callback
}

void PeerConn::reply(std::string bytes, bool then_stream)
{
    replied_ = true;
    head_ = std::move(bytes);
    write_.data = then_stream ? this : nullptr;
    uv_buf_t b = uv_buf_init(head_.data(), static_cast<unsigned>(head_.size()));
    if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, [](uv_write_t* w, int status) {
            auto* c = static_cast<PeerConn*>(w->handle->data);
            if (status < 0 || !w->data || c->closed_) {
                c->close();  // short replies: done; the peer reads them before our FIN
                return;
            }
            c->chunk_ = std::make_unique<char[]>(kChunkBytes);
            c->read_chunk();
        }) != 0)
        close();
}

void PeerConn::read_chunk()
{
    if (offset_ >= size_) {
        close();
        return;
    }
    const auto want = static_cast<unsigned>(std::min<std::uint64_t>(kChunkBytes, size_ - offset_));
    uv_buf_t b = uv_buf_init(chunk_.get(), want);
    fs_busy_ = true;
    uv_fs_read(server_.loop_, &fs_, file_, &b, 1, static_cast<std::int64_t>(offset_), [](uv_fs_t* req) {
        auto* c = static_cast<PeerConn*>(req->data);
        const auto n = req->result;
        uv_fs_req_cleanup(req);
        c->fs_busy_ = false;
        if (c->closed_ || n <= 0) {  // an error, or the file shrank: cut the transfer short
            c->close();
            return;
        }
        c->offset_ += static_cast<std::uint64_t>(n);
        uv_buf_t out = uv_buf_init(c->chunk_.get(), static_cast<unsigned>(n));
        if (uv_write(&c->write_, reinterpret_cast<uv_stream_t*>(&c->tcp_), &out, 1, [](uv_write_t* w, int status) {
                auto* cc = static_cast<PeerConn*>(w->handle->data);
                if (status < 0 || cc->closed_) {
                    cc->close();
                    return;
                }
                cc->touch();
                cc->read_chunk();
            }) != 0)
            c->close();
    });
}

void PeerConn::close()
{
    if (!closed_) {
        closed_ = true;
        DeadlineList<PeerConn>::unlink(this);
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
            auto* c = static_cast<PeerConn*>(h->data);
            c->tcp_.data = nullptr;
            c->server_.conn_closed();
            if (!c->fs_busy_) {
                if (c->file_ >= 0) {
                    uv_fs_t req;
                    uv_fs_close(nullptr, &req, c->file_, nullptr);
                }
                std::unique_ptr<PeerConn> done(c);
            }
        });
        return;
    }
    // Called again from a file callback after the handle closed: free now.
    if (!fs_busy_ && tcp_.data == nullptr) {
        if (file_ >= 0) {
            uv_fs_t req;
            uv_fs_close(nullptr, &req, file_, nullptr);
        }
        std::unique_ptr<PeerConn> done(this);
    }
}

PeerServer::PeerServer(uv_loop_t* loop, std::string listen_addr, std::uint16_t port)
    : loop_(loop), listen_addr_(std::move(listen_addr)), requested_port_(port), idle_(kStallMs)
{
}

PeerServer::~PeerServer() = default;

int PeerServer::start()
{
    if (running_)
        return 0;
    accept_pending_ = false;  // a connection parked on a previous listener is gone with it
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(kFirstFreePort, kLastFreePort);
    int rc = UV_EADDRINUSE;
    for (int i = 0; i < (requested_port_ ? 1 : kPortTries) && rc == UV_EADDRINUSE; ++i) {
        auto tcp = std::make_unique<uv_tcp_t>();
        tcp->data = this;
        sockaddr_storage bound{};
        const auto port = requested_port_ ? requested_port_ : static_cast<std::uint16_t>(pick(rng));
        rc = listen_tcp(loop_, tcp.get(), listen_addr_, port, 128, on_connection,
                        requested_port_ || i + 1 == kPortTries ? "peerdex" : nullptr, bound);
        if (rc == 0) {
            listener_ = tcp.release();
            port_ = port;
        } else {
            uv_close(reinterpret_cast<uv_handle_t*>(tcp.release()),
                     [](uv_handle_t* h) { std::unique_ptr<uv_tcp_t> gone(reinterpret_cast<uv_tcp_t*>(h)); });
        }
    }
    if (rc != 0)
        return rc;
    sweep_ = std::make_unique<uv_timer_t>().release();  // freed in its close callback
    uv_timer_init(loop_, sweep_);
    sweep_->data = this;
    uv_timer_start(sweep_, on_sweep, kSweepMs, kSweepMs);
    running_ = true;
    return 0;
}

void PeerServer::on_sweep(uv_timer_t* t)
{
    auto* self = static_cast<PeerServer*>(t->data);
    while (PeerConn* c = self->idle_.expired(uv_now(self->loop_)))
        c->close();  // a downloader that stopped reading
}

void PeerServer::on_connection(uv_stream_t* s, int status)
{
    auto* self = static_cast<PeerServer*>(s->data);
    if (status < 0)
        return;
    if (self->conns_ >= kMaxConns) {
        self->accept_pending_ = true;  // libuv stops polling the listener until we accept
        return;
    }
    self->accept_one();
}

void PeerServer::accept_one()
{
    auto conn = std::make_unique<PeerConn>(*this);
    if (uv_tcp_init(loop_, &conn->tcp_) != 0)
        return;
    ++conns_;
    PeerConn* c = conn.release();  // freed when closed
    if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
        c->close();
        return;
    }
    c->start();
}

void PeerServer::conn_closed()
{
    --conns_;
    if (accept_pending_ && running_ && conns_ < kMaxConns) {
        accept_pending_ = false;
        accept_one();
    }
}

void PeerServer::stop()
{
    if (!running_)
        return;
    running_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* h) { std::unique_ptr<uv_tcp_t> gone(reinterpret_cast<uv_tcp_t*>(h)); });
    listener_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(sweep_),
             [](uv_handle_t* h) { std::unique_ptr<uv_timer_t> gone(reinterpret_cast<uv_timer_t*>(h)); });
    sweep_ = nullptr;
    while (PeerConn* c = idle_.head())
        c->close();
}

}  // namespace peerdex
