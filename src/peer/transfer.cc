#include "transfer.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "reply.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kChunkBytes = 256 * 1024;  // two: one read from the file while one is sent
constexpr std::uint64_t kTickMs = 200;

// A connection with a timer, done once: both handles are closed before the owner's
// callback runs, so the callback may end the loop.
struct Exchange {
    uv_loop_t* loop;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_connect_t connect{};
    ReplyDecoder reply;
    std::string request;
    uv_write_t request_write{};
    std::uint64_t limit_ms;  // stall or overall timeout
    std::uint64_t last_progress = 0, started = 0;
    int handles = 2;
    int busy = 0;  // file operations in flight
    bool finished = false;
    int code = -1;
    std::string why;

    Exchange(uv_loop_t* l, std::uint64_t limit) : loop(l), limit_ms(limit)
    {
        uv_tcp_init(loop, &tcp);
        uv_timer_init(loop, &timer);
        tcp.data = timer.data = connect.data = request_write.data = this;
        started = last_progress = uv_now(loop);
    }
    virtual ~Exchange() = default;
    virtual void connected() = 0;
    virtual void tick() {}
    virtual void replied() = 0;  // the reply is complete (code() set)
    virtual void done() = 0;     // after finish, once everything is closed

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }

    void go(const sockaddr_storage& to)
    {
        uv_timer_start(&timer, [](uv_timer_t* t) {
            auto* x = static_cast<Exchange*>(t->data);
            if (uv_now(x->loop) - x->last_progress >= x->limit_ms)
                x->finish(-1, "the server stopped answering (no progress for " +
                                  std::to_string(x->limit_ms / 1000) + " s)");
            else
                x->tick();
        }, kTickMs, kTickMs);
        const int rc = uv_tcp_connect(&connect, &tcp, reinterpret_cast<const sockaddr*>(&to),
                                      [](uv_connect_t* req, int status) {
            auto* x = static_cast<Exchange*>(req->data);
            if (x->finished)
                return;
            if (status != 0) {
                x->finish(-1, std::string("cannot connect: ") + uv_strerror(status));
                return;
            }
            x->last_progress = uv_now(x->loop);
            uv_buf_t b = uv_buf_init(x->request.data(), static_cast<unsigned>(x->request.size()));
            uv_write(&x->request_write, x->stream(), &b, 1, nullptr);
            uv_read_start(x->stream(), on_alloc, on_read);
            x->connected();
        });
        if (rc != 0)
            finish(-1, std::string("cannot connect: ") + uv_strerror(rc));
    }

    static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* b)
    {
        static char in[64 * 1024];  // one loop thread; the decoder copies what it keeps
        *b = uv_buf_init(in, sizeof in);
    }
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b)
    {
        auto* x = static_cast<Exchange*>(s->data);
        if (x->finished)
            return;
        if (n == UV_EOF) {
            if (x->reply.eof() == ReplyDecoder::Status::done)
                x->replied();
            else
                x->finish(-1, "the server closed the connection without a complete reply");
            return;
        }
        if (n < 0) {
            x->finish(-1, std::string("connection to the server: ") + uv_strerror(static_cast<int>(n)));
            return;
        }
        x->last_progress = uv_now(x->loop);
        const char* p = b->base;
        switch (x->reply.feed(p, b->base + n)) {
        case ReplyDecoder::Status::need_more:
            return;
        case ReplyDecoder::Status::error:
            x->finish(-1, "malformed reply from the server: " + x->reply.error());
            return;
        case ReplyDecoder::Status::done:
            x->replied();
            return;
        }
    }

    void finish(int c, const std::string& reason)
    {
        if (finished)
            return;
        finished = true;
        code = c;
        why = reason;
        auto on_close = [](uv_handle_t* h) {
            auto* x = static_cast<Exchange*>(h->data);
            --x->handles;
            x->maybe_done();
        };
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_close);
    }
    void maybe_done()
    {
        if (handles == 0 && busy == 0)
            done();  // deletes this
    }
};

struct Upload final : Exchange {
    UploadDone cb;
    std::string name;
    bool progress;
    uv_file file = -1;
    std::uint64_t size = 0, read_off = 0, sent = 0;
    struct Chunk {
        std::unique_ptr<char[]> data = std::make_unique<char[]>(kChunkBytes);
        std::size_t len = 0;
        uv_fs_t fs{};
        uv_write_t write{};
    };
    Chunk chunks[2];
    int ready = -1;    // the chunk read and waiting for the socket
    int sending = -1;  // the chunk the socket is sending

    Upload(uv_loop_t* l, std::uint64_t stall) : Exchange(l, stall) {}

    void connected() override { pump(); }  // the first file read starts here
    void tick() override
    {
        if (progress)
            draw(false);
    }
    void draw(bool last)
    {
        std::fputs(progress_redraw(progress_line(name, sent, size, uv_now(loop) - started), last).c_str(), stderr);
    }

    // One chunk read from the file while the other is sent.
    void pump()
    {
        if (finished)
            return;
        if (ready >= 0 && sending < 0) {
            Chunk& c = chunks[ready];
            sending = ready;
            ready = -1;
            c.write.data = this;
            uv_buf_t b = uv_buf_init(c.data.get(), static_cast<unsigned>(c.len));
            uv_write(&c.write, stream(), &b, 1, [](uv_write_t* w, int status) {
                auto* u = static_cast<Upload*>(w->data);
                const Chunk& done = u->chunks[u->sending];
                u->sending = -1;
                if (u->finished)
                    return;
                if (status < 0) {
                    // The server may have refused and closed: its code, if it came, wins.
                    u->finish(-1, std::string("connection to the server: ") + uv_strerror(status));
                    return;
                }
                u->sent += done.len;
                u->last_progress = uv_now(u->loop);
                u->pump();
            });
        }
        if (busy == 0 && ready < 0 && read_off < size) {
            Chunk& c = chunks[sending == 0 ? 1 : 0];  // the one not being sent
            ++busy;
            c.fs.data = this;
            uv_buf_t b = uv_buf_init(c.data.get(),
                                     static_cast<unsigned>(std::min<std::uint64_t>(kChunkBytes, size - read_off)));
            uv_fs_read(loop, &c.fs, file, &b, 1, static_cast<std::int64_t>(read_off), [](uv_fs_t* req) {
                auto* u = static_cast<Upload*>(req->data);
                const auto n = req->result;
                uv_fs_req_cleanup(req);
                --u->busy;
                if (u->finished) {
                    u->maybe_done();
                    return;
                }
                if (n <= 0) {
                    u->finish(-1, n < 0 ? std::string("cannot read the file: ") + uv_strerror(static_cast<int>(n))
                                        : "the file shrank while it was sent");
                    return;
                }
                const int idx = &u->chunks[0].fs == req ? 0 : 1;
                u->chunks[idx].len = static_cast<std::size_t>(n);
                u->read_off += static_cast<std::uint64_t>(n);
                u->ready = idx;
                u->pump();
            });
        }
    }

    void replied() override
    {
        if (reply.code() == 0 && sent < size) {
            finish(-1, "the server answered before the whole file was sent");
            return;
        }
        // The name passed the same rule before it was sent, so a 01 means no uploads;
        // a 02 before the last byte is the size, after it the server's disk.
        const int c = reply.code();
        finish(c, c == 0   ? ""
                  : c == 1 ? "the server does not accept uploads (it is read-only, or a user's peer)"
                  : sent < size
                      ? "the server refused the file's size (above its --max-upload or its free disk space)"
                      : "the server received the file but could not store it (a write or sync failed there)");
    }
    void done() override
    {
        if (progress && code == 0)
            draw(true);
        else if (progress)
            std::fputc('\n', stderr);
        if (file >= 0)
            ::close(file);
        std::unique_ptr<Upload> self(this);
        UploadDone d = std::move(cb);
        d(code, why);
    }
};

struct Lister final : Exchange {
    ListDone cb;
    explicit Lister(uv_loop_t* l, std::uint64_t timeout) : Exchange(l, timeout) {}
    void connected() override {}
    void replied() override
    {
        finish(reply.code(), reply.code() == 0 ? "" : "the server could not list its files");
    }
    void done() override
    {
        std::vector<FileEntry> files;
        const auto& f = reply.fields();
        for (std::size_t i = 0; code == 0 && i + 3 <= f.size(); i += 3) {
            const auto size = parse_decimal(f[i + 1], UINT64_MAX);
            const auto mtime = parse_decimal(f[i + 2], INT64_MAX);
            if (!size || !mtime) {
                code = -1;
                why = "malformed reply from the server: a size or date is not a number";
                files.clear();
                break;
            }
            files.push_back({f[i], *size, static_cast<std::int64_t>(*mtime)});
        }
        std::unique_ptr<Lister> self(this);
        ListDone d = std::move(cb);
        d(code, std::move(files), why);
    }
};

}  // namespace

void start_upload(uv_loop_t* loop, const sockaddr_storage& server, const std::string& local, const std::string& name,
                  std::uint64_t stall_ms, bool progress, UploadDone done)
{
    const int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const std::string why = fd < 0 ? std::strerror(errno) : "not a regular file";
        if (fd >= 0)
            ::close(fd);
        done(-1, "cannot upload " + local + ": " + why);
        return;
    }
    auto* u = new Upload(loop, stall_ms);  // deletes itself in done()
    u->cb = std::move(done);
    u->name = name;
    u->progress = progress;
    u->file = fd;
    u->size = static_cast<std::uint64_t>(st.st_size);
    Encoder e(u->request);
    e.field("PUT_FILE");
    e.field(name);
    e.number(u->size);
    u->reply.expect_code_only();
    u->go(server);
}

void start_list(uv_loop_t* loop, const sockaddr_storage& server, std::uint64_t timeout_ms, ListDone done)
{
    auto* l = new Lister(loop, timeout_ms);  // deletes itself in done()
    l->cb = std::move(done);
    Encoder(l->request).field("LIST_FILES");
    l->reply.expect_list(3);
    l->go(server);
}

}  // namespace peerdex
