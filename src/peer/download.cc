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
#ifdef PEERDEX_CONTENT_IDS
#include "content_tree.hh"
#include "partial_file.hh"
#endif

namespace peerdex {

namespace {
constexpr std::size_t kBufferBytes = 256 * 1024;  // one read in flight, one write in flight
// Files up to 16 EiB announce at most 20 digits.
constexpr std::uint64_t kMaxSize = UINT64_MAX / 2;
constexpr std::string_view kTempPrefix = ".peerdex-download-";
// How long a peer may take to start answering a transfer: its upload slots may all be
// taken (peerdex(1), --upload-slots), or it may be hashing the file for its tree.
constexpr std::uint64_t kQueuedMs = 10 * 60 * 1000;

std::string refusal(const std::string& peer, int code)
{
    return code == 1 ? peer + " has no such file, or does not share it"
                     : peer + " could not send the file (an error on its side)";
}

std::string bytes_text(std::uint64_t n)
{
    return std::to_string(n) + " bytes";
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

#ifdef PEERDEX_CONTENT_IDS
// GET_TREE: `00 size· id· count·` then count leaf hashes of 32 bytes (peerdex-protocol(7),
// FILE RANGES). The tree must be whole and consistent: count leaves for that size, whose
// root is the id.
struct TreeFetch final : Exchange {
    std::function<void(TreeFetch&)> then;
    ContentTree tree;
    std::string id;
    bool head_done = false;
    // Closed, answered 2, or answered something that is not a tree: no trees there.
    bool course_peer = false;
    std::size_t want = 0;      // leaf bytes still to come
    std::string leaves;

    TreeFetch(uv_loop_t* l, std::uint64_t stall_ms, const char* peer) : Exchange(l, stall_ms, peer) {}

    void received(const char* p, const char* end) override
    {
        if (!head_done) {
            const auto st = reply.feed(p, end);
            if (st == ReplyDecoder::Status::need_more)
                return;
            if (st == ReplyDecoder::Status::error) {
                // A course peer that answers any request as GET_FILE looks like this too.
                course_peer = true;
                finish(-1, std::string("malformed tree from ") + who + ": " + reply.error());
                return;
            }
            if (reply.code() != 0) {
                course_peer = reply.code() != 1;
                finish(reply.code(), refusal(who, reply.code()));
                return;
            }
            const auto size = parse_decimal(reply.fields()[0], UINT64_MAX / 2);
            const auto count = parse_decimal(reply.fields()[2], kMaxLeaves);
            if (!size || !count || *count != leaf_count(*size) || !parse_content_id(reply.fields()[1], tree.root)) {
                course_peer = true;
                finish(-1, std::string(who) + " sent a malformed hash tree");
                return;
            }
            tree.size = *size;
            id = content_id_text(tree.root);
            want = static_cast<std::size_t>(*count) * sizeof(Digest);
            leaves.reserve(want);
            head_done = true;
        }
        const auto n = std::min<std::size_t>(static_cast<std::size_t>(end - p), want - leaves.size());
        leaves.append(p, n);
        if (leaves.size() < want)
            return;
        tree.leaves.resize(want / sizeof(Digest));
        std::memcpy(tree.leaves.data(), leaves.data(), want);
        leaves.clear();
        leaves.shrink_to_fit();
        TreeHasher h;
        if (h.root(tree.leaves) != tree.root) {
            finish(-1, std::string(who) + " sent a hash tree whose leaves do not give its id");
            return;
        }
        // No byte will check the leaf of an empty file: the tree itself must be that of one.
        if (tree.size == 0 && tree.leaves[0] != h.leaf(nullptr, 0)) {
            finish(-1, std::string(who) + " sent the hash tree of a non-empty file for an empty one");
            return;
        }
        finish(0, "");
    }
    void stalled() override
    {
        // Silent on an operation it does not know: a course peer that neither answers nor
        // closes. (With an id to check, the wait is long and a stall is a failure.)
        course_peer = !got_byte;
        Exchange::stalled();
    }
    void closed() override
    {
        if (!head_done && reply.eof() == ReplyDecoder::Status::done && reply.code() != 0) {
            course_peer = reply.code() != 1;
            finish(reply.code(), refusal(who, reply.code()));
            return;
        }
        course_peer = !head_done;  // closed on an operation it does not know, or its GET_FILE answer
        finish(-1, std::string(who) + " closed the connection before the whole hash tree");
    }
    void done() override
    {
        std::unique_ptr<TreeFetch> self(this);
        then(*this);
    }
};
#endif

struct Download::State final : Exchange {
    std::string remote, local, peer;
    DownloadOptions opt;
    Done cb;
    sockaddr_storage addr{};
    bool header_done = false;
    std::uint64_t size = 0, received_bytes = 0, written = 0;
    int dir = -1;     // the target's directory
    PendingFile out;  // unverified: the download, named only when complete
    uv_fs_t fs{};
    uv_work_t work{};
    int commit_err = 0;
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kBufferBytes);
    std::unique_ptr<char[]> pending = std::make_unique<char[]>(kBufferBytes);
    std::size_t buffered = 0;  // bytes in buf not yet handed to a write
    bool writing = false;
    bool cancelled = false;
    Result result = Result::failed;
    DownloadInfo info;
#ifdef PEERDEX_CONTENT_IDS
    TreeFetch* probe = nullptr;  // the GET_TREE under way
    ContentTree tree;
    PartialFile partial;
    PartialFile::Write last_write = PartialFile::Write::ok;
    std::uint64_t first = 0;  // where the GET_RANGE starts (the verified bytes already here)
#endif

    State(uv_loop_t* l, std::uint64_t stall_ms, std::string who)
        : Exchange(l, stall_ms, "the peer"), peer(std::move(who))
    {
        Exchange::who = peer.c_str();
    }

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
        if (opt.progress)
            draw(false);
    }
    void done() override;
    void pump();
    void complete();
    void plain();
    void dir_closed_done();  // the end: frees this, then calls back
    void draw(bool last)
    {
        std::fputs(progress_redraw(progress_line(remote, written, size, uv_now(loop) - started), last).c_str(),
                   stderr);
    }
    bool open_dir()
    {
        const auto dir_name = split_path(local).first;
        dir = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
            end(Result::failed, "cannot create a file in " + dir_name + ": " + std::strerror(errno));
        return dir >= 0;
    }
#ifdef PEERDEX_CONTENT_IDS
    void got_tree(TreeFetch& t);
    void partial_opened(int err);
    void written_verified(std::size_t n);
#endif
};

// Today's GET_FILE, into an unnamed file.
void Download::State::plain()
{
    request.clear();
    Encoder(request).field("GET_FILE");
    Encoder(request).field(remote);
    reply.expect_fields(1);
    go(addr);
}

#ifdef PEERDEX_CONTENT_IDS
void Download::State::got_tree(TreeFetch& t)
{
    probe = nullptr;
    if (cancelled) {
        end(Result::cancelled, "interrupted");
        return;
    }
    if (t.code != 0) {
        if (t.code == 1) {
            end(Result::not_found, t.why);
        } else if (t.course_peer && opt.expected_id.empty()) {
            plain();  // a course peer: no ids, today's transfer
        } else if (t.course_peer) {
            end(Result::failed, peer + " gave no hash tree (" + t.why + "), so the file's content id (" +
                                    opt.expected_id + ") cannot be checked");
        } else {
            end(Result::failed, t.why);
        }
        return;
    }
    if (!opt.expected_id.empty() && (t.id != opt.expected_id || (opt.expected_size && *opt.expected_size != t.tree.size))) {
        end(Result::failed, peer + " serves a different file than the one published: " + t.id + ", " +
                                std::to_string(t.tree.size) + " bytes, not " + opt.expected_id +
                                (opt.expected_size ? ", " + std::to_string(*opt.expected_size) + " bytes" : "") +
                                " (the file changed on its disk, or the peer lies); nothing was downloaded");
        return;
    }
    tree = std::move(t.tree);
    info.verified = true;
    info.id = t.id;
    info.size = size = tree.size;
    if (!open_dir())
        return;
    ++busy;
    work.data = this;
    uv_queue_work(
        loop, &work,
        [](uv_work_t* w) {
            auto* me = static_cast<State*>(w->data);
            me->commit_err = me->partial.open(me->dir, split_path(me->local).second, me->tree, me->opt.resume);
        },
        [](uv_work_t* w, int) {
            auto* me = static_cast<State*>(w->data);
            --me->busy;
            me->partial_opened(me->commit_err);
        });
}

void Download::State::partial_opened(int err)
{
    if (finished) {
        maybe_done();
        return;
    }
    if (err != 0) {
        end(Result::failed, "cannot keep the partial download of " + local + ": " + std::strerror(err));
        return;
    }
    first = written = received_bytes = info.reused = partial.verified();
    request.clear();
    Encoder e(request);
    e.field("GET_RANGE");
    e.field(remote);
    e.number(first);
    e.number(size - first);
    reply.expect_fields(1);
    go(addr);
}

void Download::State::written_verified(std::size_t n)
{
    switch (last_write) {
    case PartialFile::Write::ok:
        written += n;
        pump();
        return;
    case PartialFile::Write::bad_leaf: {
        const std::uint64_t leaf = leaf_size_for(size), at = partial.bad_leaf() * leaf;
        end(Result::failed, peer + " sent bad data: bytes " + std::to_string(at) + " to " +
                                std::to_string(std::min(size, at + leaf)) + " do not match the file's content id " +
                                info.id + "; kept the " + bytes_text(partial.verified()) + " verified before them");
        return;
    }
    case PartialFile::Write::error:
        end(Result::failed, "cannot write the download of " + local + ": " + std::strerror(partial.error()));
        return;
    }
}
#endif

void Download::State::closed()
{
    if (!header_done) {
        if (reply.eof() != ReplyDecoder::Status::done || reply.code() == 0)
            end(Result::failed, peer + " closed the connection before the size");
        else
            end(reply.code() == 1 ? Result::not_found : Result::failed, refusal(peer, reply.code()));
    } else if (received_bytes < size) {
        end(Result::failed, peer + " closed the connection after " + std::to_string(received_bytes) + " of " +
                                bytes_text(size));
    }
}

void Download::State::received(const char* p, const char* end_)
{
    if (!header_done) {
        const auto st = reply.feed(p, end_);
        if (st == ReplyDecoder::Status::need_more)
            return;
        if (st == ReplyDecoder::Status::error) {
            end(Result::failed, "malformed reply from " + peer + ": " + reply.error());
            return;
        }
        if (reply.code() != 0) {
            end(reply.code() == 1 ? Result::not_found : Result::failed, refusal(peer, reply.code()));
            return;
        }
        auto n = parse_decimal(reply.fields()[0], kMaxSize);
        if (!n) {
            end(Result::failed, peer + " sent an invalid size");
            return;
        }
        header_done = true;
        if (info.verified) {
            if (*n != size) {
                end(Result::failed, peer + "'s file changed since it sent its hash tree: it now has " +
                                        bytes_text(*n) + ", not " + std::to_string(size));
                return;
            }
        } else {
            size = info.size = *n;
            // In the target's directory, so that naming it at the end is one rename.
            if (!open_dir())
                return;
            if (const int err = out.open(dir, kTempPrefix); err != 0) {
                end(Result::failed, "cannot create a file in " + split_path(local).first + ": " + std::strerror(err));
                return;
            }
        }
        // The body bytes that came with the header move to the start of buf.
        const std::size_t rest = static_cast<std::size_t>(end_ - p);
        std::memmove(buf.get(), p, rest);
        p = buf.get();
        end_ = p + rest;
    }
    const std::size_t n = static_cast<std::size_t>(end_ - p);
    if (received_bytes + n > size) {
        end(Result::failed, peer + " sent more than the " + bytes_text(size) + " it announced");
        return;
    }
    received_bytes += n;
    if (p != buf.get() + buffered)
        std::memmove(buf.get() + buffered, p, n);
    buffered += n;
    pump();
}

// Hands buffered bytes to the file (and, verified, to the hasher); stops reading while the
// buffer is full.
void Download::State::pump()
{
    if (!writing && buffered > 0) {
        std::swap(buf, pending);
        const std::size_t n = buffered;
        buffered = 0;
        writing = true;
        ++busy;
#ifdef PEERDEX_CONTENT_IDS
        if (info.verified) {
            struct Job {
                uv_work_t req{};
                State* me;
                std::size_t n;
            };
            auto* job = new Job{{}, this, n};
            job->req.data = job;
            uv_queue_work(
                loop, &job->req,
                [](uv_work_t* w) {
                    auto* j = static_cast<Job*>(w->data);
                    j->me->last_write = j->me->partial.write(j->me->pending.get(), j->n);
                },
                [](uv_work_t* w, int) {
                    std::unique_ptr<Job> j(static_cast<Job*>(w->data));
                    State* me = j->me;
                    me->writing = false;
                    --me->busy;
                    if (me->finished) {
                        me->maybe_done();
                        return;
                    }
                    me->written_verified(j->n);
                });
            set_reading(buffered < kBufferBytes);
            return;
        }
#endif
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
    work.data = this;
    uv_queue_work(
        loop, &work,
        [](uv_work_t* w) {
            auto* me = static_cast<State*>(w->data);
#ifdef PEERDEX_CONTENT_IDS
            if (me->info.verified) {
                me->commit_err = me->partial.commit();
                return;
            }
#endif
            me->commit_err = me->out.commit(split_path(me->local).second);
        },
        [](uv_work_t* w, int) {
            auto* me = static_cast<State*>(w->data);
            --me->busy;
            if (me->commit_err != 0) {
                me->result = Result::failed;
                me->why = "cannot move the download to " + me->local + ": " + std::strerror(me->commit_err);
            } else if (me->opt.progress) {
                me->draw(true);
            }
            me->maybe_done();
        });
    end(Result::ok, "");
}

void Download::State::done()
{
    out.discard();  // an unverified partial download never remains
    if (opt.progress && result != Result::ok && header_done)
        std::fputc('\n', stderr);
#ifdef PEERDEX_CONTENT_IDS
    if (info.verified && result != Result::ok && dir >= 0) {
        // What is verified stays for the next run; the rest goes. Blocking (a data sync):
        // on the pool, then the end.
        work.data = this;
        uv_queue_work(
            loop, &work,
            [](uv_work_t* w) {
                auto* me = static_cast<State*>(w->data);
                me->info.kept = me->partial.close_keep();
            },
            [](uv_work_t* w, int) { static_cast<State*>(w->data)->dir_closed_done(); });
        return;
    }
#endif
    dir_closed_done();
}

void Download::State::dir_closed_done()
{
    if (dir >= 0)
        ::close(dir);
    std::unique_ptr<State> self(this);
    Done d = std::move(cb);
    d(result, why, info);
}

Download::State* Download::start(uv_loop_t* loop, const sockaddr_storage& peer, std::string remote_path,
                                 std::string local_path, DownloadOptions options, Done done)
{
    std::string who = options.peer.empty() ? "the peer" : options.peer;
    State* s = std::make_unique<State>(loop, options.stall_ms, std::move(who)).release();  // deletes itself in done()
    s->remote = std::move(remote_path);
    s->local = std::move(local_path);
    s->cb = std::move(done);
    s->opt = std::move(options);
    s->addr = peer;
    s->first_byte_ms = kQueuedMs;
#ifdef PEERDEX_CONTENT_IDS
    if (!s->opt.verify) {
        s->plain();
        return s;
    }
    s->probe = new TreeFetch(loop, s->opt.stall_ms, s->peer.c_str());  // deletes itself in done()
    Encoder(s->probe->request).field("GET_TREE");
    Encoder(s->probe->request).field(s->remote);
    s->probe->reply.expect_fields(3);
    s->probe->then = [s](TreeFetch& t) { s->got_tree(t); };
    if (!s->opt.expected_id.empty())
        s->probe->first_byte_ms = kQueuedMs;
    s->probe->go(peer);
#else
    if (!s->opt.expected_id.empty())
        s->end(Result::failed, "this build of peerdex cannot check content ids (built without them)");
    else
        s->plain();
#endif
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
#ifdef PEERDEX_CONTENT_IDS
    if (s->probe) {  // the tree is still coming: got_tree() ends it
        s->cancelled = true;
        s->probe->finish(-1, "interrupted");
        return;
    }
#endif
    s->end(Result::cancelled, "interrupted");
}

}  // namespace peerdex
