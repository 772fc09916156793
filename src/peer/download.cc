#include "download.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "files.hh"
#include "pending_file.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kBufferBytes = 256 * 1024;  // one read in flight, one write in flight
constexpr std::uint64_t kProgressMs = 200;
// Files up to 16 EiB announce at most 20 digits.
constexpr std::uint64_t kMaxSize = UINT64_MAX / 2;
constexpr std::string_view kTempPrefix = ".peerdex-download-";

std::string refusal(int code)
{
    return code == 1 ? "the peer has no such file, or does not share it"
                     : "the peer could not send the file (an error on its side)";
}

// "dir/name" → ("dir", "name"); "name" → (".", "name").
std::pair<std::string, std::string> split_path(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return {".", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

struct Download::State {
    uv_loop_t* loop;
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    uv_write_t write{};
    uv_timer_t timer{};
    uv_fs_t fs{};
    std::string request;
    std::string remote, local;
    Done done;
    ReplyDecoder reply;
    bool header_done = false;
    std::uint64_t size = 0, received = 0, written = 0;
    int dir = -1;      // the target's directory
    PendingFile out;   // the download, named only when complete
    uv_work_t commit{};
    int commit_err = 0;
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kBufferBytes);
    std::unique_ptr<char[]> pending = std::make_unique<char[]>(kBufferBytes);
    std::size_t buffered = 0;      // bytes in buf not yet handed to a write
    bool writing = false;
    bool committing = false;
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
                me->finish(me->reply.code() == 1 ? Result::not_found : Result::failed, refusal(me->reply.code()));
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

Download::State* Download::start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path, std::string local_path,
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
    return st;
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
            finish(reply.code() == 1 ? Result::not_found : Result::failed, refusal(reply.code()));
            return;
        }
        auto n = parse_decimal(reply.fields()[0], kMaxSize);
        if (!n) {
            fail("the peer sent an invalid size");
            return;
        }
        size = *n;
        header_done = true;
        // In the target's directory, so that naming it at the end is one rename.
        const auto [dir_name, base] = split_path(local);
        dir = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const int err = dir < 0 ? errno : out.open(dir, kTempPrefix);
        if (err != 0) {
            fail("cannot create a file in " + dir_name + ": " + std::strerror(err));
            return;
        }
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
        uv_fs_write(loop, &fs, out.fd(), &b, 1, static_cast<std::int64_t>(written), [](uv_fs_t* req) {
            auto* me = static_cast<State*>(req->data);
            const auto r = req->result;
            uv_fs_req_cleanup(req);
            me->writing = false;
            if (r < 0) {
                me->fail("cannot write the download of " + me->local + ": " + uv_strerror(static_cast<int>(r)));
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
    std::fputs(progress_redraw(progress_line(remote, written, size, uv_now(loop) - started), last).c_str(), stderr);
}

void Download::State::finish(Result r, const std::string& reason)
{
    if (finished)
        return;
    finished = true;
    result = r;
    why = reason;
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
    if (r != Result::ok)
        return;
    // Synced and named on the thread pool: a large file's fsync must not stall the loop.
    committing = true;
    commit.data = this;
    uv_queue_work(
        loop, &commit,
        [](uv_work_t* w) {
            auto* me = static_cast<State*>(w->data);
            me->commit_err = me->out.commit(split_path(me->local).second);
        },
        [](uv_work_t* w, int) {
            auto* me = static_cast<State*>(w->data);
            me->committing = false;
            if (me->commit_err != 0) {
                me->result = Result::failed;
                me->why = "cannot move the download to " + me->local + ": " + std::strerror(me->commit_err);
            } else if (me->progress) {
                me->draw(true);
            }
            me->maybe_free();
        });
}

std::string Download::target(const std::string& remote, const std::string& local, std::string& why)
{
    struct stat st {};
    if (!local.empty() && !(::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
        return local;
    std::string r = remote;
    while (r.size() > 1 && r.back() == '/')
        r.pop_back();
    const std::string base = split_path(r).second;
    if (base.empty() || base == "." || base == "..") {
        why = "'" + remote + "' gives no local file name; name the local file";
        return "";
    }
    return local.empty() ? base : (local.back() == '/' ? local : local + "/") + base;
}

void Download::cancel(State* s)
{
    s->fail("interrupted");
}

// Frees the download once both handles have closed and no file write is in flight.
void Download::State::maybe_free()
{
    if (handles > 0 || writing || committing)
        return;
    out.discard();  // a partial download never remains
    if (dir >= 0)
        ::close(dir);
    if (progress && result != Result::ok && header_done)
        std::fputc('\n', stderr);
    std::unique_ptr<State> self(this);
    Done d = std::move(done);
    d(result, why);
}

}  // namespace peerdex
