#include "server.hh"

#include <sys/resource.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "console.hh"
#include "listen.hh"
#include "oplog.hh"
#include "request.hh"

namespace peerdex {

namespace {

// Bytes of replies a session may queue before it stops reading further requests.
constexpr std::size_t kOutputHighWater = 256 * 1024;
// Size of one chunk of a streamed list reply.
constexpr std::size_t kListChunkBytes = 64 * 1024;
// One read buffer serves every session: the loop runs one read callback at a time.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
// After the last reply, how long a closing connection may still send before it is cut.
constexpr std::uint64_t kLingerMs = 2000;
// After SIGTERM, how long pending replies may take before every connection is cut.
constexpr std::uint64_t kDrainMs = 5000;
// File descriptors kept free for the listener, stdio and the libuv internals.
constexpr std::size_t kReservedFds = 32;
constexpr std::size_t kDefaultMaxConns = 10000;
constexpr int kListenBacklog = 4096;

char read_buffer[kReadBufferBytes];

std::size_t default_max_conns()
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur <= kReservedFds * 2)
        return 64;
    return std::min<std::size_t>(rl.rlim_cur - kReservedFds, kDefaultMaxConns);
}

// The "host's primary address" of the init line: the first non-loopback IPv4 address
// that is up, else the first such IPv6 address, else loopback.
std::string primary_address()
{
    ifaddrs* list = nullptr;
    std::string v6;
    if (getifaddrs(&list) != 0)
        return "127.0.0.1";
    std::string v4;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        Address a = Address::from_sockaddr(i->ifa_addr);
        if (a.family == 4 && v4.empty())
            v4 = a.str();
        else if (a.family == 6 && v6.empty() && !(a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80))
            v6 = a.str();  // not link-local (fe80::/10): that needs a scope to be usable
    }
    freeifaddrs(list);
    if (!v4.empty())
        return v4;
    return v6.empty() ? "127.0.0.1" : v6;
}

}  // namespace

// ---------------------------------------------------------------------------------------

class Session {
public:
    explicit Session(TrackerServer& server) : server_(server) { tcp_.data = this; }

    int accept(uv_stream_t* listener);
    void start();
    // Graceful stop: finish the reply in progress, then close.
    void drain();
    void close();
    // Called by the sweep when the session's deadline passed.
    void expire();

    uv_tcp_t tcp_{};
    Session* dl_prev = nullptr;  // DeadlineList links
    Session* dl_next = nullptr;
    std::uint64_t dl_stamp = 0;
    void* dl_owner = nullptr;

private:
    enum class State { open, closing, lingering, closed };

    static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_write_t* req, int status);
    static void on_shutdown(uv_shutdown_t* req, int status);
    static void on_close(uv_handle_t* handle);

    void process(const char* p, const char* end);
    void resume();
    void handle(const Request& r);
    void finish_after_reply();
    void flush();
    void progress();
    bool backlogged() const { return out_.size() >= kOutputHighWater || cursor_.active(); }
    const Address& peer();
    std::string peer_text();

    TrackerServer& server_;
    Registry& registry() { return server_.registry_; }

    RequestParser parser_;
    ListCursor cursor_;
    Address peer_;
    std::uint16_t peer_port_ = 0;
    std::string out_;       // replies not yet handed to the kernel
    std::string inflight_;  // the buffer of the write in progress
    std::string stash_;     // input read but not parsed while the session is backlogged
    uv_write_t write_req_{};
    uv_shutdown_t shutdown_req_{};
    State state_ = State::open;
    bool hello_ = false;
    bool writing_ = false;
    bool reading_ = false;
    bool eof_ = false;
    bool linger_ = false;  // input may still arrive after the last reply: close with a linger
};

// ---- Session --------------------------------------------------------------------------

int Session::accept(uv_stream_t* listener)
{
    return uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_));
}

// The peer's address costs a system call: only CONNECT and -v messages need it.
const Address& Session::peer()
{
    if (peer_.family == 0) {
        sockaddr_storage ss{};
        int len = sizeof ss;
        if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            peer_ = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
            peer_port_ = port_of(reinterpret_cast<sockaddr*>(&ss));
        }
    }
    return peer_;
}

void Session::start()
{
    progress();
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
    if (!reading_)
        close();
}

std::string Session::peer_text()
{
    peer();
    std::string s = peer_.family == 6 ? "[" + peer_.str() + "]" : peer_.str();
    return s + ":" + std::to_string(peer_port_);
}

void Session::progress()
{
    // A slow reader of a long reply is fine as long as it keeps making progress.
    if (state_ == State::open || state_ == State::closing)
        server_.idle_.touch(this, uv_now(server_.loop_));
}

void Session::on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf)
{
    *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

void Session::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
{
    auto* s = static_cast<Session*>(stream->data);
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || s->state_ == State::lingering) {
            s->close();
            return;
        }
        // Half-closed: libuv stopped reading. Replies already owed still go out.
        s->eof_ = true;
        s->reading_ = false;
        if (s->state_ == State::open) {
            if (s->parser_.in_progress() && s->parser_.op_known()) {
                // The request can never complete: it gets its generic error.
                Console::debug("s> truncated %s request from %s", spec(s->parser_.op()).name.data(),
                               s->peer_text().c_str());
                Encoder(s->out_).code(spec(s->parser_.op()).generic_error);
            }
            s->finish_after_reply();
        }
        s->flush();
        return;
    }
    if (s->state_ != State::open)
        return;  // closing: input after the last reply is discarded
    s->progress();
    s->process(buf->base, buf->base + nread);
    s->flush();
}

void Session::process(const char* p, const char* end)
{
    while (p < end && state_ == State::open) {
        if (backlogged()) {
            // Keep the rest for later and stop reading: the peer must read its replies first.
            stash_.assign(p, end);
            if (reading_) {
                uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
                reading_ = false;
            }
            return;
        }
        switch (parser_.feed(p, end)) {
        case RequestParser::Result::need_more:
            return;
        case RequestParser::Result::request:
            handle(parser_.request());
            if (!hello_) {
                linger_ = linger_ || p != end;  // bytes after the one request: more may follow
                finish_after_reply();           // canonical: one operation per connection
            }
            break;
        case RequestParser::Result::malformed:
            Console::debug("s> malformed %s request from %s", std::string(op_name(parser_.op())).c_str(),
                           peer_text().c_str());
            Encoder(out_).code(spec(parser_.op()).generic_error);
            linger_ = true;
            finish_after_reply();
            break;
        case RequestParser::Result::unknown_op:
            Console::debug("s> unknown operation from %s", peer_text().c_str());
            linger_ = true;
            finish_after_reply();
            break;
        }
    }
}

void Session::handle(const Request& r)
{
    const std::string_view user = r.fields[0];
    if (r.op != Op::hello)
        Console::line("s> OPERATION %s FROM %.*s", spec(r.op).name.data(), static_cast<int>(user.size()),
                      user.data());
    if (Console::verbose() && r.has_timestamp)
        Console::debug("s> %s from %s at %s", spec(r.op).name.data(), peer_text().c_str(), r.timestamp.c_str());

    Encoder enc(out_);
    Outcome outcome = Outcome::ok;
    Address ip;
    std::uint16_t port = 0;
    switch (r.op) {
    case Op::hello:
        if (user == kHelloVersion) {
            hello_ = true;
            uv_tcp_nodelay(&tcp_, 1);  // pipelined replies must not wait for Nagle
            enc.code(0);
            enc.field(kHelloVersion);
        } else {
            enc.code(spec(r.op).generic_error);
            finish_after_reply();
        }
        return;
    case Op::register_user:
        outcome = registry().register_user(user);
        break;
    case Op::unregister_user:
        outcome = registry().unregister_user(user);
        break;
    case Op::connect:
        outcome = registry().connect(user, peer(), *parse_port(r.fields[1]));
        break;
    case Op::publish:
        outcome = registry().publish(user, r.fields[1], r.fields[2]);
        break;
    case Op::remove:
        outcome = registry().remove(user, r.fields[1]);
        break;
    case Op::disconnect:
        outcome = registry().disconnect(user);
        break;
    case Op::list_users:
        outcome = registry().list_users(user, cursor_);
        break;
    case Op::list_content:
        outcome = registry().list_content(user, r.fields[1], cursor_);
        break;
    case Op::get_user_info:
        outcome = registry().get_user_info(user, r.fields[1], ip, port);
        break;
    }
    // How each operation says it on the wire.
    const std::uint8_t code = result_code(r.op, outcome);
    enc.code(code);
    if (code == 0 && (r.op == Op::list_users || r.op == Op::list_content)) {
        enc.number(cursor_.count());
        cursor_.fill(out_, out_.size() + kListChunkBytes);
    } else if (code == 0 && r.op == Op::get_user_info) {
        ip.append_to(out_);
        out_.push_back('\0');
        enc.number(port);
    }
    if (code != 0)
        Console::debug("s> %s from %s refused with code %u", spec(r.op).name.data(), peer_text().c_str(), code);
    if (server_.oplog_) {
        const bool has_path = r.op == Op::publish || r.op == Op::remove;
        server_.oplog_->record(spec(r.op).name, user, has_path ? std::string_view(r.fields[1]) : std::string_view(),
                               r.has_timestamp ? std::string_view(r.timestamp) : std::string_view());
    }
}

void Session::finish_after_reply()
{
    state_ = State::closing;
    stash_.clear();
}

void Session::flush()
{
    if (writing_ || state_ == State::closed)
        return;
    if (out_.empty() && cursor_.active())
        cursor_.fill(out_, kListChunkBytes);
    if (!out_.empty()) {
        inflight_.swap(out_);
        out_.clear();
        uv_buf_t b = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
        if (uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, on_write) != 0) {
            close();
            return;
        }
        writing_ = true;
        return;
    }
    if (state_ == State::closing) {
        // Every reply is out. After a well-formed request that ended its input, close
        // now, as a canonical client expects (nginx's lingering-close heuristic). When
        // more input came or may still come (a refused request), send FIN and wait,
        // bounded, for the peer's own close, so that unread input does not turn our
        // close into a reset that eats the reply.
        if (!linger_) {
            close();
            return;
        }
        state_ = State::lingering;
        server_.linger_.touch(this, uv_now(server_.loop_));
        if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) != 0)
            close();
    }
}

void Session::on_write(uv_write_t* req, int status)
{
    auto* s = static_cast<Session*>(req->handle->data);
    s->writing_ = false;
    s->inflight_.clear();
    if (status < 0 || s->state_ == State::closed) {
        s->close();
        return;
    }
    s->progress();
    s->resume();
    s->flush();
}

void Session::resume()
{
    if (state_ != State::open || backlogged())
        return;
    if (!stash_.empty()) {
        std::string input;
        input.swap(stash_);
        process(input.data(), input.data() + input.size());
    }
    if (state_ == State::open && !backlogged() && !reading_)
        reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
}

void Session::on_shutdown(uv_shutdown_t* req, int status)
{
    auto* s = static_cast<Session*>(req->handle->data);
    if (status == UV_ECANCELED || s->state_ == State::closed)
        return;
    if (status < 0 || s->eof_) {
        s->close();
        return;
    }
    if (!s->reading_)  // wait, bounded by the linger deadline, for the peer's EOF
        s->reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&s->tcp_), on_alloc, on_read) == 0;
}

void Session::drain()
{
    if (state_ == State::open && !parser_.in_progress() && out_.empty() && !writing_ && !cursor_.active()) {
        close();
        return;
    }
    if (state_ == State::open)
        finish_after_reply();
    flush();
}

void Session::expire()
{
    if (state_ == State::open && Console::verbose())
        Console::debug("s> idle timeout for %s", peer_text().c_str());
    close();
}

void Session::close()
{
    if (state_ == State::closed)
        return;
    state_ = State::closed;
    DeadlineList<Session>::unlink(this);
    cursor_ = ListCursor();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Session::on_close(uv_handle_t* handle)
{
    std::unique_ptr<Session> self(static_cast<Session*>(handle->data));
    self->server_.session_closed();
}

// ---- TrackerServer --------------------------------------------------------------------

TrackerServer::TrackerServer(uv_loop_t* loop, TrackerOptions options)
    : loop_(loop), options_(std::move(options)), idle_(options_.idle_timeout_ms), linger_(kLingerMs)
{
    if (options_.max_conns == 0)
        options_.max_conns = default_max_conns();
}

TrackerServer::~TrackerServer() = default;

int TrackerServer::start()
{
    sockaddr_storage ss{};
    listener_.data = this;
    listening_ = true;
    if (int rc = listen_tcp(loop_, &listener_, options_.listen_addr, options_.port, kListenBacklog, on_connection,
                            "peerdex-tracker", ss);
        rc != 0)
        return rc;
    listener_.data = this;
    const Address bound = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    const bool wildcard = std::all_of(std::begin(bound.bytes), std::end(bound.bytes), [](auto b) { return b == 0; });
    const std::string ip = wildcard ? primary_address() : bound.str();
    const unsigned bound_port = port_of(reinterpret_cast<sockaddr*>(&ss));
    Console::banner("s> init server %s:%u", ip.c_str(), bound_port);

    uv_timer_init(loop_, &sweep_);
    sweep_.data = this;
    const std::uint64_t period = std::clamp<std::uint64_t>(options_.idle_timeout_ms / 4, 50, 1000);
    uv_timer_start(&sweep_, on_sweep, period, period);
    uv_check_init(loop_, &flush_);
    uv_check_start(&flush_, on_check);
    uv_unref(reinterpret_cast<uv_handle_t*>(&flush_));
    uv_timer_init(loop_, &drain_);
    drain_.data = this;
    return 0;
}

void TrackerServer::on_check(uv_check_t*)
{
    Console::flush();
}

void TrackerServer::on_connection(uv_stream_t* stream, int status)
{
    auto* self = static_cast<TrackerServer*>(stream->data);
    if (status < 0) {
        // libuv already shed the pending connections for EMFILE/ENFILE; say it once.
        if (!self->emfile_reported_)
            Console::error("peerdex-tracker: accept failed: %s (raise the file descriptor limit or lower "
                           "--max-conns)",
                           uv_strerror(status));
        self->emfile_reported_ = true;
        return;
    }
    if (self->sessions_ >= self->options_.max_conns) {
        // Not accepting makes libuv stop polling the listener until we accept again.
        self->accept_pending_ = true;
        return;
    }
    self->accept_one();
}

void TrackerServer::accept_one()
{
    auto session = std::make_unique<Session>(*this);
    if (const int rc = uv_tcp_init(loop_, &session->tcp_); rc != 0) {
        Console::error("peerdex-tracker: cannot create a connection handle: %s", uv_strerror(rc));
        return;
    }
    ++sessions_;
    Session* s = session.release();  // owned by its handle from here on; freed in on_close
    if (const int rc = s->accept(reinterpret_cast<uv_stream_t*>(&listener_)); rc != 0) {
        Console::error("peerdex-tracker: accept: %s", uv_strerror(rc));
        s->close();
        return;
    }
    s->start();
}

void TrackerServer::session_closed()
{
    --sessions_;
    if (stopping_ && sessions_ == 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&drain_), nullptr);
        return;
    }
    if (accept_pending_ && !stopping_ && sessions_ < options_.max_conns) {
        accept_pending_ = false;
        accept_one();
    }
}

void TrackerServer::on_sweep(uv_timer_t* timer)
{
    auto* self = static_cast<TrackerServer*>(timer->data);
    const std::uint64_t now = uv_now(self->loop_);
    while (Session* s = self->idle_.expired(now))
        s->expire();
    while (Session* s = self->linger_.expired(now))
        s->expire();
}

void TrackerServer::stop()
{
    if (stopping_)
        return;
    stopping_ = true;
    if (listening_)
        uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_), nullptr);
    // Sessions move from idle_ to linger_ (or close) as they drain: walk a snapshot.
    for (Session* s = idle_.head(); s;) {
        Session* next = s->dl_next;
        s->drain();
        s = next;
    }
    if (sessions_ == 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&drain_), nullptr);
        return;
    }
    uv_timer_start(
        &drain_,
        [](uv_timer_t* t) {
            auto* self = static_cast<TrackerServer*>(t->data);
            while (Session* s = self->idle_.head())
                s->close();
            while (Session* s = self->linger_.head())
                s->close();
        },
        kDrainMs, 0);
}

}  // namespace peerdex
