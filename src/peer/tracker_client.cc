#include "tracker_client.hh"

#include <algorithm>
#include <memory>

#include "protocol.hh"
#include "write.hh"

namespace peerdex {

namespace {
// A tracker that neither answers HELLO nor closes within this is a canonical one.
constexpr std::uint64_t kHelloTimeoutMs = 1000;
constexpr std::size_t kReadBufferBytes = 64 * 1024;
// Users whose OWN a session remembers; fewer than the keys a tracker keeps per session.
constexpr std::size_t kMaxOwned = 8;
}  // namespace

struct TrackerClient::Conn {
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    TrackerClient* owner = nullptr;
    bool connected = false;
    char buf[kReadBufferBytes];
};

TrackerClient::TrackerClient(uv_loop_t* loop, const sockaddr_storage& tracker, std::uint64_t timeout_ms,
                             ClockClient* clock)
    : loop_(loop), clock_(clock), addr_(tracker), timeout_ms_(timeout_ms)
{
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
}

TrackerClient::~TrackerClient() = default;

void TrackerClient::close()
{
    if (closed_)
        return;
    closed_ = true;
    if (conn_)
        drop(conn_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

namespace {

bool changes_user(const std::string& op)
{
    return op == "REGISTER" || op == "UNREGISTER" || op == "CONNECT" || op == "PUBLISH" || op == "DELETE" ||
           op == "DISCONNECT";
}

}  // namespace

void TrackerClient::call(std::vector<std::string> fields, Shape shape, int n, Done done)
{
    // The entries peerdex/2 widens, whoever asks (peerdex-protocol(7), SESSIONS).
    V2 v2;
    if (!fields.empty() && fields[0] == "LIST_CONTENT")
        v2.n = 4;  // path, description, size, id
    else if (!fields.empty() && fields[0] == "SEARCH")
        v2.n = 7;  // user, ip, port, path, description, size, id
    call(std::move(fields), shape, n, std::move(done), std::move(v2));
}

void TrackerClient::call(std::vector<std::string> fields, Shape shape, int n, Done done, V2 v2)
{
    v2_ = std::move(v2);
    own_user_.clear();
    own_key_.clear();
    not_owner_ = false;
    key_problem_.clear();
    if (keys_ && fields.size() >= 2 && changes_user(fields[0])) {
        own_user_ = fields[1];  // OWN goes first on a HELLO session, with the key if there is one
        own_key_ = keys_->get(own_user_, key_problem_);
        if (own_key_.empty() && key_problem_.empty() && fields[0] == "REGISTER")
            own_key_ = keys_->create(own_user_, key_problem_);
    }
    shape_ = shape;
    n_ = n;
    done_ = std::move(done);
    busy_ = true;
    if (clock_ && clock_->enabled()) {
        clock_->fetch([this, fields = std::move(fields)](const std::string& ts) mutable {
            fields.insert(fields.begin() + 1, ts);
            fields_ = std::move(fields);
            start();
        });
        return;
    }
    fields_ = std::move(fields);
    start();
}

void TrackerClient::build()
{
    request_.clear();
    Encoder enc(request_);
    for (const auto& f : fields_)
        enc.field(f);
    if (v2())
        for (const auto& f : v2_.extra)
            enc.field(f);
}

void TrackerClient::start()
{
    why_.clear();
    uv_timer_start(&timer_, on_timeout, timeout_ms_, 0);
    if (mode_ == Mode::hello && conn_ && conn_->connected) {
        send_next();
    } else {
        open(mode_ != Mode::canonical);
    }
}

void TrackerClient::expect()
{
    const int n = v2() && v2_.n >= 0 ? v2_.n : n_;
    switch (shape_) {
    case Shape::code_only:
        reply_.expect_code_only();
        break;
    case Shape::list:
        reply_.expect_list(n);
        break;
    case Shape::fields:
        reply_.expect_fields(n);
        break;
    }
}

void TrackerClient::open(bool hello)
{
    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    uv_tcp_init(loop_, &conn->tcp);
    conn->tcp.data = conn.get();
    conn->connect.data = conn.get();
    handshaking_ = hello;
    const int rc = uv_tcp_connect(&conn->connect, &conn->tcp, reinterpret_cast<const sockaddr*>(&addr_),
                                  [](uv_connect_t* req, int status) {
                                      auto* c = static_cast<Conn*>(req->data);
                                      if (c->owner)
                                          c->owner->on_connected(c, status);
                                  });
    conn_ = conn.release();  // freed in its close callback
    if (rc != 0) {
        why_ = std::string("cannot connect to the tracker: ") + uv_strerror(rc);
        drop(conn_);
        finish(-1);
    }
}

void TrackerClient::on_connected(Conn* c, int status)
{
    if (status != 0) {
        why_ = std::string("cannot connect to the tracker: ") + uv_strerror(status);
        drop(c);
        finish(-1);
        return;
    }
    c->connected = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* cc = static_cast<Conn*>(h->data);
            *buf = uv_buf_init(cc->buf, sizeof cc->buf);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
            auto* cc = static_cast<Conn*>(s->data);
            if (!cc->owner)
                return;
            if (nread < 0)
                cc->owner->on_eof(cc);
            else
                cc->owner->on_data(cc, buf->base, buf->base + nread);
        });
    if (handshaking_) {
        reply_.expect_fields(1);
        std::string hello;
        Encoder(hello).field("HELLO");
        Encoder(hello).field(version_ == 2 ? kHelloVersion2 : kHelloVersion);
        send(hello);
        uv_timer_start(&timer_, on_timeout, kHelloTimeoutMs, 0);
        return;
    }
    expect();
    build();
    send(request_);
}

void TrackerClient::send_next()
{
    if (!own_user_.empty() && !no_own_) {  // with a key, or without one (to learn why a change is refused)
        const auto shown = std::find_if(owned_.begin(), owned_.end(), [&](const Owned& o) {
            return o.user == own_user_ && o.key == own_key_;
        });
        if (shown != owned_.end()) {
            not_owner_ = !shown->ok;
        } else {
            owning_ = true;
            reply_.expect_code_only();
            std::string own;
            Encoder enc(own);
            enc.field("OWN");
            enc.field(own_user_);
            enc.field(own_key_);
            send(own);
            return;
        }
    }
    expect();
    build();
    send(request_);
}

void TrackerClient::send(const std::string& bytes)
{
    // One write per request; errors surface as read errors on the same connection.
    write_string(reinterpret_cast<uv_stream_t*>(&conn_->tcp), bytes);
}

void TrackerClient::on_data(Conn* c, const char* p, const char* end)
{
    if (c != conn_ || !busy_)
        return;  // bytes after a complete reply: ignored (the tolerance of CONSOLE LINES)
    const auto st = reply_.feed(p, end);
    if (st == ReplyDecoder::Status::need_more)
        return;
    if (handshaking_) {
        handshaking_ = false;
        if (st == ReplyDecoder::Status::done && reply_.code() == 0 && reply_.fields().size() == 1 &&
            reply_.fields()[0] == (version_ == 2 ? kHelloVersion2 : kHelloVersion)) {
            mode_ = Mode::hello;
            hello_seen_ = true;
            owned_.clear();  // a new session: every key is shown again
            uv_timer_start(&timer_, on_timeout, timeout_ms_, 0);
            send_next();
            return;
        }
        if (st == ReplyDecoder::Status::done && reply_.code() != 0 && version_ == 2) {
            // A peerdex tracker of before peerdex/2 refuses it: a peerdex/1 session then.
            version_ = 1;
            drop(c);
            open(true);
            return;
        }
        hello_failed();
        return;
    }
    if (owning_ && st == ReplyDecoder::Status::done) {
        owning_ = false;
        if (owned_.size() >= kMaxOwned)
            owned_.erase(owned_.begin());  // below the tracker's 16 keys per session
        owned_.push_back({own_user_, own_key_, reply_.code() == 0});
        send_next();
        return;
    }
    if (st == ReplyDecoder::Status::error) {
        why_ = "malformed reply from the tracker: " + reply_.error();
        drop(c);
        finish(-1);
        return;
    }
    if (mode_ != Mode::hello)
        drop(c);  // canonical: one operation per connection
    finish(reply_.code());
}

void TrackerClient::on_eof(Conn* c)
{
    if (c != conn_) {
        drop(c);
        return;
    }
    if (!busy_) {  // the tracker closed an idle session: reopen on the next call
        drop(c);
        return;
    }
    if (handshaking_) {
        if (hello_seen_) {
            // This tracker opened sessions of this version before: it went away as this one
            // opened (a restart), it did not forget HELLO. The call fails; the next one asks
            // the same version again.
            handshaking_ = false;
            drop(c);
            why_ = "the tracker closed the connection as the session opened";
            finish(-1);
            return;
        }
        if (version_ == 2) {
            // Closed on peerdex/2: an older peerdex tracker may speak peerdex/1; a course
            // tracker closes on that too, and is then known for what it is.
            version_ = 1;
            drop(c);
            open(true);
            return;
        }
        hello_failed();
        return;
    }
    if (owning_) {
        // A peerdex tracker older than OWN closes on an operation it does not know: it
        // checks no owners; go on without OWN, on a new session.
        owning_ = false;
        no_own_ = true;
        drop(c);
        open(true);
        return;
    }
    const auto st = reply_.eof();
    drop(c);
    if (st == ReplyDecoder::Status::done) {
        finish(reply_.code());
    } else {
        why_ = "the tracker closed the connection: " + reply_.error();
        finish(-1);
    }
}

// A canonical tracker (it refused HELLO, closed, or stayed silent): remember it, and run
// the pending call the canonical way.
void TrackerClient::hello_failed()
{
    mode_ = Mode::canonical;
    if (conn_)
        drop(conn_);
    uv_timer_start(&timer_, on_timeout, timeout_ms_, 0);
    open(false);
}

void TrackerClient::on_timeout(uv_timer_t* t)
{
    auto* self = static_cast<TrackerClient*>(t->data);
    if (self->handshaking_) {
        self->handshaking_ = false;
        self->hello_failed();
        return;
    }
    self->why_ = "the tracker did not answer in time";
    if (self->conn_)
        self->drop(self->conn_);
    self->finish(-1);
}

void TrackerClient::drop(Conn* c)
{
    c->owner = nullptr;
    if (c == conn_)
        conn_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { std::unique_ptr<Conn> closed(static_cast<Conn*>(h->data)); });
}

void TrackerClient::finish(int code)
{
    if (!busy_)
        return;
    busy_ = false;
    uv_timer_stop(&timer_);
    Done done = std::move(done_);
    done_ = nullptr;
    if (done)
        done(code, reply_);
}

}  // namespace peerdex
