#include "server.hh"

#include <sys/resource.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <utility>

#include "answer.hh"
#include "console.hh"
#include "datetime.hh"
#include "operation_log.hh"
#include "request.hh"

namespace peerdex {

namespace {

// Bytes of replies a session may queue before it stops reading further requests.
constexpr std::size_t kOutputHighWater = 256 * 1024;
// Answers a session may be waiting for at once, and all sessions together; at either cap a
// session stops reading requests until answers have gone out.
constexpr std::size_t kMaxOwedPerSession = 64;
constexpr std::size_t kMaxOwedTotal = 65536;
// Size of one chunk of a streamed list reply.
constexpr std::size_t kListChunkBytes = 64 * 1024;
constexpr std::size_t kSyncWriteBytes = 256 * 1024;  // written at once per flush, beyond which a write request
// One read buffer serves every session: the loop runs one read callback at a time.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
// After the last reply, how long a closing connection may still send before it is cut.
constexpr std::uint64_t kLingerMs = 2000;
// After SIGTERM, how long pending replies may take before every connection is cut.
constexpr std::uint64_t kDrainMs = 5000;
// File descriptors kept free for the listener, stdio and the libuv internals.
constexpr std::size_t kReservedFds = 32;
constexpr std::size_t kDefaultMaxConns = 10000;
constexpr int kListenBacklog = 4096;
// How often sessions over their search rate are looked at again.
constexpr std::uint64_t kThrottleTickMs = 10;
// Keys a HELLO session keeps (OWN), one per user it acts for; beyond, the oldest goes.
constexpr std::size_t kMaxSessionKeys = 16;

char read_buffer[kReadBufferBytes];

std::size_t default_max_conns()
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur <= kReservedFds * 2)
        return 64;
    // Compared as 64 bits: a limit past 2^32 (or RLIM_INFINITY) must not wrap a 32-bit size_t.
    return static_cast<std::size_t>(std::min<std::uint64_t>(rl.rlim_cur - kReservedFds, kDefaultMaxConns));
}

// The "host's primary address" of the init line: the first non-loopback IPv4 address
// that is up, else the first such IPv6 address, else loopback.
std::string primary_address()
{
    ifaddrs* list = nullptr;
    std::string v6;
    if (getifaddrs(&list) != 0)
        return "127.0.0.1";
    std::string v4;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        Address a = Address::from_sockaddr(i->ifa_addr);
        if (a.family == 4 && v4.empty())
            v4 = a.str();
        else if (a.family == 6 && v6.empty() && !(a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80))
            v6 = a.str();  // not link-local (fe80::/10): that needs a scope to be usable
    }
    freeifaddrs(list);
    if (!v4.empty())
        return v4;
    return v6.empty() ? "127.0.0.1" : v6;
}

}  // namespace

// ---------------------------------------------------------------------------------------

class Session final : public Accepted {
public:
    explicit Session(TrackerServer& server) : server_(server) { tcp_.data = this; }

    uv_tcp_t* tcp() override { return &tcp_; }
    void start() override;
    // Graceful stop: finish the replies owed, then close.
    void drain() override;
    void close() override;
    // Called by the sweep when the session's deadline passed.
    void expire() override;
    // The store answered the request in `slot` (TrackerServer::on_answer).
    void answered(ReplySlot& slot);
    // The list being streamed has entries ready again.
    void list_ready();
    // A free reply slot appeared while this session waited for one.
    void unstarve();

    // Hands what answers produced to the kernel (TrackerServer::on_check).
    void flush_answers();

    uv_tcp_t tcp_{};
    bool starved_ = false;     // in TrackerServer::starved_
    bool throttled_ = false;   // in TrackerServer::throttled_
    // True once the search bucket, refilled to `now`, is out of debt.
    bool search_ready(std::uint64_t now);
    // Taken out of TrackerServer::throttled_: reads again.
    void unthrottle();
    bool flush_due_ = false;   // in TrackerServer::flush_due_

private:
    enum class State { open, closing, lingering, closed };

    static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_write_t* req, int status);
    static void on_shutdown(uv_shutdown_t* req, int status);
    static void on_close(uv_handle_t* handle);

    void process(const char* p, const char* end);
    void resume();
    void submit(const Request& r);
    void submit_own(const Request& r);
    void submit_search(const Request& r, Completion done);
    void submit_sources(const Request& r, Completion done);
    // The search rate's token bucket, refilled to `now` (ms).
    void refill(std::uint64_t now);
    // Who sends requests for `user` on this session: its address and the key it showed.
    Requester requester(std::string_view user);
    void report_refusal(const ReplySlot& slot, std::string_view user);
    // Queues a reply the session gives itself (HELLO, a malformed or cut request).
    void answer_now(Op op, Outcome outcome, bool last = false);
    std::uint32_t take_slot(Op op, bool last);
    void log_completed();
    void advance();
    void pop_front();
    void finish_after_reply();
    void flush();
    void progress();
    bool backlogged();
    const Address& peer();
    std::string peer_text();

    TrackerServer& server_;
    ReplySlots& slots() { return server_.slots_; }

    RequestParser parser_;
    Address peer_;
    std::uint16_t peer_port_ = 0;
    std::string out_;       // replies not yet handed to the kernel
    std::string inflight_;  // the buffer of the write in progress
    std::string stash_;     // input read but not parsed while the session is backlogged
    std::vector<std::pair<std::string, std::string>> keys_;  // OWN: (user, key), oldest first
    SearchQuery query_;             // the SEARCH being submitted (reused)
    double search_tokens_ = -1;     // the search rate's bucket; < 0: in debt (and at first: unset)
    std::uint64_t search_stamp_ = 0;
    uv_write_t write_req_{};
    uv_shutdown_t shutdown_req_{};
    std::uint32_t front_ = kNoSlot;  // the replies owed, in request order
    std::uint32_t back_ = kNoSlot;
    std::size_t owed_ = 0;
    State state_ = State::open;
    bool hello_ = false;
    Dialect dialect_ = Dialect::v1;  // what the last HELLO asked for (peerdex-protocol(7), SESSIONS)
    bool writing_ = false;
    bool flushing_ = false;  // in flush(): a call from within returns at once
    bool reading_ = false;
    bool eof_ = false;
    bool linger_ = false;     // input may still arrive after the last reply: close with a linger
    bool streaming_ = false;  // the front reply is a list whose entries are going out
    bool list_wait_ = false;  // ... and its stream has none ready yet
    bool submitting_ = false; // inside a store call: an answer now is written after it returns
};

// ---- Session --------------------------------------------------------------------------

// What the operation log records of a request: its user, the path of PUBLISH and DELETE,
// its timestamp (empty when absent).
struct LogFields {
    std::string_view user, path, timestamp;
};

static LogFields log_fields(const Request& r)
{
    // SEARCH's query and SOURCES's id go where a path would (peerdex-protocol(7), OPERATION LOG).
    const bool has_path = r.op == Op::publish || r.op == Op::remove || r.op == Op::search || r.op == Op::sources;
    return {r.fields[0], has_path ? std::string_view(r.fields[1]) : std::string_view(),
            r.has_timestamp ? std::string_view(r.timestamp) : std::string_view()};
}

// Gives a completed operation to the operation log: from the request while it is still the
// parser's, else from the copies kept in the slot.
static void record(OperationLog& oplog, ReplySlot& slot)
{
    const LogFields f = slot.request ? log_fields(*slot.request) : LogFields{slot.user, slot.path, slot.timestamp};
    oplog.record(spec(slot.op).name, f.user, f.path, f.timestamp);
    slot.logged = false;
}

// The peer's address costs a system call: only CONNECT and -v messages need it.
const Address& Session::peer()
{
    if (peer_.family == 0) {
        sockaddr_storage ss{};
        int len = sizeof ss;
        if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            peer_ = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
            peer_port_ = port_of(reinterpret_cast<sockaddr*>(&ss));
        }
    }
    return peer_;
}

void Session::start()
{
    ++server_.metrics_.sessions;
    progress();
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
    if (!reading_)
        close();
}

std::string Session::peer_text()
{
    peer();
    std::string s = peer_.family == 6 ? "[" + peer_.str() + "]" : peer_.str();
    return s + ":" + std::to_string(peer_port_);
}

void Session::progress()
{
    // A slow reader of a long reply is fine as long as it keeps making progress.
    if (state_ == State::open || state_ == State::closing)
        server_.acceptor_.touch(this);
}

bool Session::backlogged()
{
    if (out_.size() >= kOutputHighWater || streaming_ || owed_ >= kMaxOwedPerSession || throttled_)
        return true;
    if (search_tokens_ < 0 && search_stamp_ != 0) {
        refill(uv_now(server_.loop_));
        if (search_tokens_ < 0) {
            throttled_ = true;
            ++server_.search_throttled_;
            server_.throttle(this);
            return true;
        }
    }
    if (!slots().full() && !server_.store_->saturated())
        return false;
    if (!starved_) {  // woken by the server's check handle when a slot frees
        starved_ = true;
        server_.starved_.push_back(this);
    }
    return true;
}

void Session::on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf)
{
    *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

void Session::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
{
    auto* s = static_cast<Session*>(stream->data);
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || s->state_ == State::lingering) {
            s->close();
            return;
        }
        // Half-closed: libuv stopped reading. Replies already owed still go out.
        s->eof_ = true;
        s->reading_ = false;
        if (s->state_ == State::open) {
            if (s->parser_.in_progress() && s->parser_.op_known()) {
                // The request can never complete: it gets its generic error.
                Console::debug("s> truncated %s request from %s", spec(s->parser_.op()).name.data(),
                               s->peer_text().c_str());
                s->answer_now(s->parser_.op(), Outcome::failed, /*last=*/true);
            }
            s->finish_after_reply();
        }
        s->flush();
        return;
    }
    if (s->state_ != State::open)
        return;  // closing: input after the last reply is discarded
    s->progress();
    s->server_.metrics_.bytes_in += static_cast<std::uint64_t>(nread);
    s->process(buf->base, buf->base + nread);
    s->flush();
}

void Session::process(const char* p, const char* end)
{
    while (p < end && state_ == State::open) {
        if (backlogged()) {
            // Keep the rest for later and stop reading: the peer must read its replies first.
            stash_.assign(p, end);
            if (reading_) {
                uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
                reading_ = false;
            }
            return;
        }
        switch (parser_.feed(p, end)) {
        case RequestParser::Result::need_more:
            return;
        case RequestParser::Result::request:
            submit(parser_.request());
            if (!hello_) {
                linger_ = linger_ || p != end;  // bytes after the one request: more may follow
                finish_after_reply();           // canonical: one operation per connection
            }
            break;
        case RequestParser::Result::malformed:
            Console::debug("s> malformed %s request from %s", std::string(op_name(parser_.op())).c_str(),
                           peer_text().c_str());
            answer_now(parser_.op(), Outcome::failed, /*last=*/true);
            linger_ = true;
            finish_after_reply();
            break;
        case RequestParser::Result::unknown_op:
            Console::debug("s> unknown operation from %s", peer_text().c_str());
            linger_ = true;
            finish_after_reply();
            break;
        }
    }
}

std::uint32_t Session::take_slot(Op op, bool last)
{
    const std::uint32_t i = slots().acquire(this, last);  // backlogged() saw room, or it is the last
    ReplySlot& slot = slots()[i];
    slot.op = op;
    slot.dialect = dialect_;
    slot.started_ns = uv_hrtime();
    (back_ == kNoSlot ? front_ : slots()[back_].next) = i;
    back_ = i;
    ++owed_;
    return i;
}

void Session::answer_now(Op op, Outcome outcome, bool last)
{
    ReplySlot& slot = slots()[take_slot(op, last)];
    slot.reply.outcome = outcome;
    slot.done = true;
    advance();
}

Requester Session::requester(std::string_view user)
{
    Requester by{peer(), {}};
    for (const auto& [name, key] : keys_)
        if (name == user)
            by.key = key;
    return by;
}

// HELLO's OWN (peerdex-protocol(7), OWNERSHIP): the session keeps the key for its later
// requests on that user, and the store says whether they may change it.
void Session::submit_own(const Request& r)
{
    if (!hello_) {
        answer_now(Op::own, Outcome::failed);
        return;
    }
    const std::string_view user = r.fields[0];
    auto it = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k.first == user; });
    if (it != keys_.end())
        keys_.erase(it);
    else if (keys_.size() >= kMaxSessionKeys)
        keys_.erase(keys_.begin());
    if (!r.fields[1].empty())
        keys_.emplace_back(std::string(user), r.fields[1]);
    const std::uint32_t i = take_slot(Op::own, false);
    ReplySlot& slot = slots()[i];
    const Completion done(&TrackerServer::on_answer, &server_, ReplySlots::token(i, slot.generation));
    submitting_ = true;
    server_.store_->owns(user, requester(user), done);
    submitting_ = false;
    advance();
}

void Session::refill(std::uint64_t now)
{
    const double rate = server_.options_.search_rate;
    if (search_stamp_ == 0)
        search_tokens_ = rate;  // a full bucket to start with
    else
        search_tokens_ = std::min(rate, search_tokens_ + static_cast<double>(now - search_stamp_) * rate / 1000.0);
    search_stamp_ = now;
}

bool Session::search_ready(std::uint64_t now)
{
    refill(now);
    return search_tokens_ >= 0;
}

void Session::unthrottle()
{
    resume();
    flush();
}

// SEARCH (peerdex-protocol(7), SEARCH): the query and the limit are judged here and the
// store answers `failed` for a bad one after the requester's checks; the limit is capped
// by --max-results. Each SEARCH takes a token from the session's bucket: once in debt,
// the session is not read until the bucket refills.
void Session::submit_search(const Request& r, Completion done)
{
    const unsigned limit = parse_search_limit(r.fields[2]);
    const bool valid = limit != 0 && parse_query(r.fields[1], query_) == QueryFault::none;
    const SearchRequest request{valid ? &query_ : nullptr, std::min(limit, server_.options_.max_results)};
    ++server_.searches_;
    if (server_.options_.search_rate != 0) {
        refill(uv_now(server_.loop_));
        search_tokens_ -= 1;
    }
    server_.store_->search(r.fields[0], request, done);
}

// SOURCES (peerdex-protocol(7), SOURCES): the id and the limit are judged here as SEARCH's
// are, and the store answers `failed` for a bad one after the requester's checks; the limit
// is capped by --max-results. An index lookup, not a walk: no search tokens are taken.
void Session::submit_sources(const Request& r, Completion done)
{
    const unsigned limit = parse_search_limit(r.fields[2]);
    Digest id;
    const bool valid = limit != 0 && parse_content_id(r.fields[1], id);
    server_.store_->sources(r.fields[0], {valid ? &id : nullptr, std::min(limit, server_.options_.max_results)}, done);
}

// An ownership refusal (--auth): counted, and with -v said with who tried what on whom.
void Session::report_refusal(const ReplySlot& slot, std::string_view user)
{
    ++server_.ownership_refused_;
    if (Console::verbose())
        Console::debug("s> %s of %.*s refused from %s: the user belongs to another %s", spec(slot.op).name.data(),
                       static_cast<int>(user.size()), user.data(), peer_text().c_str(),
                       server_.options_.auth == AuthMode::key ? "address or key" : "address");
}

void Session::submit(const Request& r)
{
    const std::string_view user = r.fields[0];
    if (r.op == Op::own) {
        submit_own(r);
        return;
    }
    if (r.op == Op::hello) {
        // The version asked for shapes the requests after this one, and their answers.
        const std::optional<Dialect> dialect = hello_dialect(user);
        const bool ok = dialect.has_value();
        if (ok) {
            hello_ = true;
            dialect_ = *dialect;
            parser_.set_dialect(*dialect);
            uv_tcp_nodelay(&tcp_, 1);  // pipelined replies must not wait for Nagle
        }
        answer_now(Op::hello, ok ? Outcome::ok : Outcome::failed);
        if (!ok)
            finish_after_reply();
        return;
    }
    Console::line("s> OPERATION %s FROM %.*s", spec(r.op).name.data(), static_cast<int>(user.size()), user.data());
    if (Console::verbose() && r.has_timestamp)
        Console::debug("s> %s from %s at %s", spec(r.op).name.data(), peer_text().c_str(), r.timestamp.c_str());

    const std::uint32_t i = take_slot(r.op, false);
    ReplySlot& slot = slots()[i];
    slot.logged = server_.oplog_ != nullptr;
    slot.request = &r;
    const Completion done(&TrackerServer::on_answer, &server_, ReplySlots::token(i, slot.generation));
    Store& store = *server_.store_;
    submitting_ = true;
    switch (r.op) {
    case Op::hello:
    case Op::own:
        break;  // answered above
    case Op::register_user:
        store.register_user(user, requester(user), done);
        break;
    case Op::unregister_user:
        store.unregister_user(user, requester(user), done);
        break;
    case Op::connect:
        store.connect(user, requester(user), *parse_port(r.fields[1]), done);
        break;
    case Op::publish:
        store.publish(user, requester(user), r.fields[1], r.fields[2], r.meta, done);
        break;
    case Op::remove:
        store.remove(user, requester(user), r.fields[1], done);
        break;
    case Op::disconnect:
        store.disconnect(user, requester(user), done);
        break;
    case Op::list_users:
        store.list_users(user, done);
        break;
    case Op::list_content:
        store.list_content(user, r.fields[1], done);
        break;
    case Op::get_user_info:
        store.get_user_info(user, r.fields[1], done);
        break;
    case Op::search:
        submit_search(r, done);
        break;
    case Op::sources:
        submit_sources(r, done);
        break;
    }
    submitting_ = false;
    if (!slot.done && server_.options_.auth != AuthMode::none)
        slot.user.assign(user);  // to name it if the later answer is a refusal
    if (slot.done)
        log_completed();
    if (slot.logged) {
        // It will be logged later, when the parser's buffers hold other requests.
        const LogFields f = log_fields(r);
        slot.user.assign(f.user);
        slot.path.assign(f.path);
        slot.timestamp.assign(f.timestamp);
    }
    slot.request = nullptr;
    advance();
}

void Session::answered(ReplySlot& slot)
{
    slot.done = true;
    if (slot.reply.outcome == Outcome::not_owner && slot.op != Op::own)
        report_refusal(slot, slot.request ? std::string_view(slot.request->fields[0]) : std::string_view(slot.user));
    if (submitting_)
        return;  // submit() goes on once the store call has returned
    log_completed();
    advance();
    resume();  // the answer may free the session without a byte to write (an empty list's end)
    // A store answers in bursts (a committed batch): the replies of one burst leave in one
    // write per session, at the end of the loop turn.
    if (!flush_due_ && state_ != State::closed) {
        flush_due_ = true;
        server_.flush_later(this);
    }
}

void Session::flush_answers()
{
    flush_due_ = false;
    flush();
}

// The operation log records an operation once it has completed, in the session's request
// order: the completed slots from the front, up to the first still waiting.
void Session::log_completed()
{
    for (std::uint32_t i = front_; i != kNoSlot; i = slots()[i].next) {
        ReplySlot& slot = slots()[i];
        if (!slot.done)
            return;
        if (slot.logged)
            record(*server_.oplog_, slot);
    }
}

// Writes the replies at the front that are complete, in request order, and streams the
// entries of a list reply in chunks of kListChunkBytes as the peer reads them.
void Session::advance()
{
    while (front_ != kNoSlot && state_ != State::closed) {
        ReplySlot& slot = slots()[front_];
        if (!slot.done)
            return;
        if (!streaming_) {
            const std::uint8_t code = encode_answer(out_, slot.op, slot.reply, slot.dialect);
            TrackerMetrics& m = server_.metrics_;
            const auto op = static_cast<std::size_t>(slot.op);
            ++m.replies[op][std::min<std::size_t>(code, TrackerMetrics::kCodes - 1)];
            m.latency[op].observe_ns(uv_hrtime() - slot.started_ns);
            if (code == 0 && slot.op == Op::search && slot.reply.list)
                m.search_hits += slot.reply.list->count();
            if (code != 0 && Console::verbose())
                Console::debug("s> %s from %s refused with code %u", spec(slot.op).name.data(), peer_text().c_str(),
                               code);
            streaming_ = code == 0 && slot.reply.list;
        }
        if (streaming_) {
            if (list_wait_ || out_.size() >= kListChunkBytes)
                return;  // flush() comes back when the chunk is written
            ListEncoder chunk(out_, out_.size() + kListChunkBytes, slot.dialect);
            const Wakeup ready{&TrackerServer::on_list_ready, &server_, ReplySlots::token(front_, slot.generation)};
            switch (slot.reply.list->pull(chunk, ready)) {
            case ListStream::Pull::more:
                return;
            case ListStream::Pull::later:
                list_wait_ = true;
                return;
            case ListStream::Pull::end:
                streaming_ = false;
                break;
            case ListStream::Pull::failed:
                // Its count is on the wire already: the only honest end is to close.
                Console::error("s> a list for %s could not be completed; connection closed", peer_text().c_str());
                close();
                return;
            }
        }
        pop_front();
    }
}

void Session::pop_front()
{
    const std::uint32_t i = front_;
    front_ = slots()[i].next;
    if (front_ == kNoSlot)
        back_ = kNoSlot;
    --owed_;
    slots().release(i);
}

void Session::list_ready()
{
    list_wait_ = false;
    advance();
    resume();  // a list may end with nothing more to write: reading starts again here
    flush();
}

void Session::unstarve()
{
    starved_ = false;
    resume();
    flush();
}

void Session::finish_after_reply()
{
    state_ = State::closing;
    stash_.clear();
}

void Session::flush()
{
    if (flushing_)
        return;  // called again from within (resume below): the loop below goes on
    flushing_ = true;
    // Bytes written at once in this call: past a bound the rest goes by a write request, so
    // that a fast reader of a long list cannot keep the loop from the other sessions.
    std::size_t written = 0;
    while (!writing_ && state_ != State::closed) {
        if (out_.empty() && streaming_)
            advance();
        if (out_.empty() || state_ == State::closed)
            break;
        // On a session that goes on, most replies fit in the socket's buffer: written at once,
        // without a write request, whose completion would cost a change of the poll set per
        // reply (libuv 1.44 stops watching for POLLOUT even when it was not watching). The
        // last reply of a closing session keeps the write request: closing in the same turn
        // measured 13 % fewer canonical operations per second, at the same CPU per operation.
        uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
        int n = state_ == State::open && written < kSyncWriteBytes
                    ? uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1)
                    : 0;
        if (n == UV_EAGAIN || n == UV_ENOSYS)
            n = 0;
        if (n < 0) {
            flushing_ = false;
            close();
            return;
        }
        written += static_cast<std::size_t>(n);
        server_.metrics_.bytes_out += static_cast<std::uint64_t>(n);
        if (static_cast<std::size_t>(n) == out_.size()) {
            out_.clear();  // as on_write does after a write: more may be read and answered
            progress();
            resume();
            continue;
        }
        out_.erase(0, static_cast<std::size_t>(n));
        inflight_.swap(out_);
        out_.clear();
        b = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
        if (uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, on_write) != 0) {
            flushing_ = false;
            close();
            return;
        }
        writing_ = true;
    }
    flushing_ = false;
    if (writing_ || state_ == State::closed || !out_.empty())
        return;
    if (state_ == State::closing && front_ == kNoSlot) {
        // Every reply is out. After a well-formed request that ended its input, close
        // now, as a canonical client expects (nginx's lingering-close heuristic). When
        // more input came or may still come (a refused request), send FIN and wait,
        // bounded, for the peer's own close, so that unread input does not turn our
        // close into a reset that eats the reply.
        if (!linger_) {
            close();
            return;
        }
        state_ = State::lingering;
        server_.acceptor_.linger(this);
        if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) != 0)
            close();
    }
}

void Session::on_write(uv_write_t* req, int status)
{
    auto* s = static_cast<Session*>(req->handle->data);
    s->writing_ = false;
    if (status == 0)
        s->server_.metrics_.bytes_out += s->inflight_.size();
    s->inflight_.clear();
    if (status < 0 || s->state_ == State::closed) {
        s->close();
        return;
    }
    s->progress();
    s->resume();
    s->flush();
}

void Session::resume()
{
    if (state_ != State::open || backlogged())
        return;
    if (!stash_.empty()) {
        std::string input;
        input.swap(stash_);
        process(input.data(), input.data() + input.size());
    }
    if (state_ == State::open && !backlogged() && !reading_)
        reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
}

void Session::on_shutdown(uv_shutdown_t* req, int status)
{
    auto* s = static_cast<Session*>(req->handle->data);
    if (status == UV_ECANCELED || s->state_ == State::closed)
        return;
    if (status < 0 || s->eof_) {
        s->close();
        return;
    }
    if (!s->reading_)  // wait, bounded by the linger deadline, for the peer's EOF
        s->reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&s->tcp_), on_alloc, on_read) == 0;
}

void Session::drain()
{
    if (state_ == State::open && !parser_.in_progress() && out_.empty() && !writing_ && front_ == kNoSlot) {
        close();
        return;
    }
    if (state_ == State::open)
        finish_after_reply();
    flush();
}

void Session::expire()
{
    if (owed_ > 0 && state_ != State::lingering) {
        // Waiting for the store is not idleness: the answer owed is what it waits for.
        server_.acceptor_.touch(this);
        return;
    }
    if (state_ == State::open && Console::verbose())
        Console::debug("s> idle timeout for %s", peer_text().c_str());
    close();
}

void Session::close()
{
    if (state_ == State::closed)
        return;
    state_ = State::closed;
    Acceptor::forget(this);
    // Answers still owed are dropped, but what the store did is still logged: a completed
    // operation now, one still waiting when its answer comes (the slot stays, orphaned).
    while (front_ != kNoSlot) {
        const std::uint32_t i = front_;
        ReplySlot& slot = slots()[i];
        front_ = slot.next;
        if (slot.logged && slot.done)
            record(*server_.oplog_, slot);
        if (slot.logged) {
            slot.owner = nullptr;
            slot.orphan = true;
        } else {
            slots().release(i);
        }
    }
    back_ = kNoSlot;
    owed_ = 0;
    streaming_ = list_wait_ = false;
    if (starved_) {
        auto& waiting = server_.starved_;
        waiting.erase(std::find(waiting.begin(), waiting.end(), this));
        starved_ = false;
    }
    if (flush_due_) {
        auto& due = server_.flush_due_;
        due.erase(std::find(due.begin(), due.end(), this));
        flush_due_ = false;
    }
    if (throttled_) {
        auto& waiting = server_.throttled_;
        waiting.erase(std::find(waiting.begin(), waiting.end(), this));
        throttled_ = false;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Session::on_close(uv_handle_t* handle)
{
    std::unique_ptr<Session> self(static_cast<Session*>(handle->data));
    self->server_.acceptor_.closed(self.get());
}

// ---- TrackerServer --------------------------------------------------------------------

namespace {

AcceptorLimits session_limits(const TrackerOptions& o)
{
    AcceptorLimits l;
    l.max_conns = o.max_conns ? o.max_conns : default_max_conns();
    l.idle_ms = o.idle_timeout_ms;
    l.linger_ms = kLingerMs;
    l.sweep_ms = std::clamp<std::uint64_t>(o.idle_timeout_ms / 4, 50, 1000);
    l.backlog = kListenBacklog;
    return l;
}

}  // namespace

TrackerServer::TrackerServer(uv_loop_t* loop, TrackerOptions options, std::unique_ptr<Store> store)
    : loop_(loop),
      options_(std::move(options)),
      store_(std::move(store)),
      slots_(kMaxOwedTotal),
      acceptor_(loop, "peerdex-tracker", session_limits(options_),
                [this]() -> Accepted* { return std::make_unique<Session>(*this).release(); })
{
}

TrackerServer::~TrackerServer() = default;

int TrackerServer::start()
{
    sockaddr_storage ss{};
    if (int rc = acceptor_.listen(options_.listen_addr, options_.port, "peerdex-tracker", ss); rc != 0)
        return rc;
    const Address bound = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    const bool wildcard = std::all_of(std::begin(bound.bytes), std::end(bound.bytes), [](auto b) { return b == 0; });
    const std::string ip = wildcard ? primary_address() : bound.str();
    const unsigned bound_port = port_of(reinterpret_cast<sockaddr*>(&ss));
    Console::banner("s> init server %s:%u", ip.c_str(), bound_port);

    uv_idle_init(loop_, &flush_idle_);
    flush_idle_.data = this;
    uv_check_init(loop_, &flush_);
    flush_.data = this;
    uv_check_start(&flush_, on_check);
    uv_unref(reinterpret_cast<uv_handle_t*>(&flush_));
    uv_timer_init(loop_, &throttle_timer_);
    throttle_timer_.data = this;
    if (options_.probe.interval_ms > 0) {
        prober_ = std::make_unique<Prober>(loop_, *store_, options_.probe, [this](std::string_view u) { expired(u); });
        prober_->start();
    }
    started_ = true;
    return 0;
}

// Answers given in the poll phase (a store's thread reporting through an async handle) are
// written by the check handle in the same loop turn; the idle handle, active while any are
// due, keeps the loop from blocking in poll when they were given after the check ran.
void TrackerServer::flush_later(Session* s)
{
    flush_due_.push_back(s);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&flush_idle_)))
        uv_idle_start(&flush_idle_, [](uv_idle_t* idle) { static_cast<TrackerServer*>(idle->data)->flush_answers(); });
}

void TrackerServer::flush_answers()
{
    uv_idle_stop(&flush_idle_);
    // flush() may close a session, which takes it out of the list.
    while (!flush_due_.empty()) {
        Session* s = flush_due_.back();
        flush_due_.pop_back();
        s->flush_answers();
    }
}

void TrackerServer::on_check(uv_check_t* check)
{
    auto* self = static_cast<TrackerServer*>(check->data);
    self->flush_answers();
    while (!self->starved_.empty() && !self->slots_.full() && !self->store_->saturated()) {
        Session* s = self->starved_.back();
        self->starved_.pop_back();
        s->unstarve();
    }
    Console::flush();
}

void TrackerServer::throttle(Session* s)
{
    throttled_.push_back(s);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&throttle_timer_)))
        uv_timer_start(&throttle_timer_, on_throttle_timer, kThrottleTickMs, kThrottleTickMs);
}

void TrackerServer::on_throttle_timer(uv_timer_t* timer)
{
    auto* self = static_cast<TrackerServer*>(timer->data);
    const std::uint64_t now = uv_now(self->loop_);
    auto& waiting = self->throttled_;
    for (std::size_t i = 0; i < waiting.size();) {
        Session* s = waiting[i];
        if (!s->search_ready(now)) {
            ++i;
            continue;
        }
        // Out of the list before it reads again: it may be throttled anew (appended, and
        // still in debt when met) or closed.
        waiting[i] = waiting.back();
        waiting.pop_back();
        s->throttled_ = false;
        s->unthrottle();
    }
    if (waiting.empty())
        uv_timer_stop(&self->throttle_timer_);
}

void TrackerServer::on_answer(void* ctx, std::uint64_t token, StoreReply&& reply)
{
    auto* self = static_cast<TrackerServer*>(ctx);
    ReplySlot* slot = self->slots_.find(token);
    if (!slot || slot->done)
        return;  // its session closed and nothing is left to log
    if (slot->orphan) {
        slot->done = true;
        record(*self->oplog_, *slot);
        self->slots_.release(static_cast<std::uint32_t>(token));
        return;
    }
    slot->reply = std::move(reply);
    slot->owner->answered(*slot);
}

void TrackerServer::on_list_ready(void* ctx, std::uint64_t token)
{
    auto* self = static_cast<TrackerServer*>(ctx);
    if (ReplySlot* slot = self->slots_.find(token); slot && slot->owner)
        slot->owner->list_ready();
}

// Every session is gone: the store closes, and uv_run can return.
void TrackerServer::finish()
{
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_idle_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&throttle_timer_), nullptr);
    store_->close([](void*) {}, nullptr);
}

// The store disconnected a user whose peer stopped answering (peerdex-protocol(7), EXPIRY):
// said on the console and logged like an operation, with the tracker's own timestamp.
void TrackerServer::expired(std::string_view user)
{
    Console::line("s> EXPIRE %.*s", static_cast<int>(user.size()), user.data());
    if (oplog_)
        oplog_->record("EXPIRE", user, {}, course_timestamp(std::time(nullptr)));
}

void TrackerServer::stop()
{
    if (stopping_ || !started_)
        return;
    stopping_ = true;
    if (prober_)
        prober_->stop();
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_), nullptr);
    acceptor_.drain(kDrainMs, [this] { finish(); });
}

}  // namespace peerdex
