#include "peer_server.hh"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "console.hh"
#ifdef PEERDEX_CONTENT_IDS
#include "content_tree.hh"
#endif
#include "files.hh"
#include "listen.hh"
#include "peer_request.hh"
#include "upload_file.hh"
#include "wire.hh"

namespace peerdex {

namespace {
constexpr std::size_t kChunkBytes = 256 * 1024;   // GET_FILE: the whole of a connection's buffering
// GET_FILE and GET_RANGE with sendfile: the file is read ahead into the page cache on the
// pool this much at a time, the next window while the last one is sent, and sent from
// there by the kernel, with no copy through this process.
constexpr std::size_t kSendfileBytes = 4 << 20;
constexpr std::uint64_t kStallMs = 30000;         // a peer that moves no byte for this long
// After a refusal, the rest of the request is read and dropped (so that the peer reads
// our reply rather than a reset), for this long and this much at most.
constexpr std::uint64_t kLingerMs = 2000;
constexpr std::uint64_t kLingerBytes = 1 << 20;
constexpr std::size_t kMaxListings = 4;     // LIST_FILES replies in memory at once
// GET_TREE builds at once: each may hash a whole file on a pool thread, and may hold 2 MiB.
constexpr std::size_t kMaxTreeBuilds = 1;
constexpr std::uint16_t kFirstFreePort = 1024, kLastFreePort = 49151;  // some trackers refuse higher
constexpr int kPortTries = 64;
constexpr std::uint64_t kSweepMs = 500;
// Connections served at once; more wait in the listen backlog (file descriptors are finite).
constexpr std::uint64_t kMaxConns = 256;

// Whether bytes [from, from + len) of the file are all in the page cache, by cachestat(2)
// (Linux 6.5; the same number on every architecture). False when it cannot tell.
bool in_page_cache(int fd, std::uint64_t from, std::uint64_t len)
{
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
    struct {
        std::uint64_t off, len;
    } range{from, len};
    struct {
        std::uint64_t cache, dirty, writeback, evicted, recently_evicted;
    } st{};
    static bool missing = false;  // ENOSYS once: an older kernel
    if (missing || len == 0)
        return len == 0;
    if (::syscall(__NR_cachestat, fd, &range, &st, 0) != 0) {
        missing = errno == ENOSYS;
        return false;
    }
    const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t pages = (from + len + page - 1) / page - from / page;
    return st.cache >= pages;
}

void close_fd(int fd)
{
    if (fd >= 0)
        ::close(fd);
}
}  // namespace

class PeerConn final : public Accepted {
public:
    enum class Phase { request, sending, receiving, storing, lingering };

    explicit PeerConn(PeerServer& s) : server_(s) { tcp_.data = this; }
    uv_tcp_t tcp_{};
    Phase phase_ = Phase::request;

    uv_tcp_t* tcp() override { return &tcp_; }
    void start() override
    {
        ++server_.stats_.connections;
        touch();
        reading_ = true;
        uv_read_start(stream(), on_alloc, on_read);
    }
    void expire() override { close(); }  // a peer that stopped reading or sending
    // Transfers under way finish (within the grace period); nothing is under way while
    // the request is still coming or after a refusal.
    void drain() override
    {
        if (phase_ == Phase::request || phase_ == Phase::lingering || queued_)
            close();
    }
    void close() override;
    void build_listing();  // LIST_FILES, once it has a slot
    void build_tree();     // GET_TREE, once it has a slot
    void free_tree_slot();  // at the connection's end
    void free_slots();
    void slot_granted();   // GET_FILE or GET_RANGE, once it has an upload slot
    void tokens_granted()  // the rate cap lets the next chunk go
    {
        touch();
        read_chunk();
    }
    // True once a client that half-closed is known to have closed entirely: its
    // request needs no answer.
    bool gone();
    // Drops a request whose client left before its reply.
    void abandon();

private:
    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
    void parse(const char* p, const char* end);
    void get_file(const std::string& name);
    void open_file();
    void got_file();
    void get_range(const std::string& name, const std::string& offset, const std::string& length);
    void get_tree(const std::string& name);
    void tree_built();
    void list_files();
    void listed();
    void put_file(const std::string& name, const std::string& size, const char* body, const char* end);
    void upload_opened();
    void pump();
    void chunk_written();
    void stored();
    void refuse(char code);
    void reply(std::string bytes, bool then_stream);
    void read_chunk();
    void send_chunk();     // sendfile from the page cache, after read-ahead on the pool
    void cork(bool on);
    void read_ahead();     // the next window into the page cache, on the pool
    void read_ahead_done();
    void read_chunk_copy();  // the same by read and write, where sendfile cannot serve
    void wait_writable();
    void set_reading(bool on);
    void touch()
    {
        if (phase_ == Phase::lingering)
            server_.acceptor_.linger(this);
        else
            server_.acceptor_.touch(this);
    }
    // Runs `work` on the thread pool, then `after` on the loop unless closed meanwhile.
    void pool(std::function<void()> work, void (PeerConn::*after)());
    void release_files();
    void probe();

    PeerServer& server_;
    PeerRequestParser request_;
    std::string op_;
    std::vector<std::string> fields_;
    bool closed_ = false;
    bool busy_ = false;  // a file operation on the thread pool refers to this connection
    bool reading_ = false;
    bool list_slot_ = false;  // holds one of the server's LIST_FILES/GET_TREE slots
    bool upload_slot_ = false;  // holds one of the server's upload slots (GET_FILE, GET_RANGE)
    bool tree_slot_ = false;    // holds one of the server's GET_TREE slots
    bool queued_ = false;       // waits for an upload or GET_TREE slot
    std::atomic<bool> cancel_{false};  // closed: a hash under way may stop
    bool replied_ = false;    // the reply (or its first byte) is on its way
    bool probed_ = false;     // LIST_FILES: its first byte went out early, after the client's EOF
    uv_work_t* job_ = nullptr;  // the thread-pool work under way, cancelled on close if not started
    int err_ = 0;        // errno of the last file operation
    int file_ = -1;
    std::uint64_t size_ = 0, offset_ = 0;  // GET_FILE, GET_RANGE: the end, the next byte to send
    std::uint64_t range_offset_ = 0, range_length_ = 0;  // GET_RANGE as asked
    bool range_ = false;                                 // GET_RANGE rather than GET_FILE
    std::uint64_t lingered_ = 0;
    std::string name_;                     // PUT_FILE
    UploadFile upload_;                    // PUT_FILE: named only once complete and synced
    std::unique_ptr<char[]> buf_;          // GET_FILE
    std::size_t in_flight_ = 0;            // GET_FILE: bytes of the socket write under way
    bool copy_ = false;        // sendfile refused this file: read and write instead
    // sendfile without a rate cap: the socket is corked (TCP_CORK) for the transfer, so the
    // kernel sends only full segments rather than pushing the tail of every internal batch;
    // uncorked after the last byte, so nothing waits.
    bool corked_ = false;
    std::uint64_t chunk_end_ = 0;  // where the chunk under way ends
    std::uint64_t ahead_end_ = 0;  // sendfile: the file is read ahead up to here
    std::uint64_t ahead_next_ = 0;  // ... and up to here once the read-ahead under way ends
    bool ahead_busy_ = false;       // a read-ahead is under way
    bool ahead_wanted_ = false;     // the chunk waits for it
    // sendfile: waits for room in the socket on a duplicate of its descriptor (the TCP
    // handle owns the original).
    uv_poll_t poll_{};
    int poll_fd_ = -1;
    uv_fs_t fs_{};
    uv_write_t write_{};
    uv_write_t probe_{};
    uv_shutdown_t shutdown_{};
    std::string head_;
    char in_[512];
};

void PeerConn::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf)
{
    auto* c = static_cast<PeerConn*>(h->data);
    if (c->phase_ == Phase::receiving)
        *buf = c->upload_.room();
    else
        *buf = uv_buf_init(c->in_, sizeof c->in_);
}

void PeerConn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf)
{
    auto* c = static_cast<PeerConn*>(s->data);
    if (n == UV_EOF && (c->phase_ == Phase::sending || c->phase_ == Phase::storing)) {
        c->set_reading(false);  // a peer that half-closed after its request still gets the reply
        if (c->op_ == "LIST_FILES" && !c->replied_)
            c->probe();  // ...but one that closed entirely should not cost a listing
        return;
    }
    if (n < 0) {
        if (c->phase_ == Phase::receiving)
            Console::debug("peer: upload of %s cut after %llu of %llu bytes", c->name_.c_str(),
                           static_cast<unsigned long long>(c->upload_.received()),
                           static_cast<unsigned long long>(c->upload_.size()));
        if (c->phase_ == Phase::sending && !c->replied_)
            ++c->server_.stats_.abandoned;
        c->close();  // an upload cut short is discarded with the connection
        return;
    }
    if (n == 0)
        return;
    const auto bytes = static_cast<std::size_t>(n);
    c->server_.stats_.bytes_received += bytes;
    c->touch();
    switch (c->phase_) {
    case Phase::request:
        c->parse(buf->base, buf->base + n);
        return;
    case Phase::receiving: {
        c->upload_.received(bytes);  // on_alloc handed out its room: the bytes are in place
        c->pump();
        return;
    }
    case Phase::lingering:
        c->lingered_ += bytes;
        if (c->lingered_ > kLingerBytes)
            c->close();
        return;
    case Phase::sending:
    case Phase::storing:
        return;  // input after the request is ignored
    }
}

void PeerConn::parse(const char* p, const char* end)
{
    auto& st = server_.stats_;
    while (p < end && phase_ == Phase::request) {
        switch (request_.feed(p, end)) {
        case PeerRequestParser::Result::need_more:
            return;
        case PeerRequestParser::Result::refused:
            refuse(request_.refusal());
            return;
        case PeerRequestParser::Result::op:
            op_ = std::string(request_.op_name());
            switch (request_.op()) {
            case PeerOp::list_files:
                ++st.list_files;
                list_files();
                return;
            case PeerOp::get_file:
                ++st.get_file;
                break;
            case PeerOp::get_range:
                ++st.get_range;
                break;
            case PeerOp::get_tree:
                ++st.get_tree;
                break;
            case PeerOp::put_file:
                ++st.put_file;
                if (server_.shared_->upload_dir() < 0) {  // FILE SERVER: uploads disabled
                    Console::debug("peer: refused PUT_FILE: uploads are disabled");
                    refuse('\x01');
                    return;
                }
                break;
            case PeerOp::unknown:
                ++st.other;
                refuse('\x02');
                return;
            }
            continue;
        case PeerRequestParser::Result::request:
            fields_ = request_.fields();
            switch (request_.op()) {
            case PeerOp::get_file:
                get_file(fields_[0]);
                return;
            case PeerOp::get_tree:
                get_tree(fields_[0]);
                return;
            case PeerOp::get_range:
                get_range(fields_[0], fields_[1], fields_[2]);
                return;
            case PeerOp::put_file:
                put_file(fields_[0], fields_[1], p, end);
                return;
            case PeerOp::list_files:
            case PeerOp::unknown:
                return;  // whole at their OP: answered above
            }
            return;
        }
    }
}

void PeerConn::pool(std::function<void()> work, void (PeerConn::*after)())
{
    struct Job {
        uv_work_t req{};
        PeerConn* conn;
        std::function<void()> work;
        void (PeerConn::*after)();
    };
    auto job = std::make_unique<Job>();
    job->conn = this;
    job->work = std::move(work);
    job->after = after;
    job->req.data = job.get();
    busy_ = true;
    job_ = &job->req;
    uv_queue_work(
        server_.loop_, &job->req, [](uv_work_t* w) { static_cast<Job*>(w->data)->work(); },
        [](uv_work_t* w, int) {
            std::unique_ptr<Job> j(static_cast<Job*>(w->data));
            PeerConn* c = j->conn;
            c->busy_ = false;
            c->job_ = nullptr;
            if (c->closed_) {
                c->close();  // frees it now that no work refers to it
                return;
            }
            (c->*(j->after))();
        });
    job.release();  // freed in its completion callback
}

void PeerConn::get_file(const std::string& name)
{
    if (const char* why = server_.shared_->check(name); *why) {
        Console::debug("peer: refused GET_FILE %s: %s", name.c_str(), why);
        refuse('\x01');
        return;
    }
    phase_ = Phase::sending;
    if (!server_.uploads_.take(this)) {
        queued_ = true;
        Acceptor::forget(this);  // waiting for its turn is not a stall
        return;                  // slot_granted() goes on, in the order of arrival
    }
    upload_slot_ = true;
    open_file();
}

// GET_RANGE (peerdex-protocol(7), FILE RANGES): what GET_FILE does, for `length` bytes from
// `offset`, after a header that gives the file's size now.
void PeerConn::get_range(const std::string& name, const std::string& offset, const std::string& length)
{
    const auto off = parse_decimal(offset, UINT64_MAX), len = parse_decimal(length, UINT64_MAX);
    if (!off || !len) {
        Console::debug("peer: refused GET_RANGE %s: the offset or length is not a number", name.c_str());
        refuse('\x02');
        return;
    }
    range_ = true;
    range_offset_ = *off;
    range_length_ = *len;
    get_file(name);
}

void PeerConn::slot_granted()
{
    upload_slot_ = true;
    queued_ = false;
    touch();  // the stall clock starts now, not when the transfer was queued
    if (const char* why = server_.shared_->check(fields_[0]); *why) {  // unpublished meanwhile
        Console::debug("peer: refused %s %s: %s", op_.c_str(), fields_[0].c_str(), why);
        refuse('\x01');
        return;
    }
    open_file();
}

void PeerConn::open_file()
{
    const SharedFiles* shared = server_.shared_;
    pool(
        [this, shared, name = fields_[0]] {
            const int fd = shared->open(name, size_);
            if (fd < 0) {
                err_ = -fd;
                return;
            }
            file_ = fd;
        },
        &PeerConn::got_file);
}

void PeerConn::got_file()
{
    if (file_ < 0) {
        Console::debug("peer: refused %s %s: %s", op_.c_str(), fields_[0].c_str(), std::strerror(err_));
        refuse(err_ == EMFILE || err_ == ENFILE || err_ == ENOMEM ? '\x02' : '\x01');
        return;
    }
    std::string head(1, '\0');
    Encoder(head).number(size_);
    if (range_) {
        if (range_offset_ > size_ || range_length_ > size_ - range_offset_) {
            Console::debug("peer: refused GET_RANGE %s: bytes %llu+%llu are outside its %llu bytes", fields_[0].c_str(),
                           static_cast<unsigned long long>(range_offset_),
                           static_cast<unsigned long long>(range_length_), static_cast<unsigned long long>(size_));
            refuse('\x02');
            return;
        }
        offset_ = range_offset_;
        size_ = range_offset_ + range_length_;
    }
    reply(std::move(head), true);
}

// GET_TREE (peerdex-protocol(7), FILE RANGES): the file's size, content id and leaf hashes,
// from the client's tree cache when it matches the file as it is now, else hashed on the
// pool. A tree is up to 2 MiB: it takes one of the slots LIST_FILES replies take.
void PeerConn::get_tree(const std::string& name)
{
    if (const char* why = server_.shared_->check(name); *why) {
        Console::debug("peer: refused GET_TREE %s: %s", name.c_str(), why);
        refuse('\x01');
        return;
    }
#ifdef PEERDEX_CONTENT_IDS
    phase_ = Phase::sending;
    if (!server_.trees_.take(this)) {
        queued_ = true;
        Acceptor::forget(this);
        return;  // build_tree() goes on, in the order of arrival
    }
    tree_slot_ = true;
    build_tree();
#else
    Console::debug("peer: refused GET_TREE %s: this build has no content ids", name.c_str());
    refuse('\x02');
#endif
}

void PeerConn::tree_built()
{
    touch();
    if (head_.empty()) {
        Console::debug("peer: refused GET_TREE %s: %s", fields_[0].c_str(),
                       err_ ? std::strerror(err_) : name_.c_str());
        // As GET_FILE answers a file it cannot open; a hash that failed is an error.
        refuse(err_ != 0 && err_ != EMFILE && err_ != ENFILE && err_ != ENOMEM ? '\x01' : '\x02');
        return;
    }
    ++server_.stats_.trees;
    reply(std::move(head_), false);
}

// LIST_FILES: `00 N·` then `name·size·mtime·` per regular file that is shared, sorted by
// name.
void PeerConn::list_files()
{
    phase_ = Phase::sending;
    if (server_.listings_ >= kMaxListings) {
        server_.list_waiting_.push_back(this);  // list_slot_freed() starts it
        return;
    }
    build_listing();
}

#ifdef PEERDEX_CONTENT_IDS
void PeerConn::build_tree()
{
    tree_slot_ = true;
    queued_ = false;
    if (const char* why = server_.shared_->check(fields_[0]); *why) {  // unpublished meanwhile
        Console::debug("peer: refused GET_TREE %s: %s", fields_[0].c_str(), why);
        refuse('\x01');
        return;
    }
    // Hashing a large file takes a while: no stall clock meanwhile (the client leaving
    // stops it).
    Acceptor::forget(this);
    pool(
        [this, shared = server_.shared_, name = fields_[0], cache = server_.tree_cache_] {
        std::uint64_t size = 0;
        const int fd = shared->open(name, size);
        if (fd < 0) {
            err_ = -fd;
            return;
        }
        ContentTree tree;
        bool cached = false;
        const HashResult r =
            tree_of_fd(fd, cache, tree, cached, name_, [this](std::uint64_t) { return !cancel_.load(); });
        ::close(fd);
        if (r != HashResult::ok)
            return;  // name_ says why
        std::string out(1, '\0');
        Encoder e(out);
        e.number(tree.size);
        e.field(content_id_text(tree.root));
        e.number(tree.leaves.size());
        out.append(reinterpret_cast<const char*>(tree.leaves.data()), tree.leaves.size() * sizeof(Digest));
        head_ = std::move(out);
        },
        &PeerConn::tree_built);
}

void PeerConn::free_tree_slot()
{
    if (!tree_slot_)
        return;
    tree_slot_ = false;
    if (PeerConn* next = server_.trees_.release())
        next->build_tree();
}
#endif

void PeerConn::build_listing()
{
    ++server_.listings_;
    list_slot_ = true;
    ++server_.stats_.listings;
    pool(
        [this, list = server_.shared_->lister()] {
            int err = 0;
            std::vector<FileEntry> files = list(err);
            if (err != 0) {
                err_ = err;
                return;
            }
            // Sized once: a doubling string would touch up to twice the reply.
            auto digits = [](std::uint64_t n) {
                std::size_t d = 1;
                while (n >= 10) {
                    n /= 10;
                    ++d;
                }
                return d;
            };
            std::size_t total = 1 + digits(files.size()) + 1;
            for (const auto& f : files)
                total += f.name.size() + digits(f.size) + digits(static_cast<std::uint64_t>(f.mtime)) + 3;
            std::string out;
            out.reserve(total);
            out.push_back('\0');
            Encoder e(out);
            e.number(files.size());
            for (const auto& f : files) {
                e.field(f.name);
                e.number(f.size);
                e.number(static_cast<std::uint64_t>(std::max<std::int64_t>(f.mtime, 0)));
            }
            head_ = std::move(out);
        },
        &PeerConn::listed);
}

void PeerConn::listed()
{
    if (gone()) {
        abandon();
        return;
    }
    if (head_.empty()) {
        Console::debug("peer: cannot list the directory: %s", std::strerror(err_));
        if (probed_) {
            close();  // 00 is out already: the cut reply is the error
            return;
        }
        refuse('\x02');
        return;
    }
    std::string out = std::move(head_);
    if (probed_)
        out.erase(0, 1);
    reply(std::move(out), false);
}

// The first byte of a LIST_FILES reply (00), sent as soon as the client half-closes: a
// client that is still there reads it as part of its reply; one that closed entirely
// answers it with a reset, which gone() sees before any listing is built for it.
void PeerConn::probe()
{
    static char status = '\0';
    probed_ = true;
    replied_ = true;
    uv_buf_t b = uv_buf_init(&status, 1);
    if (uv_write(&probe_, stream(), &b, 1, [](uv_write_t* w, int st) {
            auto* c = static_cast<PeerConn*>(w->handle->data);
            if (st < 0 && !c->closed_)
                c->abandon();
            else if (st == 0)
                c->server_.stats_.bytes_sent += 1;
        }) != 0)
        abandon();
}

bool PeerConn::gone()
{
    if (closed_)
        return true;
    if (!probed_)
        return false;
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0)
        return true;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
        return true;
#ifdef TCP_INFO
    tcp_info info{};
    len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == TCP_CLOSE)
        return true;
#endif
    return false;
}

void PeerConn::abandon()
{
    if (closed_)
        return;
    ++server_.stats_.abandoned;
    Console::debug("peer: dropped a %s request: the client left", op_.c_str());
    close();
}

void PeerConn::put_file(const std::string& name, const std::string& size_text, const char* body, const char* end)
{
    name_ = name;
    if (!valid_file_name(name)) {
        Console::debug("peer: refused PUT_FILE %s: not a plain file name", name.c_str());
        refuse('\x01');
        return;
    }
    const auto size = parse_decimal(size_text, UINT64_MAX);
    if (!size || *size > server_.max_upload_) {
        Console::debug("peer: refused PUT_FILE %s: size %s %s", name.c_str(), size_text.c_str(),
                       size ? "above --max-upload" : "is not a number");
        refuse('\x02');
        return;
    }
    phase_ = Phase::receiving;
    upload_.start(*size, body, static_cast<std::size_t>(end - body));
    set_reading(false);  // until the file is open
    const int dir = server_.shared_->upload_dir();
    pool([this, dir] { err_ = upload_.open(dir); }, &PeerConn::upload_opened);
}

void PeerConn::upload_opened()
{
    if (err_ != 0) {
        Console::debug("peer: refused PUT_FILE %s: %s", name_.c_str(), std::strerror(err_));
        refuse('\x02');
        return;
    }
    pump();
}

// Hands received bytes to the file, one write in flight; reads only while there is room.
void PeerConn::pump()
{
    if (upload_.write_ready()) {
        upload_.begin_write();
        pool([this] { err_ = upload_.write(); }, &PeerConn::chunk_written);
    }
    set_reading(upload_.wants_input());
    if (upload_.complete()) {
        phase_ = Phase::storing;
        // The final fsync may take long on a slow disk: no stall timeout while it runs.
        Acceptor::forget(this);
        pool([this] { err_ = upload_.commit(name_); }, &PeerConn::stored);
    }
}

void PeerConn::chunk_written()
{
    upload_.write_done();
    if (err_ != 0) {
        Console::debug("peer: cannot store PUT_FILE %s: %s", name_.c_str(), std::strerror(err_));
        refuse('\x02');
        return;
    }
    touch();  // a disk that keeps writing is progress, even while reading waits for it
    pump();
}

void PeerConn::stored()
{
    if (err_ != 0) {
        Console::debug("peer: cannot store PUT_FILE %s: %s", name_.c_str(), std::strerror(err_));
        refuse('\x02');
        return;
    }
    ++server_.stats_.files_uploaded;
    Console::debug("peer: stored %s (%llu bytes)", name_.c_str(), static_cast<unsigned long long>(size_));
    reply(std::string(1, '\0'), false);
}

void PeerConn::set_reading(bool on)
{
    if (on == reading_ || closed_)
        return;
    reading_ = on;
    if (on)
        uv_read_start(stream(), on_alloc, on_read);
    else
        uv_read_stop(stream());
}

void PeerConn::refuse(char code)
{
    ++server_.stats_.refused;
    phase_ = Phase::lingering;
    touch();
    reply(std::string(1, code), false);
}

void PeerConn::reply(std::string bytes, bool then_stream)
{
    replied_ = true;
    head_ = std::move(bytes);
    write_.data = then_stream ? this : nullptr;
    uv_buf_t b = uv_buf_init(head_.data(), static_cast<unsigned>(head_.size()));
    if (uv_write(&write_, stream(), &b, 1, [](uv_write_t* w, int status) {
            auto* c = static_cast<PeerConn*>(w->handle->data);
            if (status < 0 || c->closed_) {
                c->close();
                return;
            }
            c->server_.stats_.bytes_sent += c->head_.size();
            if (w->data) {
                c->read_chunk();
            } else if (c->phase_ == Phase::lingering) {
                // Our FIN after the reply; what the peer still sends is read and dropped.
                c->release_files();
                c->set_reading(true);
                if (uv_shutdown(&c->shutdown_, c->stream(), [](uv_shutdown_t*, int) {}) != 0)
                    c->close();
            } else {
                c->close();  // the peer reads the reply before our FIN
            }
        }) != 0)
        close();
}

void PeerConn::read_chunk()
{
    if (offset_ >= size_) {
        cork(false);
        ++(range_ ? server_.stats_.ranges_sent : server_.stats_.files_downloaded);
        close();
        return;
    }
    auto want = std::min<std::uint64_t>(copy_ ? kChunkBytes : kSendfileBytes, size_ - offset_);
    if (server_.rate_.limited()) {
        want = std::min<std::uint64_t>(want, server_.rate_.chunk(server_.uploads_.used));
        if (!server_.rate_.take(want, this)) {
            Acceptor::forget(this);  // waiting for the cap is not a stall: tokens_granted() touches
            return;                  // and calls again when the cap allows
        }
    }
    chunk_end_ = offset_ + want;
    if (copy_)
        read_chunk_copy();
    else
        send_chunk();
}

// The loop must not wait for a cold disk: what sendfile sends was read into the page cache
// on the pool first (readahead returns once it is there).
void PeerConn::read_ahead()
{
    const std::uint64_t from = std::max(ahead_end_, offset_);
    ahead_next_ = std::min<std::uint64_t>(size_, from + kSendfileBytes);
    if (in_page_cache(file_, from, ahead_next_ - from)) {
        ahead_end_ = ahead_next_;  // already there: no trip to the pool
        return;
    }
    ahead_busy_ = true;
    // At most kSendfileBytes: a size_t on every target.
    pool([fd = file_, from, len = static_cast<std::size_t>(ahead_next_ - from)] {
        (void)::readahead(fd, static_cast<off64_t>(from), len);
    },
         &PeerConn::read_ahead_done);
}

void PeerConn::read_ahead_done()
{
    ahead_busy_ = false;
    ahead_end_ = ahead_next_;
    if (ahead_wanted_) {
        ahead_wanted_ = false;
        send_chunk();
    }
}

void PeerConn::send_chunk()
{
    if (offset_ >= chunk_end_) {  // that chunk is out: the next one
        read_chunk();
        return;
    }
    if (chunk_end_ > ahead_end_ && !ahead_busy_)
        read_ahead();
    if (chunk_end_ > ahead_end_) {
        ahead_wanted_ = true;  // read_ahead_done() calls again
        return;
    }
    if (!server_.rate_.limited())
        cork(true);
    int sock = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &sock);
    while (offset_ < chunk_end_) {
        // The next window is read while this one is sent.
        if (!ahead_busy_ && ahead_end_ < size_ && ahead_end_ - offset_ < kSendfileBytes)
            read_ahead();
        off_t at = static_cast<off_t>(offset_);
        const ssize_t n = ::sendfile(sock, file_, &at, static_cast<std::size_t>(chunk_end_ - offset_));
        if (n > 0) {
            offset_ += static_cast<std::uint64_t>(n);
            server_.stats_.bytes_sent += static_cast<std::uint64_t>(n);
            touch();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            wait_writable();
            return;
        }
        if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
            copy_ = true;  // a file sendfile cannot read: the rest by read and write
            read_chunk_copy();
            return;
        }
        close();  // an error, or the file shrank: cut the transfer short
        return;
    }
    // The next chunk after a turn of the loop (the poll fires at once when there is room):
    // a reader as fast as the disk must not keep every other connection waiting, nor
    // nest a call per chunk.
    wait_writable();
}

// Corks or uncorks the socket (corked_ says which it is). Uncorking sends what is held.
void PeerConn::cork(bool on)
{
    if (corked_ == on)
        return;
    int sock = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &sock);
    const int v = on ? 1 : 0;
    if (::setsockopt(sock, IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0)
        corked_ = on;
}

void PeerConn::wait_writable()
{
    if (poll_fd_ < 0) {
        int sock = -1;
        uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &sock);
        poll_fd_ = ::fcntl(sock, F_DUPFD_CLOEXEC, 0);
        if (poll_fd_ < 0 || uv_poll_init_socket(server_.loop_, &poll_, poll_fd_) != 0) {
            if (poll_fd_ >= 0)
                ::close(poll_fd_);
            poll_fd_ = -1;
            close();
            return;
        }
        poll_.data = this;
    }
    uv_poll_start(&poll_, UV_WRITABLE, [](uv_poll_t* h, int status, int) {
        auto* c = static_cast<PeerConn*>(h->data);
        uv_poll_stop(h);
        if (status < 0 || c->closed_) {
            c->close();
            return;
        }
        c->send_chunk();
    });
}

void PeerConn::read_chunk_copy()
{
    if (!buf_)
        buf_ = new_buffer(kChunkBytes);
    const auto want = static_cast<unsigned>(std::min<std::uint64_t>(kChunkBytes, chunk_end_ - offset_));
    uv_buf_t b = uv_buf_init(buf_.get(), want);
    busy_ = true;
    fs_.data = this;
    uv_fs_read(server_.loop_, &fs_, file_, &b, 1, static_cast<std::int64_t>(offset_), [](uv_fs_t* req) {
        auto* c = static_cast<PeerConn*>(req->data);
        const auto n = req->result;
        uv_fs_req_cleanup(req);
        c->busy_ = false;
        if (c->closed_ || n <= 0) {  // an error, or the file shrank: cut the transfer short
            c->close();
            return;
        }
        c->offset_ += static_cast<std::uint64_t>(n);
        c->in_flight_ = static_cast<std::size_t>(n);
        uv_buf_t out = uv_buf_init(c->buf_.get(), static_cast<unsigned>(n));
        if (uv_write(&c->write_, c->stream(), &out, 1, [](uv_write_t* w, int status) {
                auto* cc = static_cast<PeerConn*>(w->handle->data);
                if (status < 0 || cc->closed_) {
                    cc->close();
                    return;
                }
                cc->server_.stats_.bytes_sent += cc->in_flight_;
                cc->touch();
                if (cc->offset_ < cc->chunk_end_)
                    cc->read_chunk_copy();
                else
                    cc->read_chunk();
            }) != 0)
            c->close();
    });
}

// The file and, for an upload not stored, its temporary name. Only when no file
// operation is in flight.
void PeerConn::release_files()
{
    close_fd(file_);
    file_ = -1;
    upload_.discard();
    buf_.reset();
}

void PeerConn::close()
{
    if (!closed_) {
        closed_ = true;
        // Work not started yet is not done at all: its callback runs with UV_ECANCELED.
        if (job_)
            uv_cancel(reinterpret_cast<uv_req_t*>(job_));
        else if (busy_)  // a GET_FILE chunk read
            uv_cancel(reinterpret_cast<uv_req_t*>(&fs_));
        Acceptor::forget(this);
        auto& waiting = server_.list_waiting_;
        waiting.erase(std::remove(waiting.begin(), waiting.end(), this), waiting.end());
        cancel_ = true;
        server_.uploads_.forget(this);
        server_.trees_.forget(this);
        server_.rate_.forget(this);
        if (upload_slot_) {
            upload_slot_ = false;
            if (PeerConn* next = server_.uploads_.release())
                next->slot_granted();
        }
        if (!busy_)
            free_slots();  // else once the listing or hash under way has ended
        if (poll_fd_ >= 0) {
            uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
                auto* c = static_cast<PeerConn*>(h->data);
                ::close(c->poll_fd_);
                c->poll_fd_ = -1;
                c->close();  // frees it if the TCP handle is closed too
            });
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
            auto* c = static_cast<PeerConn*>(h->data);
            c->tcp_.data = nullptr;
            c->server_.acceptor_.closed(c);
            if (!c->busy_ && c->poll_fd_ < 0) {
                c->free_slots();
                c->release_files();
                std::unique_ptr<PeerConn> done(c);
            }
        });
        return;
    }
    // Called again from a file callback, or the poll handle's close, after the handle
    // closed: free now.
    if (!busy_ && tcp_.data == nullptr && poll_fd_ < 0) {
        free_slots();
        release_files();
        std::unique_ptr<PeerConn> done(this);
    }
}

// The LIST_FILES and GET_TREE slots: held until no job of this connection runs, so that
// no more listings or hashes than the bounds run at once.
void PeerConn::free_slots()
{
    if (list_slot_) {
        list_slot_ = false;
        server_.list_slot_freed();
    }
#ifdef PEERDEX_CONTENT_IDS
    free_tree_slot();
#endif
}

PeerServer::PeerServer(uv_loop_t* loop, std::string listen_addr, std::uint16_t port)
    : loop_(loop),
      listen_addr_(std::move(listen_addr)),
      requested_port_(port),
      acceptor_(loop, "peerdex", AcceptorLimits{kMaxConns, kStallMs, kLingerMs, kSweepMs, 128},
                [this]() -> Accepted* { return std::make_unique<PeerConn>(*this).release(); }),
      rate_(loop)
{
    trees_.max = kMaxTreeBuilds;
    acceptor_.on_sweep([this](std::uint64_t) { drop_departed(); });
}

PeerServer::~PeerServer() = default;

void PeerServer::share_directory(int dir_fd, bool read_only, std::uint64_t max_upload)
{
    directory_ = std::make_unique<SharedDirectory>(dir_fd, read_only);
    shared_ = directory_.get();
    max_upload_ = max_upload;
}

int PeerServer::start(const char* program)
{
    if (acceptor_.listening())
        return 0;
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(kFirstFreePort, kLastFreePort);
    int rc = UV_EADDRINUSE;
    for (int i = 0; i < (requested_port_ ? 1 : kPortTries) && rc == UV_EADDRINUSE; ++i) {
        const auto port = requested_port_ ? requested_port_ : static_cast<std::uint16_t>(pick(rng));
        rc = acceptor_.listen(listen_addr_, port, requested_port_ || i + 1 == kPortTries ? program : nullptr, bound_);
        if (rc == 0)
            port_ = port;
    }
    if (rc != 0)
        return rc;
    if (started_ms_ == 0)
        started_ms_ = uv_now(loop_) | 1;
    return 0;
}

// Waiting LIST_FILES clients that left: out of the queue, without waiting for their turn.
void PeerServer::drop_departed()
{
    std::vector<PeerConn*> left;
    for (PeerConn* c : list_waiting_)
        if (c->gone())  // cheap unless the client half-closed
            left.push_back(c);
    for (PeerConn* c : left)
        c->abandon();
}

void PeerServer::list_slot_freed()
{
    --listings_;
    while (listings_ < kMaxListings && !list_waiting_.empty()) {
        PeerConn* next = list_waiting_.front();
        list_waiting_.pop_front();
        if (next->gone())
            next->abandon();  // the slot goes on to the next one at once
        else
            next->build_listing();
    }
}

RateGate::RateGate(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t{})
{
    uv_timer_init(loop, timer_);
    timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

RateGate::~RateGate()
{
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

bool RateGate::take(std::uint64_t n, PeerConn* c)
{
    // Those already waiting go first; the one fire() lets go takes its turn.
    if ((waiting_.empty() || c == granting_) && bucket_.take(n, uv_now(loop_)))
        return true;
    if (c != granting_)
        waiting_.push_back(c);
    else
        waiting_.push_front(c);  // still in debt: first in line again
    arm();
    return false;
}

void RateGate::forget(PeerConn* c)
{
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), c), waiting_.end());
}

void RateGate::arm()
{
    if (armed_ || waiting_.empty())
        return;
    armed_ = true;
    uv_update_time(loop_);
    const std::uint64_t wait = std::max<std::uint64_t>(bucket_.wait_ms(uv_now(loop_)), 1);
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
            auto* self = static_cast<RateGate*>(t->data);
            self->armed_ = false;
            self->fire();
        },
        wait, 0);
}

void RateGate::fire()
{
    while (!waiting_.empty() && bucket_.wait_ms(uv_now(loop_)) == 0) {
        PeerConn* c = waiting_.front();
        waiting_.pop_front();
        granting_ = c;
        c->tokens_granted();  // takes its tokens, or waits again at the front
        granting_ = nullptr;
    }
    arm();
}

void RateGate::halt()
{
    waiting_.clear();
    armed_ = false;
    uv_timer_stop(timer_);
}

void PeerServer::stop()
{
    acceptor_.stop([this] { drained(); });
}

void PeerServer::drain(std::uint64_t grace_ms, std::function<void()> done)
{
    drained_ = std::move(done);
    acceptor_.drain(grace_ms, [this] { drained(); });
}

void PeerServer::drained()
{
    rate_.halt();  // every connection is closed
    if (auto done = std::move(drained_))
        done();
}

std::string PeerServer::stats_text() const
{
    const std::uint64_t up = started_ms_ ? (uv_now(loop_) - started_ms_) / 1000 : 0;
    PeerStats now = stats_;
    now.open = acceptor_.open();
    now.upload_slots = uploads_.max;
    now.uploads = uploads_.used;
    now.upload_queue = uploads_.waiting.size();
    now.upload_rate = rate_.rate();
    now.rate_waiting = rate_.waiting();
    return format_stats(now, up);
}

}  // namespace peerdex
