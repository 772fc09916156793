#include "transfer.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "exchange.hh"
#include "files.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kChunkBytes = 256 * 1024;  // two: one read from the file while one is sent

struct Upload final : Exchange {
    UploadDone cb;
    std::string name;
    bool progress;
    uv_file file = -1;
    std::uint64_t size = 0, read_off = 0, sent = 0;
    struct Chunk {
        std::unique_ptr<char[]> data = new_buffer(kChunkBytes);
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
                    u->finish(-1, std::string("connection to ") + u->who + ": " + uv_strerror(status));
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
    Upload* u = std::make_unique<Upload>(loop, stall_ms).release();  // deletes itself in done()
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
    Lister* l = std::make_unique<Lister>(loop, timeout_ms).release();  // deletes itself in done()
    l->cb = std::move(done);
    Encoder(l->request).field("LIST_FILES");
    l->reply.expect_list(3);
    l->go(server);
}

}  // namespace peerdex
