#include "download.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "address.hh"
#include "exchange.hh"
#include "files.hh"
#include "pending_file.hh"
#include "wire.hh"
#ifdef PEERDEX_CONTENT_IDS
#include "content_tree.hh"
#include "partial_file.hh"
#include "tree_reply.hh"
#endif

namespace peerdex {

namespace {
// Two per connection: one filling from the socket, one written (and hashed) on the pool.
// 1 MiB, a leaf: with 256 KiB the downloader spent 1.00 s of CPU per GiB on a plain
// download over loopback, with 1 MiB 0.56 s (docs/PERFORMANCE.md), fewer hand-offs to the
// pool and fewer stops of the socket.
constexpr std::size_t kBufferBytes = 1024 * 1024;

// Files up to 16 EiB announce at most 20 digits.
constexpr std::uint64_t kMaxSize = UINT64_MAX / 2;
constexpr std::string_view kTempPrefix = ".peerdex-download-";
// How long a peer may take to start answering a transfer: its upload slots may all be
// taken (peerdex(1), --upload-slots), or it may be hashing the file for its tree.
constexpr std::uint64_t kQueuedMs = 10 * 60 * 1000;
// Sources one download keeps track of (the tracker's SOURCES answers add to them).
constexpr std::size_t kMaxKnownSources = 64;

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
// GET_TREE (peerdex-protocol(7), FILE RANGES), read by TreeReply: a tree whole and
// consistent, or why not.
struct TreeFetch final : Exchange {
    std::function<void(TreeFetch&)> then;
    TreeReply answer;
    ContentTree tree;
    std::string id;
    // Closed, answered 2, or answered something that is not a tree: no trees there.
    bool course_peer = false;

    TreeFetch(uv_loop_t* l, std::uint64_t stall_ms, const char* peer) : Exchange(l, stall_ms, peer) {}

    void received(const char* p, const char* end) override
    {
        switch (answer.feed(p, end)) {
        case TreeReply::Status::need_more:
            return;
        case TreeReply::Status::done:
            got_tree();
            return;
        case TreeReply::Status::failed:
            failed();
            return;
        }
    }
    void got_tree()
    {
        tree = std::move(answer.tree());
        id = content_id_text(tree.root);
        finish(0, "");
    }
    void failed()
    {
        using F = TreeReply::Fault;
        switch (answer.fault()) {
        case F::undecodable:
            // A course peer that answers any request as GET_FILE looks like this too.
            course_peer = true;
            finish(-1, std::string("malformed tree from ") + who + ": " + answer.error());
            return;
        case F::refused:
            course_peer = answer.code() != 1;
            finish(answer.code(), refusal(who, answer.code()));
            return;
        case F::bad_head:
            course_peer = true;
            finish(-1, std::string(who) + " sent a malformed hash tree");
            return;
        case F::wrong_leaves:
            finish(-1, std::string(who) + " sent a hash tree whose leaves do not give its id");
            return;
        case F::not_empty:
            finish(-1, std::string(who) + " sent the hash tree of a non-empty file for an empty one");
            return;
        case F::cut:
        case F::none:
            break;
        }
        course_peer = !answer.head_done();  // closed on an operation it does not know, or its GET_FILE answer
        finish(-1, std::string(who) + " closed the connection before the whole hash tree");
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
        if (answer.eof() == TreeReply::Status::done)
            got_tree();
        else
            failed();
    }
    void done() override
    {
        std::unique_ptr<TreeFetch> self(this);
        then(*this);
    }
};
#endif

#ifdef PEERDEX_CONTENT_IDS
struct RangeFetch;
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
    int commit_err = 0;
    std::unique_ptr<char[]> buf = new_buffer(kBufferBytes);
    std::unique_ptr<char[]> pending = new_buffer(kBufferBytes);
    std::size_t buffered = 0;  // bytes in buf not yet handed to a write
    bool writing = false;
    bool cancelled = false;
    Result result = Result::failed;
    DownloadInfo info;
#ifdef PEERDEX_CONTENT_IDS
    TreeFetch* probe = nullptr;  // the GET_TREE under way
    std::size_t probing = 0;     // of sources[probing]
    ContentTree tree;
    PartialFile partial;
    struct Src {
        Source s;
        enum class Status { idle, busy, bad, gone } status = Status::idle;
        std::uint64_t bytes = 0;  // received from it
        double rate = 0;          // bytes per ms of its last segment (0: not known yet)
    };
    std::vector<Src> sources;            // sources[0]: the peer given to start()
    std::vector<std::uint8_t> assigned;  // per leaf: a segment under way covers it
    std::vector<RangeFetch*> fetches;    // the segments under way, one connection each
    // Buffers of ended segments, for the next ones: a segment is a new connection, but
    // its 2 MiB are not allocated and faulted in again. At most two per segment at once.
    std::vector<std::unique_ptr<char[]>> spare;
    std::unique_ptr<char[]> take_buffer()
    {
        if (spare.empty())
            return new_buffer(kBufferBytes);
        auto b = std::move(spare.back());
        spare.pop_back();
        return b;
    }
    uv_timer_t ticker{};                 // progress and SOURCES refreshes
    std::uint64_t last_refresh = 0;
    bool refreshing = false;
    bool last_chance = false;  // every source is gone: one refresh, then the end
    bool saving = false;
    std::uint64_t saved = 0;   // verified bytes the record on disk holds
    std::string last_why;      // why the last source went
    Result last_result = Result::failed;  // and what that makes of the download
#endif

    State(uv_loop_t* l, std::uint64_t stall_ms, std::string name)
        : Exchange(l, stall_ms, "the peer"), peer(std::move(name))
    {
        Exchange::who = peer.c_str();
    }

    // Ends it: every connection closes, then done().
    void end(Result r, const std::string& reason);
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
    void draw(bool last);
    bool open_dir()
    {
        const auto dir_name = split_path(local).first;
        dir = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
            end(Result::failed, "cannot create a file in " + dir_name + ": " + std::strerror(errno));
        return dir >= 0;
    }
#ifdef PEERDEX_CONTENT_IDS
    void probe_next();
    void got_tree(TreeFetch& t);
    void partial_opened(int err);
    void schedule();
    bool next_segment(std::size_t& first, std::size_t& count) const;
    RangeFetch* slowest(double& seconds_left) const;
    void start_fetch(std::size_t src, std::uint64_t begin, std::uint64_t end);
    void matched(const std::vector<std::size_t>& leaves);
    void bad_data(RangeFetch& f, std::uint64_t leaf);
    void fetch_done(RangeFetch& f);
    void refresh();
    void add_sources(std::vector<Source> more);
    void say(const std::string& what);
    std::size_t usable() const;
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
namespace {
// The largest segment asked of one source at once: small enough that several sources share
// a file of a few hundred MiB, large enough that a connection per segment costs nothing.
constexpr std::uint64_t kMaxSegment = 64ull << 20;
// Verified bytes between two saves of the record: a crash loses at most this much work.
constexpr std::uint64_t kSaveBytes = 64ull << 20;
// What a new connection costs a source taking over part of a slow one's segment.
constexpr double kStealCostMs = 250;
// A segment without a byte for this long may be taken over whole by an idle source.
constexpr std::uint64_t kFirstByteGraceMs = 2000;
}  // namespace

// One segment, bytes [begin, end) of the file, as one GET_RANGE from one source: written in
// place as it arrives, each leaf checked when it completes. A faster source may take over
// the segment's tail (end moves back); bytes after it are then not wanted from this one.
struct RangeFetch final : Exchange {
    Download::State* owner;
    std::size_t src;
    std::uint64_t begin, end;
    std::uint64_t accepted = 0;  // bytes of the segment received and kept
    std::uint64_t written = 0;   // of those, written and hashed
    std::uint64_t first_byte_at = 0;
    bool header_done = false;
    int refused = 0;  // the peer's code, when it refused the range
    enum class Outcome { done, bad, gone } outcome = Outcome::gone;
    std::unique_ptr<char[]> buf, pending;  // taken from the download's spares, given back in done()
    std::size_t buffered = 0;
    bool writing = false;
    PartialFile::Cursor cursor;
    PartialFile::Write last = PartialFile::Write::ok;

    RangeFetch(Download::State* o, std::size_t source, std::uint64_t b, std::uint64_t e);
    std::uint64_t wanted() const { return end - begin; }
    uv_buf_t buffer() override
    {
        return uv_buf_init(buf.get() + buffered, static_cast<unsigned>(kBufferBytes - buffered));
    }
    void received(const char* p, const char* end_) override;
    void closed() override;
    void pump();
    void written_done(std::size_t n);
    // The segment now ends at `e` (a faster source took the rest).
    void shorten(std::uint64_t e)
    {
        end = e;
        pump();
    }
    double rate() const  // bytes per ms since its first byte (0: none yet)
    {
        const std::uint64_t ms = uv_now(loop) - first_byte_at;
        return accepted == 0 || ms == 0 ? 0 : static_cast<double>(accepted) / static_cast<double>(ms);
    }
    void done() override;
};

RangeFetch::RangeFetch(Download::State* o, std::size_t source, std::uint64_t b, std::uint64_t e)
    : Exchange(o->loop, o->opt.stall_ms, o->sources[source].s.name.c_str()), owner(o), src(source), begin(b), end(e),
      buf(o->take_buffer()), pending(o->take_buffer())
{
    cursor.pos = begin;
    first_byte_ms = kQueuedMs;
    Encoder enc(request);
    enc.field("GET_RANGE");
    enc.field(o->sources[source].s.path);
    enc.number(begin);
    enc.number(end - begin);
    reply.expect_fields(1);
}

void RangeFetch::received(const char* p, const char* end_)
{
    if (!header_done) {
        const auto st = reply.feed(p, end_);
        if (st == ReplyDecoder::Status::need_more)
            return;
        if (st == ReplyDecoder::Status::error) {
            finish(-1, std::string("malformed reply from ") + who + ": " + reply.error());
            return;
        }
        if (reply.code() != 0) {
            refused = reply.code();
            finish(-1, refusal(who, reply.code()));
            return;
        }
        const auto n = parse_decimal(reply.fields()[0], kMaxSize);
        if (!n || *n != owner->size) {
            outcome = Outcome::bad;
            finish(-1, std::string(who) + " has another file: " + (n ? bytes_text(*n) : "an invalid size") +
                           ", not the " + bytes_text(owner->size) + " of " + owner->info.id);
            return;
        }
        header_done = true;
        first_byte_at = uv_now(loop);
        const std::size_t rest = static_cast<std::size_t>(end_ - p);
        std::memmove(buf.get(), p, rest);
        p = buf.get();
        end_ = p + rest;
    }
    // Past the (possibly shortened) end: not wanted any more.
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(end_ - p),
                                                                    wanted() > accepted ? wanted() - accepted : 0));
    accepted += n;
    if (p != buf.get() + buffered)
        std::memmove(buf.get() + buffered, p, n);
    buffered += n;
    pump();
}

void RangeFetch::closed()
{
    if (!header_done && reply.eof() == ReplyDecoder::Status::done && reply.code() != 0) {
        refused = reply.code();
        finish(-1, refusal(who, reply.code()));
    } else if (accepted < wanted()) {
        finish(-1, std::string(who) + " closed the connection " +
                       (header_done ? "after " + std::to_string(accepted) + " of the " + bytes_text(wanted()) + " asked"
                                    : "before the size"));
    } else {
        pump();  // all that is still wanted came
    }
}

void RangeFetch::pump()
{
    if (finished)
        return;
    // Few large jobs, not one per read: each handoff to the pool and back costs the loop a
    // wakeup, and on a busy machine far more. A job goes when half the buffer is full, when
    // the bytes complete a leaf (verified as soon as it can be), or at the segment's end.
    const std::uint64_t at = begin + written, leaf = owner->partial.leaf_size();
    const bool worth = buffered >= kBufferBytes / 2 || accepted >= wanted() ||
                       at + buffered >= std::min((at / leaf + 1) * leaf, begin + wanted());
    if (!writing && buffered > 0 && worth) {
        std::swap(buf, pending);
        const std::size_t n = buffered;
        buffered = 0;
        writing = true;
        on_pool([this, n] { last = owner->partial.write_at(cursor, pending.get(), n); },
                [this, n] {
                    writing = false;
                    written_done(n);
                });
    }
    set_reading(buffered < kBufferBytes && accepted < wanted());
    // Done when all that is wanted is written, or nothing is wanted any more (another
    // source took it all before the first byte).
    if (!writing && buffered == 0 && written >= wanted() && (header_done || wanted() == 0))
        finish(0, "");
}

void RangeFetch::written_done(std::size_t n)
{
    // Leaves that matched count even when this segment was ended meanwhile.
    owner->matched(cursor.matched);
    switch (last) {
    case PartialFile::Write::ok:
        written += n;
        if (finished)
            maybe_done();
        else
            pump();
        return;
    case PartialFile::Write::bad_leaf:
        if (finished) {
            maybe_done();
            return;
        }
        owner->bad_data(*this, cursor.bad_leaf);
        return;
    case PartialFile::Write::error:
        owner->end(Download::Result::failed,
                   "cannot write the download of " + owner->local + ": " + std::strerror(cursor.err));
        maybe_done();
        return;
    }
}

void RangeFetch::done()
{
    Download::State* o = owner;
    // Nothing is in flight (done() comes once no pool job is): the next segment may use them.
    o->spare.push_back(std::move(buf));
    o->spare.push_back(std::move(pending));
    o->fetch_done(*this);
    delete this;
    --o->busy;
    o->maybe_done();
}

void Download::State::say(const std::string& what)
{
    if (!opt.note)
        return;
    if (opt.progress)
        std::fputs("\r\033[K", stderr);
    opt.note(what);
}

std::size_t Download::State::usable() const
{
    std::size_t n = 0;
    for (const auto& s : sources)
        n += s.status == Src::Status::idle || s.status == Src::Status::busy;
    return n;
}

// The tree comes from the first source that serves one with the expected id.
void Download::State::probe_next()
{
    probe = new TreeFetch(loop, opt.stall_ms, sources[probing].s.name.c_str());  // deletes itself in done()
    Encoder(probe->request).field("GET_TREE");
    Encoder(probe->request).field(sources[probing].s.path);
    probe->then = [this](TreeFetch& t) { got_tree(t); };
    if (!opt.expected_id.empty())
        probe->first_byte_ms = kQueuedMs;
    probe->go(sources[probing].s.addr);
}

void Download::State::got_tree(TreeFetch& t)
{
    probe = nullptr;
    if (cancelled) {
        end(Result::cancelled, "interrupted");
        return;
    }
    const std::string& name = sources[probing].s.name;
    std::string problem;
    Result fail = Result::failed;
    if (t.code != 0) {
        if (t.code == 1) {
            fail = Result::not_found;
            problem = t.why;
        } else if (t.course_peer && opt.expected_id.empty()) {
            plain();  // a course peer: no ids, today's transfer
            return;
        } else if (t.course_peer) {
            problem = name + " gave no hash tree (" + t.why + "), so the file's content id (" + opt.expected_id +
                      ") cannot be checked";
        } else {
            problem = t.why;
        }
    } else if (!opt.expected_id.empty() &&
               (t.id != opt.expected_id || (opt.expected_size && *opt.expected_size != t.tree.size))) {
        problem = name + " serves a different file than the one published: " + t.id + ", " +
                  std::to_string(t.tree.size) + " bytes, not " + opt.expected_id +
                  (opt.expected_size ? ", " + std::to_string(*opt.expected_size) + " bytes" : "") +
                  " (the file changed on its disk, or the peer lies)";
    }
    if (!problem.empty()) {
        sources[probing].status = fail == Result::not_found ? Src::Status::gone : Src::Status::bad;
        if (++probing < sources.size()) {
            say(problem + "; trying the next source");
            probe_next();
            return;
        }
        end(fail, problem + "; nothing was downloaded");
        return;
    }
    tree = std::move(t.tree);
    info.verified = true;
    info.id = t.id;
    info.size = size = tree.size;
    if (!open_dir())
        return;
    on_pool([this] { commit_err = partial.open(dir, split_path(local).second, tree, opt.resume); },
            [this] { partial_opened(commit_err); });
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
    written = saved = info.reused = partial.verified();
    assigned.assign(partial.leaves(), 0);
    header_done = true;  // what a failure says now is about the sources
    uv_timer_init(loop, &ticker);
    ticker.data = this;
    ++handles;
    last_refresh = uv_now(loop);
    uv_timer_start(&ticker, [](uv_timer_t* t) {
        auto* me = static_cast<State*>(t->data);
        if (me->finished)
            return;
        if (me->opt.progress)
            me->draw(false);
        if (me->opt.refresh && uv_now(me->loop) - me->last_refresh >= me->opt.refresh_ms)
            me->refresh();
    }, 200, 200);
    if (partial.complete())
        complete();
    else
        schedule();
}

// The first run of leaves nobody holds or fetches, cut to a share of what is left: large
// segments at first, smaller ones near the end, so that every source stays busy.
bool Download::State::next_segment(std::size_t& first, std::size_t& count) const
{
    const std::size_t leaves = partial.leaves();
    std::size_t missing = 0;
    first = leaves;
    for (std::size_t i = 0; i < leaves; ++i)
        if (!assigned[i] && !partial.has(i)) {
            ++missing;
            if (first == leaves)
                first = i;
        }
    if (missing == 0)
        return false;
    count = 0;
    while (first + count < leaves && !assigned[first + count] && !partial.has(first + count))
        ++count;
    const std::size_t n = usable();
    if (n > 1) {
        const auto cap = static_cast<std::size_t>(std::max<std::uint64_t>(1, kMaxSegment / partial.leaf_size()));
        count = std::min(count, std::clamp<std::size_t>(missing / (2 * n), 1, cap));
    }
    return true;
}

// The segment under way expected to end last, and in how long.
RangeFetch* Download::State::slowest(double& ms_left) const
{
    RangeFetch* worst = nullptr;
    ms_left = 0;
    for (RangeFetch* f : fetches) {
        if (f->finished || f->accepted >= f->wanted())
            continue;
        const double left = static_cast<double>(f->wanted() - f->accepted);
        const double r = f->rate();
        if (r == 0 && uv_now(loop) - f->started < kFirstByteGraceMs)
            continue;  // just asked: give it time to start
        // No byte yet (queued behind the source's upload slots, or slow to start): it may
        // take any time.
        const double ms = r > 0 ? left / r : 1e18;
        if (!worst || ms > ms_left) {
            worst = f;
            ms_left = ms;
        }
    }
    return worst;
}

void Download::State::schedule()
{
    if (finished)
        return;
    std::size_t running = fetches.size();
    for (std::size_t i = 0; i < sources.size() && running < std::max<std::size_t>(1, opt.max_sources); ++i) {
        if (sources[i].status != Src::Status::idle)
            continue;
        std::size_t first = 0, count = 0;
        if (next_segment(first, count)) {
            const std::uint64_t leaf = partial.leaf_size();
            start_fetch(i, first * leaf, std::min(size, (first + count) * leaf));
            ++running;
            continue;
        }
        // Nothing left to hand out: take over the tail of the segment expected to end last,
        // when this source would end it sooner (AirDC++'s idea; no byte is fetched twice).
        double ms_left = 0;
        RangeFetch* slow = slowest(ms_left);
        if (!slow)
            break;
        const std::uint64_t leaf = partial.leaf_size();
        const std::uint64_t from = std::min(slow->end, (slow->begin + slow->accepted + leaf - 1) / leaf * leaf);
        const std::uint64_t left_leaves = (slow->end - from + leaf - 1) / leaf;
        if (left_leaves == 0)
            continue;
        const double mine = sources[i].rate, theirs = slow->rate();
        std::uint64_t take = left_leaves;  // all of it from a source that has sent nothing yet
        if (theirs > 0) {
            const double share = mine > 0 ? mine / (mine + theirs) : 0.5;
            take = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(static_cast<double>(left_leaves) * share + 0.5),
                                             1, left_leaves);
            const double bytes = static_cast<double>(std::min(slow->end - from, take * leaf));
            const double after = std::max((static_cast<double>(slow->end - slow->begin - slow->accepted) - bytes) / theirs,
                                          bytes / (mine > 0 ? mine : theirs) + kStealCostMs);
            if (after >= ms_left)
                continue;  // not sooner: leave it where it is
        }
        const std::uint64_t split = slow->end - std::min(slow->end - from, take * leaf);
        const std::uint64_t tail_end = slow->end;
        slow->shorten(split);
        start_fetch(i, split, tail_end);
        ++running;
    }
    if (fetches.empty() && !finished) {
        // Every source is gone or bad: one more look for sources, then the end.
        if (opt.refresh && !last_chance) {
            last_chance = true;
            if (!refreshing)
                refresh();
            return;
        }
        if (refreshing)
            return;
        end(last_result, last_why.empty() ? "no source is left" : last_why);
    }
}

void Download::State::start_fetch(std::size_t src, std::uint64_t b, std::uint64_t e)
{
    const std::uint64_t leaf = partial.leaf_size();
    for (auto i = static_cast<std::size_t>(b / leaf); i * leaf < e; ++i)  // b < size: a leaf's index
        assigned[i] = 1;
    auto* f = new RangeFetch(this, src, b, e);  // deletes itself in done()
    ++busy;
    sources[src].status = Src::Status::busy;
    fetches.push_back(f);
    f->go(sources[src].s.addr);
}

void Download::State::matched(const std::vector<std::size_t>& leaves)
{
    for (const std::size_t leaf : leaves)
        partial.mark(leaf);
    written = partial.verified();
    if (finished || saving || written - saved < kSaveBytes || partial.complete())
        return;
    // Saved on the pool while the segments go on; the record lists only leaves already
    // written, since each was marked after its write.
    saving = true;
    auto err = std::make_shared<int>(0);
    on_pool([this, err, text = partial.record_text()] { *err = partial.save(text); },
            [this, err, verified = written] {
                saving = false;
                if (*err != 0)
                    end(Result::failed, "cannot keep the partial download of " + local + ": " + std::strerror(*err));
                else
                    saved = verified;
                maybe_done();
            });
}

void Download::State::bad_data(RangeFetch& f, std::uint64_t leaf)
{
    const std::uint64_t len = partial.leaf_size(), at = leaf * len;
    f.outcome = RangeFetch::Outcome::bad;
    f.finish(-1, sources[f.src].s.name + " sent bad data: bytes " + std::to_string(at) + " to " +
                     std::to_string(std::min(size, at + len)) + " do not match the file's content id " + info.id);
}

void Download::State::fetch_done(RangeFetch& f)
{
    fetches.erase(std::find(fetches.begin(), fetches.end(), &f));
    const std::uint64_t leaf = partial.leaf_size();
    for (auto i = static_cast<std::size_t>(f.begin / leaf); i * leaf < f.end; ++i)
        assigned[i] = 0;
    Src& src = sources[f.src];
    src.bytes += f.accepted;
    info.received += f.accepted;
    if (f.rate() > 0)
        src.rate = f.rate();
    if (f.code == 0) {
        if (src.status == Src::Status::busy)
            src.status = Src::Status::idle;
    } else if (!finished) {
        const bool others = usable() > 1;
        src.status = f.outcome == RangeFetch::Outcome::bad ? Src::Status::bad : Src::Status::gone;
        last_why = f.why;
        last_result = f.refused == 1 ? Result::not_found : Result::failed;
        if (others || opt.refresh)
            say(f.why + (f.outcome == RangeFetch::Outcome::bad ? "; dropped it for this file" : "; dropped it"));
        if (f.outcome == RangeFetch::Outcome::bad && !others)
            last_why += "; kept the " + bytes_text(partial.verified()) + " verified";
    }
    if (finished)
        return;
    if (partial.complete()) {
        for (RangeFetch* g : fetches)
            g->finish(0, "");  // nothing of theirs is wanted any more
        if (fetches.empty())
            complete();
        return;
    }
    schedule();
}

void Download::State::refresh()
{
    last_refresh = uv_now(loop);
    if (refreshing || !opt.refresh)
        return;
    refreshing = true;
    ++busy;
    opt.refresh([this](std::vector<Source> more) {
        refreshing = false;
        --busy;
        if (finished) {
            maybe_done();
            return;
        }
        add_sources(std::move(more));
        schedule();
    });
}

void Download::State::add_sources(std::vector<Source> more)
{
    for (auto& m : more) {
        const bool known = std::any_of(sources.begin(), sources.end(), [&](const Src& s) {
            return s.s.path == m.path && endpoint_string(reinterpret_cast<const sockaddr*>(&s.s.addr)) ==
                                             endpoint_string(reinterpret_cast<const sockaddr*>(&m.addr));
        });
        if (known || sources.size() >= kMaxKnownSources)
            continue;
        if (info.verified)
            say(m.name + " has the file too: a new source");
        sources.push_back(Src{std::move(m)});
        last_chance = false;
    }
}
#endif

void Download::State::end(Result r, const std::string& reason)
{
    if (finished)
        return;
    result = r;
    finish(r == Result::ok ? 0 : -1, reason);
#ifdef PEERDEX_CONTENT_IDS
    for (RangeFetch* f : fetches)
        f->finish(-1, reason);
    if (ticker.data) {
        uv_close(reinterpret_cast<uv_handle_t*>(&ticker), [](uv_handle_t* h) {
            auto* me = static_cast<State*>(h->data);
            --me->handles;
            me->maybe_done();
        });
    }
#endif
}

void Download::State::draw(bool last)
{
    std::string line = progress_line(remote, written, size, uv_now(loop) - started);
#ifdef PEERDEX_CONTENT_IDS
    if (sources.size() > 1 || opt.refresh) {
        // Under way: how many send now; at the end: how many sent.
        const std::size_t n = last ? static_cast<std::size_t>(std::count_if(sources.begin(), sources.end(),
                                                                             [](const Src& x) { return x.bytes > 0; }))
                                   : fetches.size();
        line += (last ? ", from " : ", ") + std::to_string(n) + (n == 1 ? " source" : " sources");
    }
#endif
    std::fputs(progress_redraw(line, last).c_str(), stderr);
}

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
        size = info.size = *n;
        // In the target's directory, so that naming it at the end is one rename.
        if (!open_dir())
            return;
        if (const int err = out.open(dir, kTempPrefix); err != 0) {
            end(Result::failed, "cannot create a file in " + split_path(local).first + ": " + std::strerror(err));
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
        end(Result::failed, peer + " sent more than the " + bytes_text(size) + " it announced");
        return;
    }
    received_bytes += n;
    if (p != buf.get() + buffered)
        std::memmove(buf.get() + buffered, p, n);
    buffered += n;
    pump();
}

// Hands buffered bytes to the unnamed file; stops reading while the buffer is full.
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
    on_pool(
        [this] {
#ifdef PEERDEX_CONTENT_IDS
            if (info.verified) {
                commit_err = partial.commit();
                return;
            }
#endif
            commit_err = out.commit(split_path(local).second);
        },
        [this] {
            if (commit_err != 0) {
                result = Result::failed;
                why = "cannot move the download to " + local + ": " + std::strerror(commit_err);
            } else if (opt.progress) {
                draw(true);
            }
            maybe_done();
        });
    end(Result::ok, "");
}

void Download::State::done()
{
    out.discard();  // an unverified partial download never remains
    if (opt.progress && result != Result::ok && header_done)
        std::fputc('\n', stderr);
#ifdef PEERDEX_CONTENT_IDS
    for (const auto& src : sources)
        info.sources += src.bytes > 0;
    if (info.verified && result != Result::ok && dir >= 0) {
        // What is verified stays for the next run; the rest goes. Blocking (a data sync):
        // on the pool, then the end.
        on_pool([this] { info.kept = partial.close_keep(); }, [this] { dir_closed_done(); });
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
    // Never reallocated: exchanges hold pointers to the sources' names.
    s->sources.reserve(kMaxKnownSources);
    s->sources.push_back(State::Src{Source{s->peer, peer, s->remote}});
    if (!s->opt.expected_id.empty())  // other sources only for a file known by its id
        s->add_sources(std::move(s->opt.sources));
    s->probe_next();
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
