#include "download.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "files.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kBufferBytes = 256 * 1024;  // one read in flight, one write in flight
constexpr std::uint64_t kProgressMs = 200;
// Files up to 16 EiB announce at most 20 digits.
constexpr std::uint64_t kMaxSize = UINT64_MAX / 2;

}  // namespace

struct Download::State {
    uv_loop_t* loop;
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    uv_write_t write{};
    uv_timer_t timer{};
    uv_fs_t fs{};
    std::string request;
    std::string remote, local, temp;
    Done done;
    ReplyDecoder reply;
    bool header_done = false;
    std::uint64_t size = 0, received = 0, written = 0;
    uv_file file = -1;
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kBufferBytes);
    std::unique_ptr<char[]> pending = std::make_unique<char[]>(kBufferBytes);
    std::size_t buffered = 0;      // bytes in buf not yet handed to a write
    bool writing = false;
    bool reading = false;
    bool finished = false;
    int handles = 0;
    Result result = Result::failed;
    std::string why;
    std::uint64_t stall_ms;
    std::uint64_t last_progress = 0, started = 0, last_draw = 0;
    bool progress;

    void fail(const std::string& reason) { finish(Result::failed, reason); }
    void finish(Result r, const std::string& reason);
    void maybe_free();
    void on_data(const char* p, const char* end);
    void flush();
    void pump();
    void draw(bool last);
    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* out);
    static void on_read(uv_stream_t* sock, ssize_t n, const uv_buf_t* in);
};

void Download::State::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* out)
{
    auto* me = static_cast<State*>(h->data);
    *out = uv_buf_init(me->buf.get() + me->buffered, static_cast<unsigned>(kBufferBytes - me->buffered));
}

void Download::State::on_read(uv_stream_t* sock, ssize_t n, const uv_buf_t* in)
{
    auto* me = static_cast<State*>(sock->data);
    if (me->finished)
        return;
    if (n == UV_EOF) {
        if (!me->header_done) {
            if (me->reply.eof() != ReplyDecoder::Status::done || me->reply.code() == 0)
                me->fail("the peer closed the connection before the size");
            else
                me->finish(me->reply.code() == 1 ? Result::not_found : Result::failed,
                           "the peer refused (code " + std::to_string(me->reply.code()) + ")");
        } else if (me->received < me->size) {
            me->fail("the peer closed the connection after " + std::to_string(me->received) + " of " +
                     std::to_string(me->size) + " bytes");
        }
        return;
    }
    if (n < 0) {
        me->fail(std::string("connection to the peer: ") + uv_strerror(static_cast<int>(n)));
        return;
    }
    me->on_data(in->base, in->base + n);
}

void Download::start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path, std::string local_path,
                     std::uint64_t stall_ms, bool progress, Done done)
{
    auto s = std::make_unique<State>();
    s->loop = loop;
    s->remote = std::move(remote_path);
    s->local = std::move(local_path);
    s->done = std::move(done);
    s->stall_ms = stall_ms;
    s->progress = progress;
    s->started = s->last_progress = uv_now(loop);
    Encoder(s->request).field("GET_FILE");
    Encoder(s->request).field(s->remote);
    s->reply.expect_fields(1);
    uv_tcp_init(loop, &s->tcp);
    uv_timer_init(loop, &s->timer);
    s->handles = 2;
    s->tcp.data = s->timer.data = s->connect.data = s->write.data = s->fs.data = s.get();
    State* st = s.release();  // freed once every handle has closed
    uv_timer_start(&st->timer, [](uv_timer_t* t) {
        auto* self = static_cast<State*>(t->data);
        if (uv_now(self->loop) - self->last_progress >= self->stall_ms)
            self->fail("the peer stalled");
        else if (self->progress)
            self->draw(false);
    }, kProgressMs, kProgressMs);
    const int rc = uv_tcp_connect(&st->connect, &st->tcp, reinterpret_cast<const sockaddr*>(&peer),
                                  [](uv_connect_t* req, int status) {
        auto* self = static_cast<State*>(req->data);
        if (self->finished)
            return;
        if (status != 0) {
            self->fail(std::string("cannot connect to the peer: ") + uv_strerror(status));
            return;
        }
        uv_buf_t b = uv_buf_init(self->request.data(), static_cast<unsigned>(self->request.size()));
        uv_write(&self->write, reinterpret_cast<uv_stream_t*>(&self->tcp), &b, 1, nullptr);
        self->reading = true;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp), State::on_alloc, State::on_read);
    });
    if (rc != 0)
        st->fail(std::string("cannot connect to the peer: ") + uv_strerror(rc));
}

void Download::State::on_data(const char* p, const char* end)
{
    last_progress = uv_now(loop);
    if (!header_done) {
        const auto stt = reply.feed(p, end);
        if (stt == ReplyDecoder::Status::need_more)
            return;
        if (stt == ReplyDecoder::Status::error) {
            fail("malformed reply from the peer: " + reply.error());
            return;
        }
        if (reply.code() != 0) {
            finish(reply.code() == 1 ? Result::not_found : Result::failed,
                   "the peer refused (code " + std::to_string(reply.code()) + ")");
            return;
        }
        auto n = parse_decimal(reply.fields()[0], kMaxSize);
        if (!n) {
            fail("the peer sent an invalid size");
            return;
        }
        size = *n;
        header_done = true;
        // Beside the target, so that the final rename stays on one file system.
        temp = local + ".peerdex-XXXXXX";
        uv_fs_t req;
        const int fd = uv_fs_mkstemp(nullptr, &req, temp.c_str(), nullptr);
        if (fd < 0) {
            uv_fs_req_cleanup(&req);
            temp.clear();
            fail("cannot create a file beside " + local + ": " + uv_strerror(fd));
            return;
        }
        temp = req.path;
        uv_fs_req_cleanup(&req);
        file = fd;
        // Move the body bytes that came with the header to the start of buf.
        const std::size_t rest = static_cast<std::size_t>(end - p);
        std::memmove(buf.get(), p, rest);
        buffered = 0;
        p = buf.get();
        end = p + rest;
    }
    const std::size_t n = static_cast<std::size_t>(end - p);
    if (received + n > size) {
        fail("the peer sent more than the " + std::to_string(size) + " bytes it announced");
        return;
    }
    received += n;
    if (p != buf.get() + buffered)
        std::memmove(buf.get() + buffered, p, n);
    buffered += n;
    pump();
}

// Hands buffered bytes to the file; stops reading while the buffer is full.
void Download::State::pump()
{
    if (!writing && buffered > 0) {
        std::swap(buf, pending);
        const std::size_t n = buffered;
        buffered = 0;
        writing = true;
        uv_buf_t b = uv_buf_init(pending.get(), static_cast<unsigned>(n));
        uv_fs_write(loop, &fs, file, &b, 1, static_cast<std::int64_t>(written), [](uv_fs_t* req) {
            auto* me = static_cast<State*>(req->data);
            const auto r = req->result;
            uv_fs_req_cleanup(req);
            me->writing = false;
            if (r < 0) {
                me->fail(std::string("cannot write ") + me->temp + ": " + uv_strerror(static_cast<int>(r)));
                return;
            }
            me->written += static_cast<std::uint64_t>(r);
            if (me->finished) {
                me->maybe_free();
                return;
            }
            me->pump();
        });
    }
    const bool full = buffered == kBufferBytes;
    if (full && reading) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
        reading = false;
    } else if (!full && !reading && !finished) {
        reading = true;  // uv_read_stop forgot the callbacks: give them again
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp), on_alloc, on_read);
    }
    if (header_done && written == size && !writing && buffered == 0)
        finish(Result::ok, "");
}

void Download::State::draw(bool last)
{
    std::fprintf(stderr, "\r%s  %s", progress_line(remote, written, size, uv_now(loop) - started).c_str(),
                 last ? "\n" : "");
}

void Download::State::finish(Result r, const std::string& reason)
{
    if (finished)
        return;
    finished = true;
    result = r;
    why = reason;
    if (r == Result::ok) {
        uv_fs_t req;
        int rc = uv_fs_close(nullptr, &req, file, nullptr);
        uv_fs_req_cleanup(&req);
        file = -1;
        // mkstemp made it private; the finished file gets the usual 0666 & ~umask.
        static const mode_t kUmask = [] {
            const mode_t m = ::umask(0);
            ::umask(m);
            return m;
        }();
        if (rc == 0)
            rc = uv_fs_chmod(nullptr, &req, temp.c_str(), static_cast<int>(0666 & ~kUmask), nullptr);
        uv_fs_req_cleanup(&req);
        if (rc == 0)
            rc = uv_fs_rename(nullptr, &req, temp.c_str(), local.c_str(), nullptr);
        uv_fs_req_cleanup(&req);
        if (rc != 0) {
            result = Result::failed;
            why = "cannot move the download to " + local + ": " + uv_strerror(rc);
        } else {
            temp.clear();
        }
        if (progress)
            draw(true);
    }
    if (reading)
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    reading = false;
    auto on_close = [](uv_handle_t* h) {
        auto* me = static_cast<State*>(h->data);
        --me->handles;
        me->maybe_free();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_close);
}

// Frees the download once both handles have closed and no file write is in flight.
void Download::State::maybe_free()
{
    if (handles > 0 || writing)
        return;
    if (file >= 0) {
        uv_fs_t req;
        uv_fs_close(nullptr, &req, file, nullptr);
        uv_fs_req_cleanup(&req);
    }
    if (!temp.empty())
        ::unlink(temp.c_str());  // a partial download never remains
    if (progress && result != Result::ok && header_done)
        std::fputc('\n', stderr);
    std::unique_ptr<State> self(this);
    Done d = std::move(done);
    d(result, why);
}

}  // namespace peerdex
