// peerdex-bench: load generator for any tracker speaking the course protocol
// (peerdex-protocol(7), TRACKER REQUESTS), and for peerdex's HELLO sessions (SESSIONS). One
// libuv loop drives N virtual users; each runs whole user lives (REGISTER, CONNECT, PUBLISH
// k files, LIST_CONTENT, LIST_USERS, DISCONNECT, UNREGISTER) and checks every reply. Exit
// status: 0 when every reply was right, 1 otherwise, 2 on usage errors.
#include <getopt.h>
#include <uv.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hh"
#include "histogram.hh"
#include "protocol.hh"
#include "wire.hh"

namespace {

using peerdex::Encoder;
using peerdex::FieldReader;
using peerdex::Histogram;

constexpr const char* kTimestamp = "22/11/2026 22:38:16";

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 4000;
    bool hello = false;
    int clients = 64;
    double seconds = 5;
    int pipeline = 1;
    int files = 2;
    bool light = false;      // REGISTER + UNREGISTER only
    bool timestamps = true;
    std::string prefix;  // default: unique per run, so runs against one tracker never collide
    double rate = 0;               // open loop: total operations per second (0: closed loop)
    std::uint64_t fill_users = 0;  // memory scenario: load and keep this many users
    std::string get_file;          // GET_FILE mode: the path to download from the peer at host:port
    std::string http;              // HTTP mode: GET this path over keep-alive connections (a reference
                                   // server such as nginx, driven exactly as the tracker is)
    std::vector<std::string> queries;  // search mode: SEARCH these, round robin (--search FILE)
    int pid = 0;                   // tracker pid, for RSS figures
};

enum class Kind { code, users, content, hello, hits, http };

struct Expected {
    Kind kind;
    std::string_view op;
    std::uint64_t t0;
    std::size_t want_count;  // for content lists; SIZE_MAX: any
};

// Incremental parser of one reply at a time.
class ReplyReader {
public:
    void expect(Kind k)
    {
        kind_ = k;
        state_ = State::code;
        count_ = 0;
        reader_.start(peerdex::kMaxFieldBytes);
        head_.clear();
        body_left_ = 0;
    }
    // Returns true when the reply is complete; code() and count() then describe it.
    bool feed(const char*& p, const char* end, bool& error)
    {
        if (kind_ == Kind::http)
            return feed_http(p, end, error);
        while (p < end) {
            if (state_ == State::code) {
                code_ = static_cast<std::uint8_t>(*p++);
                if (code_ != 0 || kind_ == Kind::code)
                    return true;
                state_ = kind_ == Kind::hello ? State::version : State::count;
                continue;
            }
            auto st = reader_.next(p, end);
            if (st == FieldReader::Status::need_more)
                return false;
            if (st == FieldReader::Status::too_long) {
                error = true;
                return true;
            }
            if (state_ == State::version)
                return true;
            if (state_ == State::count) {
                auto n = peerdex::parse_decimal(reader_.field(), 100000000);
                if (!n) {
                    error = true;
                    return true;
                }
                count_ = *n;
                remaining_ = count_ * (kind_ == Kind::users ? 3 : kind_ == Kind::hits ? 5 : 1);
                state_ = State::entries;
                if (remaining_ == 0)
                    return true;
                continue;
            }
            if (--remaining_ == 0)
                return true;
        }
        return false;
    }
    std::uint8_t code() const { return code_; }
    std::uint64_t count() const { return count_; }

private:
    // An HTTP/1.1 response: the head up to its blank line (status 200: code 0, else 1),
    // then Content-Length bytes of body, skipped.
    bool feed_http(const char*& p, const char* end, bool& error)
    {
        if (state_ == State::code) {
            while (p < end && !(head_.size() >= 4 && head_.compare(head_.size() - 4, 4, "\r\n\r\n") == 0))
                head_ += *p++;
            if (!(head_.size() >= 4 && head_.compare(head_.size() - 4, 4, "\r\n\r\n") == 0)) {
                if (head_.size() > 16384) {
                    error = true;
                    return true;
                }
                return false;
            }
            code_ = head_.compare(0, 12, "HTTP/1.1 200") == 0 ? 0 : 1;
            std::string lower(head_);
            for (char& ch : lower)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            const auto at = lower.find("\r\ncontent-length:");
            if (at == std::string::npos) {
                error = true;
                return true;
            }
            body_left_ = std::strtoull(lower.c_str() + at + 17, nullptr, 10);
            state_ = State::entries;
        }
        const auto take = std::min<std::uint64_t>(body_left_, static_cast<std::uint64_t>(end - p));
        p += take;
        body_left_ -= take;
        return body_left_ == 0;
    }

    enum class State { code, version, count, entries };
    FieldReader reader_;
    Kind kind_ = Kind::code;
    State state_ = State::code;
    std::uint8_t code_ = 0;
    std::uint64_t count_ = 0, remaining_ = 0;
    std::string head_;
    std::uint64_t body_left_ = 0;
};

struct Stats {
    Histogram latency;
    std::uint64_t ops = 0;
    std::uint64_t wrong = 0;
    std::uint64_t io_errors = 0;
    std::map<std::string, std::uint64_t> codes;  // "OP=code" for unexpected codes
};

class Bench;

class Client {
public:
    Client(Bench& b, int id);
    void start();
    void close_timer() { uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr); }
    bool done = false;

private:
    struct Conn {
        uv_tcp_t tcp{};
        uv_connect_t connect{};
        uv_write_t write{};
        std::string out;
        Client* owner;
        char buf[64 * 1024];
    };

    void next_cycle();
    void queue_step();
    void after_reply();
    void go();
    void send_pending();
    void open();
    void on_connected(int status);
    void on_data(const char* p, const char* end);
    void on_eof();
    void finish_conn();
    void fail(const char* what);
    void reply_done(bool error);

    Bench& b_;
    int id_;
    std::uint64_t cycle_ = 0;
    int step_ = 0;
    std::string user_;
    std::string batch_;  // requests not yet written
    std::deque<Expected> expected_;
    ReplyReader reader_;
    Conn* conn_ = nullptr;
    bool armed_ = false;
    uv_timer_t timer_{};           // open loop: waits for the next operation's scheduled time
    std::uint64_t fired_us_ = 0;   // open loop: when the timer started this operation (0: not the timer)
    std::uint64_t due_us_ = 0;     // scheduled time of the next operation
    bool connected_ = false;
    bool writing_ = false;
};

// GET_FILE mode: downloads a file from a peer over and over, discarding it, and checks
// that each download has exactly the size the peer announced.
class FileClient {
public:
    explicit FileClient(Bench& b) : b_(b) {}
    void start();
    bool done = false;

private:
    void on_data(const char* p, const char* end);
    void finished(bool ok, const char* why);

    Bench& b_;
    uv_tcp_t* tcp_ = nullptr;
    uv_connect_t connect_{};
    uv_write_t write_{};
    std::string request_;
    bool in_body_ = false;
    bool header_seen_ = false;
    std::uint64_t size_ = 0, got_ = 0, t0_ = 0;
    std::string size_field_;
    char buf_[256 * 1024];
};

class Bench {
public:
    explicit Bench(Options o) : opt(std::move(o)) {}
    int run();
    void client_done();

    Options opt;
    uv_loop_t* loop = nullptr;
    sockaddr_storage addr{};
    Stats stats;
    std::uint64_t bytes = 0;  // GET_FILE mode
    bool stopping = false;
    std::uint64_t users_filled = 0;

private:
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<std::unique_ptr<FileClient>> file_clients_;
    uv_timer_t timer_{};
    int running_ = 0;
    std::uint64_t started_ = 0;
};

std::uint64_t now_us(uv_loop_t*)
{
    return uv_hrtime() / 1000;
}

long rss_kib(int pid)
{
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE* f = std::fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    std::fclose(f);
    return kib;
}

Client::Client(Bench& b, int id) : b_(b), id_(id) {}

void Client::start()
{
    uv_timer_init(b_.loop, &timer_);
    timer_.data = this;
    if (b_.opt.rate > 0)  // spread the clients' first operations over one interval
        due_us_ = now_us(b_.loop) + static_cast<std::uint64_t>(1e6 * b_.opt.clients / b_.opt.rate) * id_ /
                                        static_cast<std::uint64_t>(b_.opt.clients);
    next_cycle();
    if (b_.opt.hello && b_.opt.http.empty()) {
        Encoder(batch_).field("HELLO");
        Encoder(batch_).field(peerdex::kHelloVersion);
        expected_.push_back({Kind::hello, "HELLO", now_us(b_.loop), 0});
        open();
        return;
    }
    queue_step();
    open();
}

void Client::next_cycle()
{
    user_ = b_.opt.prefix + std::to_string(id_) + "_" + std::to_string(cycle_++);
    step_ = 0;
}

// Appends the next request of the user's life to batch_.
void Client::queue_step()
{
    const Options& o = b_.opt;
    const int publish_end = 2 + o.files;
    std::string& out = batch_;
    Encoder enc(out);
    auto op = [&](const char* name, Kind k, std::size_t want = SIZE_MAX) {
        enc.field(name);
        if (o.timestamps)
            enc.field(kTimestamp);
        enc.field(user_);
        expected_.push_back({k, name, 0, want});
    };
    const int step = step_++;
    if (!o.http.empty()) {
        out += "GET " + o.http + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
        expected_.push_back({Kind::http, "GET", 0, SIZE_MAX});
        return;
    }
    if (!o.queries.empty()) {
        // Search mode: the client's user registers and connects once, then searches.
        if (step == 0) {
            op("REGISTER", Kind::code);
        } else if (step == 1) {
            op("CONNECT", Kind::code);
            enc.number(static_cast<std::uint64_t>(1024 + id_ % 60000));
        } else {
            op("SEARCH", Kind::hits);
            enc.field(o.queries[(static_cast<std::size_t>(id_) * 7919 + static_cast<std::size_t>(step)) % o.queries.size()]);
            enc.number(100);
        }
        return;
    }
    if (o.fill_users) {
        if (step == 0)
            op("REGISTER", Kind::code);
        else if (step == 1) {
            op("CONNECT", Kind::code);
            enc.number(static_cast<std::uint64_t>(1024 + id_));
        } else {
            op("PUBLISH", Kind::code);
            enc.field("/srv/f" + std::to_string(step - 2));  // short: stored inline, so RSS shows overhead
            enc.field("");
        }
        if (step_ == 2 + o.files) {
            ++b_.users_filled;
            next_cycle();
        }
        return;
    }
    if (o.light) {
        op(step == 0 ? "REGISTER" : "UNREGISTER", Kind::code);
        if (step_ == 2)
            next_cycle();
        return;
    }
    if (step == 0) {
        op("REGISTER", Kind::code);
    } else if (step == 1) {
        op("CONNECT", Kind::code);
        enc.number(static_cast<std::uint64_t>(1024 + id_ % 60000));
    } else if (step < publish_end) {
        op("PUBLISH", Kind::code);
        enc.field("/srv/share/file" + std::to_string(step - 2));
        enc.field("bench file");
    } else if (step == publish_end) {
        op("LIST_CONTENT", Kind::content, static_cast<std::size_t>(o.files));
        enc.field(user_);
    } else if (step == publish_end + 1) {
        op("LIST_USERS", Kind::users);
    } else if (step == publish_end + 2) {
        op("DISCONNECT", Kind::code);
    } else {
        op("UNREGISTER", Kind::code);
        next_cycle();
    }
}

void Client::open()
{
    auto conn = std::make_unique<Conn>();
    conn_ = conn.release();  // freed in its close callback
    conn_->owner = this;
    connected_ = false;
    uv_tcp_init(b_.loop, &conn_->tcp);
    conn_->tcp.data = conn_;
    conn_->connect.data = conn_;
    uv_tcp_connect(&conn_->connect, &conn_->tcp, reinterpret_cast<sockaddr*>(&b_.addr), [](uv_connect_t* r, int st) {
        auto* c = static_cast<Conn*>(r->data);
        if (c->owner)
            c->owner->on_connected(st);
    });
}

void Client::on_connected(int status)
{
    if (status != 0) {
        fail(uv_strerror(status));
        return;
    }
    connected_ = true;
    uv_tcp_nodelay(&conn_->tcp, 1);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&conn_->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* c = static_cast<Conn*>(h->data);
            *buf = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            auto* c = static_cast<Conn*>(s->data);
            if (!c->owner)
                return;
            if (n == UV_EOF)
                c->owner->on_eof();
            else if (n < 0)
                c->owner->fail(uv_strerror(static_cast<int>(n)));
            else
                c->owner->on_data(buf->base, buf->base + n);
        });
    send_pending();
}

void Client::send_pending()
{
    if (!connected_ || writing_ || batch_.empty())
        return;
    // Open loop: an operation sent late because the server's previous reply came after
    // its due time counts from when it was due, so that a slow server cannot hide its
    // queueing (coordinated omission). One sent by the timer counts from when it is sent:
    // the timer has millisecond resolution and fires up to a millisecond after the due
    // time, a delay that is the generator's, not the server's.
    const std::uint64_t now = now_us(b_.loop);
    std::uint64_t t = now;
    if (b_.opt.rate > 0 && due_us_)
        t = fired_us_ ? fired_us_ : std::min(due_us_, now);
    fired_us_ = 0;
    for (auto& e : expected_)
        if (e.t0 == 0)
            e.t0 = t;
    conn_->out.swap(batch_);
    batch_.clear();
    uv_buf_t buf = uv_buf_init(conn_->out.data(), static_cast<unsigned>(conn_->out.size()));
    writing_ = true;
    conn_->write.data = conn_;
    uv_write(&conn_->write, reinterpret_cast<uv_stream_t*>(&conn_->tcp), &buf, 1, [](uv_write_t* w, int st) {
        auto* c = static_cast<Conn*>(w->data);
        if (!c->owner)
            return;
        c->owner->writing_ = false;
        if (st < 0)
            c->owner->fail(uv_strerror(st));
        else
            c->owner->send_pending();
    });
}

void Client::on_data(const char* p, const char* end)
{
    while (p < end) {
        if (expected_.empty()) {
            fail("bytes after the last reply");
            return;
        }
        if (!armed_) {  // the head of the queue changed: parse the reply it expects
            reader_.expect(expected_.front().kind);
            armed_ = true;
        }
        bool error = false;
        if (!reader_.feed(p, end, error))
            return;
        armed_ = false;
        reply_done(error);
        if (!conn_)
            return;
    }
}

void Client::reply_done(bool error)
{
    const Expected e = expected_.front();
    expected_.pop_front();
    Stats& s = b_.stats;
    // In search mode only the SEARCHes count (not the user's REGISTER and CONNECT).
    if (e.kind != Kind::hello && (b_.opt.queries.empty() || e.kind == Kind::hits)) {
        s.latency.record(now_us(b_.loop) - e.t0);
        ++s.ops;
    }
    const bool wrong = error || reader_.code() != 0 ||
                       (e.kind == Kind::content && reader_.count() != e.want_count) ||
                       (e.kind == Kind::users && reader_.count() == 0);
    if (wrong) {
        ++s.wrong;
        ++s.codes[std::string(e.op) + "=" + std::to_string(reader_.code())];
    }
    if (!b_.opt.hello) {
        // Canonical: the tracker closes; wait for its FIN (it keeps the TIME_WAIT).
        return;
    }
    if (b_.stopping || (b_.opt.fill_users && b_.users_filled >= b_.opt.fill_users)) {
        if (expected_.empty())
            finish_conn();
        return;
    }
    if (expected_.empty())
        after_reply();
    else if (b_.opt.rate <= 0)
        go();
}

// The next operation: now (closed loop) or at its scheduled time (open loop).
void Client::after_reply()
{
    if (b_.opt.rate <= 0) {
        go();
        return;
    }
    due_us_ += static_cast<std::uint64_t>(1e6 * b_.opt.clients / b_.opt.rate);
    const std::uint64_t now = now_us(b_.loop);
    if (due_us_ <= now) {
        go();
        return;
    }
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) {
            auto* c = static_cast<Client*>(t->data);
            c->fired_us_ = now_us(c->b_.loop);
            c->go();
        },
        (due_us_ - now + 999) / 1000, 0);
}

void Client::go()
{
    if (b_.stopping) {
        if (conn_ && expected_.empty())
            finish_conn();
        else if (!conn_ && !done) {
            done = true;
            b_.client_done();
        }
        return;
    }
    if (!b_.opt.hello) {
        queue_step();
        open();
        return;
    }
    while (static_cast<int>(expected_.size()) < b_.opt.pipeline)
        queue_step();
    send_pending();
}

void Client::on_eof()
{
    if (b_.opt.hello || !expected_.empty()) {
        fail("connection closed early");
        return;
    }
    finish_conn();
    if (!b_.stopping)
        after_reply();
}

void Client::finish_conn()
{
    Conn* c = conn_;
    conn_ = nullptr;
    c->owner = nullptr;
    connected_ = writing_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { std::unique_ptr<Conn> closed(static_cast<Conn*>(h->data)); });
    if (b_.stopping || b_.opt.hello) {
        done = true;
        b_.client_done();
    }
}

void Client::fail(const char* what)
{
    ++b_.stats.io_errors;
    if (b_.stats.io_errors <= 5)
        std::fprintf(stderr, "peerdex-bench: client %d: %s\n", id_, what);
    expected_.clear();
    batch_.clear();
    armed_ = false;
    if (conn_)
        finish_conn();
    if (!done) {
        done = true;
        b_.client_done();
    }
}

void FileClient::start()
{
    if (b_.stopping) {
        done = true;
        b_.client_done();
        return;
    }
    request_.clear();
    Encoder(request_).field("GET_FILE");
    Encoder(request_).field(b_.opt.get_file);
    in_body_ = false;
    got_ = size_ = 0;
    size_field_.clear();
    t0_ = now_us(b_.loop);
    auto tcp = std::make_unique<uv_tcp_t>();
    uv_tcp_init(b_.loop, tcp.get());
    tcp->data = this;
    tcp_ = tcp.release();  // freed in its close callback
    connect_.data = this;
    uv_tcp_connect(&connect_, tcp_, reinterpret_cast<sockaddr*>(&b_.addr), [](uv_connect_t* r, int st) {
        auto* self = static_cast<FileClient*>(r->data);
        if (st != 0) {
            self->finished(false, uv_strerror(st));
            return;
        }
        uv_buf_t out = uv_buf_init(self->request_.data(), static_cast<unsigned>(self->request_.size()));
        uv_write(&self->write_, reinterpret_cast<uv_stream_t*>(self->tcp_), &out, 1, nullptr);
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(self->tcp_),
            [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
                auto* me = static_cast<FileClient*>(h->data);
                *buf = uv_buf_init(me->buf_, sizeof me->buf_);
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                auto* me = static_cast<FileClient*>(s->data);
                if (n == UV_EOF)
                    me->finished(me->in_body_ && me->got_ == me->size_, "short download");
                else if (n < 0)
                    me->finished(false, uv_strerror(static_cast<int>(n)));
                else
                    me->on_data(buf->base, buf->base + n);
            });
    });
}

void FileClient::on_data(const char* p, const char* end)
{
    if (!in_body_) {
        // The code byte, then the size as a decimal field, then the bytes.
        if (!header_seen_ && p < end) {
            header_seen_ = true;
            if (*p++ != '\0') {
                finished(false, "the peer refused the file");
                return;
            }
        }
        while (p < end && !in_body_) {
            const char c = *p++;
            if (c != '\0' && size_field_.size() < 20) {
                size_field_.push_back(c);
                continue;
            }
            auto n = c == '\0' ? peerdex::parse_decimal(size_field_, UINT64_MAX / 2) : std::nullopt;
            if (!n) {
                finished(false, "bad size");
                return;
            }
            size_ = *n;
            in_body_ = true;
        }
        if (!in_body_)
            return;
    }
    got_ += static_cast<std::uint64_t>(end - p);
    b_.bytes += static_cast<std::uint64_t>(end - p);
    if (got_ > size_)
        finished(false, "more bytes than announced");
}

void FileClient::finished(bool ok, const char* why)
{
    if (!tcp_)
        return;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
             [](uv_handle_t* h) { std::unique_ptr<uv_tcp_t> gone(reinterpret_cast<uv_tcp_t*>(h)); });
    tcp_ = nullptr;
    header_seen_ = false;
    if (ok) {
        b_.stats.latency.record(now_us(b_.loop) - t0_);
        ++b_.stats.ops;
    } else {
        ++b_.stats.wrong;
        ++b_.stats.codes[std::string("GET_FILE: ") + why];
    }
    start();
}

void Bench::client_done()
{
    if (--running_ == 0)
        uv_stop(loop);
}

int Bench::run()
{
    loop = uv_default_loop();
    if (uv_ip4_addr(opt.host.c_str(), opt.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(opt.host.c_str(), opt.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
        std::fprintf(stderr, "peerdex-bench: -H wants a numeric address, got '%s'\n", opt.host.c_str());
        return 2;
    }
    const long rss_before = opt.pid ? rss_kib(opt.pid) : -1;
    if (opt.get_file.empty()) {
        for (int i = 0; i < opt.clients; ++i)
            clients_.push_back(std::make_unique<Client>(*this, i));
    } else {
        for (int i = 0; i < opt.clients; ++i)
            file_clients_.push_back(std::make_unique<FileClient>(*this));
    }
    running_ = opt.clients;
    started_ = now_us(loop);
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    if (!opt.fill_users) {
        uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Bench*>(t->data)->stopping = true; },
                       static_cast<std::uint64_t>(opt.seconds * 1000), 0);
    }
    for (auto& c : clients_)
        c->start();
    for (auto& c : file_clients_)
        c->start();
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto& c : clients_)
        c->close_timer();
    const double elapsed = static_cast<double>(now_us(loop) - started_) / 1e6;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_run(loop, UV_RUN_DEFAULT);

    const Histogram& h = stats.latency;
    if (!opt.get_file.empty()) {
        std::printf("mode=get_file clients=%d seconds=%.2f downloads=%" PRIu64 " downloads_per_s=%.1f"
                    " mib_per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64 " wrong=%" PRIu64 "\n",
                    opt.clients, elapsed, stats.ops, static_cast<double>(stats.ops) / elapsed,
                    static_cast<double>(bytes) / elapsed / (1 << 20), h.quantile(0.5), h.quantile(0.99), stats.wrong);
        for (const auto& [what, n] : stats.codes)
            std::printf("failed %s: %" PRIu64 "\n", what.c_str(), n);
        return stats.wrong == 0 ? 0 : 1;
    }
    std::printf("mode=%s clients=%d pipeline=%d rate=%.0f mix=%s files=%d seconds=%.2f ops=%" PRIu64
                " ops_per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
                " wrong=%" PRIu64 " io_errors=%" PRIu64 "\n",
                !opt.http.empty() ? "http" : opt.hello ? "hello" : "canonical", opt.clients, opt.pipeline, opt.rate,
                !opt.queries.empty() ? "search" : opt.fill_users ? "fill" : opt.light ? "light" : "full", opt.files, elapsed, stats.ops,
                static_cast<double>(stats.ops) / elapsed, h.quantile(0.5), h.quantile(0.99), h.quantile(0.999),
                h.max(), stats.wrong, stats.io_errors);
    for (const auto& [what, n] : stats.codes)
        std::printf("unexpected %s: %" PRIu64 "\n", what.c_str(), n);
    if (opt.pid) {
        const long rss_after = rss_kib(opt.pid);
        std::printf("tracker_rss_kib_before=%ld tracker_rss_kib_after=%ld", rss_before, rss_after);
        if (opt.fill_users && rss_after > 0) {
            const double users = static_cast<double>(users_filled);
            std::printf(" users=%" PRIu64 " publications=%" PRIu64 " bytes_per_user_and_its_publications=%.0f",
                        users_filled, users_filled * static_cast<std::uint64_t>(opt.files),
                        static_cast<double>(rss_after - rss_before) * 1024 / users);
        }
        std::printf("\n");
    }
    return stats.wrong == 0 && stats.io_errors == 0 ? 0 : 1;
}

void usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex-bench [options]\n"
                 "Drives a course-protocol tracker with virtual users and reports ops/s and latency.\n"
                 "\n"
                 "  -H, --host ADDR       tracker address, numeric (default 127.0.0.1)\n"
                 "  -p, --port PORT       tracker port (default 4000)\n"
                 "  -c, --clients N       concurrent virtual users (default 64)\n"
                 "  -d, --duration S      seconds to run (default 5)\n"
                 "      --hello           persistent HELLO sessions (peerdex trackers only);\n"
                 "                        default: one connection per operation, as the course\n"
                 "      --pipeline D      requests in flight per HELLO session (default 1)\n"
                 "      --rate R          open loop: R operations per second in all, each client on a\n"
                 "                        schedule; latency counts from the scheduled time\n"
                 "  -k, --files K         publications per user life (default 2)\n"
                 "      --light           REGISTER and UNREGISTER only\n"
                 "      --no-timestamp    send requests without the timestamp field\n"
                 "      --prefix P        user name prefix (default: unique per run)\n"
                 "      --fill N          memory scenario: register and connect N users with K files\n"
                 "                        each (HELLO sessions), keep them, and stop\n"
                 "      --pid PID         the tracker's pid, to report its RSS\n"
                 "      --search FILE     search mode (with --hello): each client registers and connects\n"
                 "                        a user, then sends SEARCHes (limit 100) of the queries in FILE,\n"
                 "                        one per line; only the SEARCHes are counted\n"
                 "      --get-file PATH   peer mode: -H/-p name a peer; every client downloads PATH\n"
                 "                        over and over (GET_FILE), checking each size\n"
                 "      --http PATH       HTTP mode: -H/-p name an HTTP server (a reference such as\n"
                 "                        nginx); each client GETs PATH over one keep-alive\n"
                 "                        connection, closed or open loop as for the tracker\n"
                 "  -h, --help            show this help\n");
}

}  // namespace

int main(int argc, char** argv)
{
    enum { opt_hello = 256, opt_pipeline, opt_light, opt_no_ts, opt_prefix, opt_fill, opt_pid, opt_rate, opt_get, opt_search,
           opt_http };
    static const option longs[] = {
        {"host", required_argument, nullptr, 'H'},       {"port", required_argument, nullptr, 'p'},
        {"clients", required_argument, nullptr, 'c'},    {"duration", required_argument, nullptr, 'd'},
        {"hello", no_argument, nullptr, opt_hello},      {"pipeline", required_argument, nullptr, opt_pipeline},
        {"files", required_argument, nullptr, 'k'},      {"light", no_argument, nullptr, opt_light},
        {"no-timestamp", no_argument, nullptr, opt_no_ts}, {"prefix", required_argument, nullptr, opt_prefix},
        {"fill", required_argument, nullptr, opt_fill},  {"pid", required_argument, nullptr, opt_pid},
        {"rate", required_argument, nullptr, opt_rate},
        {"get-file", required_argument, nullptr, opt_get},
        {"search", required_argument, nullptr, opt_search},
        {"http", required_argument, nullptr, opt_http},
        {"help", no_argument, nullptr, 'h'},             {nullptr, 0, nullptr, 0},
    };
    Options o;
    int c;
    auto number = [](const char* what, const char* v, std::uint64_t min, std::uint64_t max) {
        return peerdex::number_option("peerdex-bench", what, v, min, max);
    };
    while ((c = getopt_long(argc, argv, "H:p:c:d:k:h", longs, nullptr)) != -1) {
        switch (c) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = static_cast<std::uint16_t>(number("port", optarg, 1, 65535)); break;
        case 'c': o.clients = static_cast<int>(number("clients", optarg, 1, 100000)); break;
        case 'd': o.seconds = static_cast<double>(number("duration", optarg, 1, 86400)); break;
        case 'k': o.files = static_cast<int>(number("files", optarg, 0, 100000)); break;
        case opt_hello: o.hello = true; break;
        case opt_pipeline: o.pipeline = static_cast<int>(number("pipeline", optarg, 1, 100000)); break;
        case opt_light: o.light = true; break;
        case opt_no_ts: o.timestamps = false; break;
        case opt_prefix: o.prefix = optarg; break;
        case opt_fill: o.fill_users = number("fill", optarg, 1, UINT64_MAX); break;
        case opt_pid: o.pid = static_cast<int>(number("pid", optarg, 1, 1 << 30)); break;
        case opt_rate: o.rate = static_cast<double>(number("rate", optarg, 1, 100000000)); break;
        case opt_get: o.get_file = optarg; break;
        case opt_http:
            o.http = optarg;
            o.hello = true;  // one persistent connection per client, as a HELLO session
            break;
        case opt_search: {
            std::FILE* f = std::fopen(optarg, "r");
            if (!f) {
                std::fprintf(stderr, "peerdex-bench: --search %s: %s\n", optarg, std::strerror(errno));
                return 2;
            }
            char line[512];
            while (std::fgets(line, sizeof line, f)) {
                std::string q(line);
                while (!q.empty() && (q.back() == '\n' || q.back() == '\r'))
                    q.pop_back();
                if (!q.empty())
                    o.queries.push_back(q);
            }
            std::fclose(f);
            if (o.queries.empty()) {
                std::fprintf(stderr, "peerdex-bench: --search %s: no queries\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    // Unique among running processes. Fill names stay within 15 bytes, so that they live
    // inside their std::string and the RSS figure is the tracker's own overhead.
    if (o.prefix.empty())
        o.prefix = (o.fill_users ? "f" + std::to_string(uv_os_getpid() % 100000) : "b" + std::to_string(uv_os_getpid())) + "_";
    if (o.fill_users) {
        o.hello = true;
        o.pipeline = std::max(o.pipeline, 256);
        o.clients = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(o.clients), o.fill_users));
    }
    Bench bench(o);
    return bench.run();
}
