#include "download.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "exchange.hh"
#include "files.hh"
#include "pending_file.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kBufferBytes = 256 * 1024;  // one read in flight, one write in flight
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

struct Download::State final : Exchange {
    std::string remote, local;
    Done cb;
    bool progress;
    bool header_done = false;
    std::uint64_t size = 0, received_bytes = 0, written = 0;
    int dir = -1;     // the target's directory
    PendingFile out;  // the download, named only when complete
    uv_fs_t fs{};
    uv_work_t commit{};
    int commit_err = 0;
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kBufferBytes);
    std::unique_ptr<char[]> pending = std::make_unique<char[]>(kBufferBytes);
    std::size_t buffered = 0;  // bytes in buf not yet handed to a write
    bool writing = false;
    Result result = Result::failed;

    State(uv_loop_t* l, std::uint64_t stall_ms) : Exchange(l, stall_ms, "the peer") {}

    void end(Result r, const std::string& reason)
    {
        if (finished)
            return;
        result = r;
        finish(r == Result::ok ? 0 : -1, reason);
    }
    // Everything arrives in buf: the header is decoded from it, the body stays in place.
    uv_buf_t buffer() override
    {
        return uv_buf_init(buf.get() + buffered, static_cast<unsigned>(kBufferBytes - buffered));
    }
    void received(const char* p, const char* end) override;
    void closed() override;
    void tick() override
    {
        if (progress)
            draw(false);
    }
    void done() override;
    void pump();
    void complete();
    void draw(bool last)
    {
        std::fputs(progress_redraw(progress_line(remote, written, size, uv_now(loop) - started), last).c_str(),
                   stderr);
    }
};

void Download::State::closed()
{
    if (!header_done) {
        if (reply.eof() != ReplyDecoder::Status::done || reply.code() == 0)
            end(Result::failed, "the peer closed the connection before the size");
        else
            end(reply.code() == 1 ? Result::not_found : Result::failed, refusal(reply.code()));
    } else if (received_bytes < size) {
        end(Result::failed, "the peer closed the connection after " + std::to_string(received_bytes) + " of " +
                                std::to_string(size) + " bytes");
    }
}

void Download::State::received(const char* p, const char* end_)
{
    if (!header_done) {
        const auto st = reply.feed(p, end_);
        if (st == ReplyDecoder::Status::need_more)
            return;
        if (st == ReplyDecoder::Status::error) {
            end(Result::failed, "malformed reply from the peer: " + reply.error());
            return;
        }
        if (reply.code() != 0) {
            end(reply.code() == 1 ? Result::not_found : Result::failed, refusal(reply.code()));
            return;
        }
        auto n = parse_decimal(reply.fields()[0], kMaxSize);
        if (!n) {
            end(Result::failed, "the peer sent an invalid size");
            return;
        }
        size = *n;
        header_done = true;
        // In the target's directory, so that naming it at the end is one rename.
        const auto [dir_name, base] = split_path(local);
        dir = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const int err = dir < 0 ? errno : out.open(dir, kTempPrefix);
        if (err != 0) {
            end(Result::failed, "cannot create a file in " + dir_name + ": " + std::strerror(err));
            return;
        }
        // The body bytes that came with the header move to the start of buf.
        const std::size_t rest = static_cast<std::size_t>(end_ - p);
        std::memmove(buf.get(), p, rest);
        p = buf.get();
        end_ = p + rest;
    }
    const std::size_t n = static_cast<std::size_t>(end_ - p);
    if (received_bytes + n > size) {
        end(Result::failed, "the peer sent more than the " + std::to_string(size) + " bytes it announced");
        return;
    }
    received_bytes += n;
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
        ++busy;
        fs.data = this;
        uv_buf_t b = uv_buf_init(pending.get(), static_cast<unsigned>(n));
        uv_fs_write(loop, &fs, out.fd(), &b, 1, static_cast<std::int64_t>(written), [](uv_fs_t* req) {
            auto* me = static_cast<State*>(req->data);
            const auto r = req->result;
            uv_fs_req_cleanup(req);
            me->writing = false;
            --me->busy;
            if (me->finished) {
                me->maybe_done();
                return;
            }
            if (r < 0) {
                me->end(Result::failed,
                        "cannot write the download of " + me->local + ": " + uv_strerror(static_cast<int>(r)));
                return;
            }
            me->written += static_cast<std::uint64_t>(r);
            me->pump();
        });
    }
    set_reading(buffered < kBufferBytes);
    if (header_done && written == size && !writing && buffered == 0)
        complete();
}

// Synced and named on the thread pool: a large file's fsync must not stall the loop.
void Download::State::complete()
{
    ++busy;
    commit.data = this;
    uv_queue_work(
        loop, &commit,
        [](uv_work_t* w) {
            auto* me = static_cast<State*>(w->data);
            me->commit_err = me->out.commit(split_path(me->local).second);
        },
        [](uv_work_t* w, int) {
            auto* me = static_cast<State*>(w->data);
            --me->busy;
            if (me->commit_err != 0) {
                me->result = Result::failed;
                me->why = "cannot move the download to " + me->local + ": " + std::strerror(me->commit_err);
            } else if (me->progress) {
                me->draw(true);
            }
            me->maybe_done();
        });
    end(Result::ok, "");
}

void Download::State::done()
{
    out.discard();  // a partial download never remains
    if (dir >= 0)
        ::close(dir);
    if (progress && result != Result::ok && header_done)
        std::fputc('\n', stderr);
    std::unique_ptr<State> self(this);
    Done d = std::move(cb);
    d(result, why);
}

Download::State* Download::start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path,
                                 std::string local_path, std::uint64_t stall_ms, bool progress, Done done)
{
    State* s = std::make_unique<State>(loop, stall_ms).release();  // deletes itself in done()
    s->remote = std::move(remote_path);
    s->local = std::move(local_path);
    s->cb = std::move(done);
    s->progress = progress;
    Encoder(s->request).field("GET_FILE");
    Encoder(s->request).field(s->remote);
    s->reply.expect_fields(1);
    s->go(peer);
    return s;
}

std::string Download::target(const std::string& remote, const std::string& local, std::string& why)
{
    struct stat st {};
    if (!local.empty() && !(::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
        return local;
    const std::string base = base_name(remote);
    if (base.empty() || base == "." || base == "..") {
        why = "'" + remote + "' gives no local file name; name the local file";
        return "";
    }
    return local.empty() ? base : (local.back() == '/' ? local : local + "/") + base;
}

void Download::cancel(State* s)
{
    s->end(Result::cancelled, "interrupted");
}

}  // namespace peerdex
