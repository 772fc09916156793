#include "redis_store.hh"

#include <arpa/inet.h>
extern "C" {  // sds.h (included by the others too) declares no C linkage itself
#include <hiredis/sds.h>
}
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <netdb.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <random>
#include <utility>

#include "console.hh"
#include "redis_answer.hh"
#include "redis_connect.h"
#include "redis_script.hh"
#include "wire.hh"

namespace peerdex {

namespace {

constexpr std::size_t kChunk = 256;          // snapshot entries per read
constexpr std::size_t kMaxPending = 16384;   // answers owed before sessions stop reading
// Commands queued in one loop turn before they go to Redis without waiting for the turn's
// end: Redis starts on the first ones while the loop still reads the sessions, instead of
// the whole turn's batch arriving at once (docs/PERFORMANCE.md, Shared store).
constexpr std::size_t kFlushEvery = 8;
constexpr std::size_t kMaxSnapshotEntries = kRedisMaxListEntries;  // list entries held in Redis snapshots, per tracker
constexpr std::size_t kWalkStep = 512;       // users one walk call of the script gives at most
constexpr std::uint64_t kSnapshotMs = 600000;
constexpr std::uint64_t kMaxBackoffMs = 5000;

bool parse_int(std::string_view s, int max, int& out)
{
    if (s.empty() || s.size() > 9)
        return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    if (v > max)
        return false;
    out = v;
    return true;
}

}  // namespace

bool parse_redis_target(std::string_view text, RedisTarget& out, std::string& error)
{
    out = RedisTarget();
    if (text.substr(0, 5) == "unix:") {
        out.unix_path.assign(text.substr(5));
        if (out.unix_path.empty() || out.unix_path[0] != '/') {
            error = "a unix socket is named by its absolute path: unix:/path";
            return false;
        }
        return true;
    }
    if (text.substr(0, 8) != "redis://") {
        error = "give redis://HOST[:PORT][/DB] or unix:/path";
        return false;
    }
    std::string_view rest = text.substr(8);
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        if (!parse_int(rest.substr(slash + 1), 1 << 20, out.db)) {
            error = "the database after '/' is a number";
            return false;
        }
        rest = rest.substr(0, slash);
    }
    std::string_view port;
    if (!rest.empty() && rest[0] == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            error = "an IPv6 address is written [ADDRESS]";
            return false;
        }
        out.host.assign(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty() && rest[0] != ':') {
            error = "expected ':PORT' after the address";
            return false;
        }
        port = rest.empty() ? rest : rest.substr(1);
    } else {
        const std::size_t colon = rest.find(':');
        out.host.assign(rest.substr(0, colon));
        port = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    if (out.host.empty()) {
        error = "no host";
        return false;
    }
    if (!port.empty() && (!parse_int(port, 65535, out.port) || out.port == 0)) {
        error = "the port is a number from 1 to 65535";
        return false;
    }
    return true;
}

// A list answer: entries given in the script's answer (short lists), or read from the
// snapshot key in chunks as the session asks for them; the key is deleted at the end.
class RedisStore::List final : public ListStream {
public:
    List(RedisStore& store, Kind kind, std::size_t count, std::string key)
        : store_(store), id_(store.next_list_++), kind_(kind), count_(count), key_(std::move(key))
    {
        store_.lists_.emplace(id_, this);
        if (!key_.empty())
            store_.snapshot_entries_ += count_;
    }
    ~List() override
    {
        store_.lists_.erase(id_);
        release();
    }
    // The snapshot in Redis is no longer needed.
    void release()
    {
        if (key_.empty())
            return;
        store_.snapshot_entries_ -= count_;
        store_.drop_snapshot(std::exchange(key_, std::string()));
    }
    std::size_t count() const override { return count_; }

    Pull pull(ListSink& sink, Wakeup ready) override
    {
        while (at_ < entries_.size() && !sink.full()) {
            if (!emit(sink, entries_[at_++]))
                return Pull::failed;
            ++given_;
        }
        if (given_ >= count_) {
            if (!key_.empty())
                release();
            return Pull::end;
        }
        if (sink.full())
            return Pull::more;
        if (failed_ || key_.empty())
            return Pull::failed;
        ready_ = ready;
        if (!waiting_) {
            waiting_ = true;
            store_.fetch(*this);
        }
        return Pull::later;
    }

    // The next chunk, or (null, or no entry) the snapshot is lost.
    void arrived(const redisReply* reply)
    {
        waiting_ = false;
        entries_.clear();
        at_ = 0;
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
            failed_ = true;
        } else {
            for (std::size_t i = 0; i < reply->elements; ++i)
                entries_.emplace_back(redis_text(reply->element[i]));
            fetched_ += reply->elements;
        }
        if (ready_.fn)
            std::exchange(ready_, Wakeup())();
    }

    void take(const redisReply* reply, std::size_t first)
    {
        for (std::size_t i = first; i < reply->elements; ++i)
            entries_.emplace_back(redis_text(reply->element[i]));
        fetched_ = entries_.size();
    }

    // True when every entry read so far can be streamed (checked before the first is sent).
    bool intact() const
    {
        Collector check;
        for (const std::string& entry : entries_)
            if (!parse(entry, check))
                return false;
        return true;
    }

    std::uint64_t id() const { return id_; }
    const std::string& key() const { return key_; }
    std::size_t fetched() const { return fetched_; }

private:
    // A sink that takes anything and keeps nothing: for checking entries.
    struct Collector final : ListSink {
        void user(std::string_view, const Address&, std::uint16_t) override {}
        void content(std::string_view, std::string_view, const ContentMeta&) override {}
        void hit(std::string_view, const Address&, std::uint16_t, std::string_view, std::string_view,
                 const ContentMeta&) override {}
        void source(std::string_view, const Address&, std::uint16_t, std::string_view, std::uint64_t) override {}
        bool full() const override { return false; }
    };
    // One entry of the snapshot into the sink; false when it is damaged.
    bool parse(std::string_view entry, ListSink& sink) const
    {
        return parse_redis_entry(kind_ == Kind::users ? RedisListKind::users : RedisListKind::content, entry, sink);
    }
    bool emit(ListSink& sink, std::string_view entry)
    {
        if (parse(entry, sink))
            return true;
        Console::error("s> store: an entry of a list in Redis is damaged; the list is cut");
        return false;
    }

    RedisStore& store_;
    std::uint64_t id_;
    Kind kind_;
    std::size_t count_;
    std::string key_;
    std::vector<std::string> entries_;
    std::size_t at_ = 0;
    std::size_t given_ = 0;
    std::size_t fetched_ = 0;  // entries read from the snapshot so far
    bool waiting_ = false;
    bool failed_ = false;
    Wakeup ready_;
};

// hiredis's connection on the tracker's loop. Unlike hiredis's own libuv adapter, a command
// does not wait for a "writable" event: what the loop turn queued is written once, just
// before the loop polls (RedisStore::on_prepare), so a burst of requests costs one write and
// no change to the poll set. Only a connection still being made, or a socket whose buffer
// is full, is polled for writing.
struct RedisStore::Io {
    uv_poll_t poll;
    redisAsyncContext* ac = nullptr;  // null once hiredis let go of it
    int events = 0;                   // what the poll watches
    bool read = false;                // hiredis wants to read
    bool write = false;               // hiredis has output
    bool poll_write = false;          // ... and waits for the socket to take it

    void update()
    {
        const int want = (read ? UV_READABLE : 0) | (poll_write ? UV_WRITABLE : 0);
        if (want == events)
            return;
        events = want;
        if (want)
            uv_poll_start(&poll, want, on_event);
        else
            uv_poll_stop(&poll);
    }
    static void on_event(uv_poll_t* handle, int status, int events)
    {
        auto* io = static_cast<Io*>(handle->data);
        if (status < 0) {
            io->events = 0;  // libuv has stopped the poll: update() may start it again
            events = UV_READABLE | UV_WRITABLE;  // hiredis finds out what went wrong
        }
        if (io->ac && (events & UV_READABLE))
            redisAsyncHandleRead(io->ac);
        if (io->ac && (events & UV_WRITABLE))
            redisAsyncHandleWrite(io->ac);
    }
    static Io* of(void* data) { return static_cast<Io*>(data); }
    static void add_read(void* d)
    {
        of(d)->read = true;
        of(d)->update();
    }
    static void del_read(void* d)
    {
        of(d)->read = false;
        of(d)->update();
    }
    static void add_write(void* d)
    {
        Io* io = of(d);
        io->write = true;
        if (!(io->ac->c.flags & REDIS_CONNECTED)) {  // writable is how a connection is known made
            io->poll_write = true;
            io->update();
        }
    }
    static void del_write(void* d)
    {
        of(d)->write = false;
        of(d)->poll_write = false;
        of(d)->update();
    }
    static void cleanup(void* d)
    {
        Io* io = of(d);
        io->ac = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&io->poll),
                 [](uv_handle_t* h) { std::unique_ptr<Io> drop(static_cast<Io*>(h->data)); });
    }
    static bool attach(redisAsyncContext* ac, uv_loop_t* loop)
    {
        auto io = std::make_unique<Io>();
        if (uv_poll_init(loop, &io->poll, ac->c.fd) != 0)
            return false;
        io->poll.data = io.get();
        io->ac = ac;
        ac->ev.data = io.get();
        ac->ev.addRead = add_read;
        ac->ev.delRead = del_read;
        ac->ev.addWrite = add_write;
        ac->ev.delWrite = del_write;
        ac->ev.cleanup = cleanup;
        io.release();  // freed by cleanup, when hiredis lets go of the connection
        return true;
    }
};

void RedisStore::on_prepare(uv_prepare_t* prepare)
{
    static_cast<RedisStore*>(prepare->data)->flush();
}

void RedisStore::flush_early()
{
    unflushed_ = 0;
    if (!ac_ || !(ac_->c.flags & REDIS_CONNECTED) || static_cast<Io*>(ac_->ev.data)->poll_write)
        return;
    // Written here, not by redisAsyncHandleWrite: this may run inside one of hiredis's reply
    // callbacks, where a failed write would make hiredis free the connection under its own
    // feet. A failure is left to the end of the turn's write (flush), which hiredis handles.
    redisContext* c = &ac_->c;
    const std::size_t len = std::min<std::size_t>(sdslen(c->obuf), INT_MAX);  // sdsrange takes an int in 0.14
    if (len == 0)
        return;
    const ssize_t n = ::send(c->fd, c->obuf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
        sdsrange(c->obuf, static_cast<int>(n), -1);
}

void RedisStore::flush()
{
    unflushed_ = 0;
    if (!ac_)
        return;
    auto* io = static_cast<Io*>(ac_->ev.data);
    if (!io->write || io->poll_write)
        return;
    redisAsyncHandleWrite(ac_);  // may drop the connection (on_disconnect)
    if (ac_ && io->write) {  // the socket took part of it: wait until it takes more
        io->poll_write = true;
        io->update();
    }
}

std::unique_ptr<RedisStore> RedisStore::open(uv_loop_t* loop, const RedisOptions& options, std::string& error)
{
    RedisTarget target;
    if (!parse_redis_target(options.target, target, error)) {
        error = "--store " + options.target + ": " + error;
        return nullptr;
    }
    // A host name is resolved here, once: hiredis would resolve it again, blocking the loop,
    // at every reconnection.
    if (!target.host.empty()) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        if (const int rc = ::getaddrinfo(target.host.c_str(), nullptr, &hints, &found); rc != 0 || !found) {
            error = "--store " + options.target + ": " + (rc ? ::gai_strerror(rc) : "no address");
            return nullptr;
        }
        char text[INET6_ADDRSTRLEN] = "";
        const void* a = found->ai_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr);
        ::inet_ntop(found->ai_family, a, text, sizeof text);
        ::freeaddrinfo(found);
        target.host = text;
    }
    redisContext* c = peerdex_redis_connect(target.host.c_str(), target.port,
                                            target.unix_path.empty() ? nullptr : target.unix_path.c_str(),
                                            static_cast<long>(options.timeout_ms));
    std::vector<std::string> shas;
    if (c && !c->err)
        cap_redis_reader(c->reader);
    if (c && !c->err && target.db != 0) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "SELECT %d", target.db));
        if (r && r->type == REDIS_REPLY_ERROR)
            error = std::string(redis_text(r));
        freeReplyObject(r);
    }
    for (const RedisScript& script : redis_scripts()) {
        if (!c || c->err || !error.empty())
            break;
        auto* r = static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %b", script.text.data(), script.text.size()));
        if (r && r->type == REDIS_REPLY_STRING)
            shas.emplace_back(r->str, r->len);
        else if (r)
            error = std::string(redis_text(r));
        freeReplyObject(r);
    }
    if (!c)
        error = "cannot allocate a Redis context";
    else if (c->err)
        error = c->errstr;
    if (c)
        redisFree(c);
    if (shas.size() != redis_scripts().size()) {
        error = "--store " + options.target + ": " + (error.empty() ? "Redis gave no script id" : error);
        return nullptr;
    }
    return std::unique_ptr<RedisStore>(new RedisStore(loop, options, std::move(target), std::move(shas)));
}

RedisStore::RedisStore(uv_loop_t* loop, const RedisOptions& options, RedisTarget target,
                       std::vector<std::string> shas)
    : loop_(loop), options_(options), target_(std::move(target)), shas_(std::move(shas)),
      timer_(std::make_unique<uv_timer_t>().release()), prepare_(std::make_unique<uv_prepare_t>().release())
{
    std::random_device rd;
    char id[17];
    std::snprintf(id, sizeof id, "%08x%08x", rd(), rd());
    me_ = id;
    counts_key_ = options_.tag + ":n";
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_timer_start(timer_, on_tick, 100, 100);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
    uv_prepare_init(loop_, prepare_);
    prepare_->data = this;
    uv_prepare_start(prepare_, on_prepare);
    uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
    dial();
}

RedisStore::~RedisStore()
{
    if (ac_)  // close() was not called: the loop is going away with us
        redisAsyncFree(std::exchange(ac_, nullptr));
    if (prepare_)
        uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_prepare_t> drop(reinterpret_cast<uv_prepare_t*>(h)); });
    if (timer_)
        uv_close(reinterpret_cast<uv_handle_t*>(timer_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t> drop(reinterpret_cast<uv_timer_t*>(h)); });
}

void RedisStore::dial()
{
    retry_at_ = 0;
    redisAsyncContext* ac = target_.unix_path.empty() ? redisAsyncConnect(target_.host.c_str(), target_.port)
                                                      : redisAsyncConnectUnix(target_.unix_path.c_str());
    if (!ac || ac->err) {
        lost(ac ? ac->errstr : "cannot allocate a Redis context");
        if (ac)
            redisAsyncFree(ac);
        return;
    }
    if (!Io::attach(ac, loop_)) {
        redisAsyncFree(ac);
        lost("cannot watch the connection");
        return;
    }
    cap_redis_reader(ac->c.reader);
    ac->data = this;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    ac_ = ac;
    up_ = true;
    // Pipelined ahead of every request: the database, then the scripts (Redis may have
    // restarted without them).
    if (target_.db != 0) {
        const std::string db = std::to_string(target_.db);
        send({Kind::ignore, {nullptr, nullptr, 0}}, {"SELECT", db});
    }
    loading_ = 0;
    load_scripts();
}

void RedisStore::load_scripts()
{
    if (loading_ > 0)
        return;  // already on their way
    const auto& scripts = redis_scripts();
    for (std::size_t i = 0; i < scripts.size(); ++i)
        if (send({Kind::load, {nullptr, nullptr, 0}, i}, {"SCRIPT", "LOAD", scripts[i].text}))
            ++loading_;
}

// The connection is gone (or could not be made): what is owed has failed; dial again later.
void RedisStore::lost(const char* why)
{
    up_ = false;
    if (closing_)
        return;
    if (backoff_ms_ == 0 || retry_at_ == 0)
        Console::error("s> store: Redis at %s: %s; reconnecting", options_.target.c_str(), why);
    backoff_ms_ = std::min(kMaxBackoffMs, backoff_ms_ ? backoff_ms_ * 2 : 100);
    retry_at_ = uv_now(loop_) + backoff_ms_;
}

void RedisStore::on_connect(const redisAsyncContext* ac, int status)
{
    auto* self = static_cast<RedisStore*>(ac->data);
    if (self->ac_ != ac)
        return;
    if (status != REDIS_OK) {
        self->ac_ = nullptr;  // hiredis frees it
        self->lost(ac->errstr);
        return;
    }
    if (self->backoff_ms_)
        Console::error("s> store: Redis at %s is back", self->options_.target.c_str());
    self->backoff_ms_ = 0;
}

void RedisStore::on_disconnect(const redisAsyncContext* ac, int)
{
    auto* self = static_cast<RedisStore*>(ac->data);
    if (self->ac_ != ac)
        return;  // dropped by us
    self->ac_ = nullptr;
    self->lost(ac->err ? ac->errstr : "disconnected");
}

void RedisStore::on_tick(uv_timer_t* timer)
{
    static_cast<RedisStore*>(timer->data)->tick();
}

void RedisStore::tick()
{
    const std::uint64_t now = uv_now(loop_);
    if (ac_ && !pending_.empty() && now - pending_.front().sent_ms > options_.timeout_ms) {
        Console::error("s> store: Redis at %s gave no answer in %llu ms; dropping the connection",
                       options_.target.c_str(), static_cast<unsigned long long>(options_.timeout_ms));
        redisAsyncContext* ac = std::exchange(ac_, nullptr);
        up_ = false;
        redisAsyncFree(ac);  // every answer owed fails now
        lost("timed out");
    }
    if (!ac_ && retry_at_ != 0 && now >= retry_at_ && !closing_)
        dial();
    // The counts change through other trackers too: read them once a second (a change
    // made here brings them back with its answer).
    if (up_ && ac_ && now - counts_at_ >= 1000) {
        counts_at_ = now;
        send({Kind::counts, {nullptr, nullptr, 0}}, {"HMGET", counts_key_, "users", "conn", "pubs"});
    }
}

bool RedisStore::saturated() const
{
    return pending_.size() >= kMaxPending;
}

bool RedisStore::send(Pending&& pending, const std::vector<std::string_view>& argv)
{
    if (!up_ || !ac_)
        return false;
    constexpr std::size_t kMaxArgs = 64;  // a SEARCH of the most terms takes 29
    if (argv.size() > kMaxArgs)
        return false;  // never cut a command short
    const char* args[kMaxArgs];
    std::size_t lens[kMaxArgs];
    const std::size_t n = argv.size();
    for (std::size_t i = 0; i < n; ++i) {
        args[i] = argv[i].data();
        lens[i] = argv[i].size();
    }
    if (redisAsyncCommandArgv(ac_, on_reply, this, static_cast<int>(n), args, lens) != REDIS_OK)
        return false;
    pending.sent_ms = uv_now(loop_);
    pending.sent_ns = uv_hrtime();
    pending_.push_back(std::move(pending));
    if (++unflushed_ >= kFlushEvery)
        flush_early();
    return true;
}

void RedisStore::call(Kind kind, Completion done, std::string_view op, const Requester* by,
                      std::initializer_list<std::string_view> args)
{
    if (!script(kind, done, op, by, args.begin(), args.end()))
        done(Outcome::failed);
}

void RedisStore::call(Kind kind, Completion done, std::string_view op, const Requester* by,
                      const std::vector<std::string_view>& args)
{
    if (!script(kind, done, op, by, args.data(), args.data() + args.size()))
        done(Outcome::failed);
}

bool RedisStore::script(Kind kind, Completion done, std::string_view op, const Requester* by,
                        const std::string_view* first, const std::string_view* last)
{
    static constexpr const char* kAuth[] = {"none", "ip", "key"};
    KeyHash key;
    const bool keyed = by && !by->key.empty() && hash_key(by->key, key);
    ip_text_ = by && by->ip.family ? by->ip.str() : std::string();
    argv_.clear();
    const auto& scripts = redis_scripts();
    std::size_t which = 0;
    while (which < scripts.size() && scripts[which].op != op)
        ++which;
    if (which == scripts.size())
        return false;  // cannot happen: every verb has its script
    for (std::string_view f : {std::string_view("EVALSHA"), std::string_view(shas_[which]), std::string_view("1"),
                               std::string_view(options_.tag), op, std::string_view(kAuth[static_cast<int>(options_.auth)]),
                               std::string_view(ip_text_)})
        argv_.push_back(f);
    argv_.push_back(keyed ? std::string_view(reinterpret_cast<const char*>(key.data()), key.size())
                          : std::string_view());
    argv_.insert(argv_.end(), first, last);
    return send({kind, done, reserved_}, argv_);
}

void RedisStore::register_user(std::string_view user, const Requester& by, Completion done)
{
    call(Kind::plain, done, "register", &by, {user});
}

void RedisStore::unregister_user(std::string_view user, const Requester& by, Completion done)
{
    call(Kind::plain, done, "unregister", &by, {user});
}

void RedisStore::connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done)
{
    const std::string p = std::to_string(port);
    call(Kind::plain, done, "connect", &by, {user, p});
}

void RedisStore::disconnect(std::string_view user, const Requester& by, Completion done)
{
    call(Kind::plain, done, "disconnect", &by, {user});
}

void RedisStore::publish(std::string_view user, const Requester& by, std::string_view path,
                         std::string_view description, const ContentMeta& meta, Completion done)
{
    // Size and id as the wire writes them, empty when unknown.
    char size[20];
    const std::size_t size_len = meta.has_size ? format_decimal(meta.size, size) : 0;
    const std::string id = meta.has_id ? content_id_text(meta.id) : std::string();
    call(Kind::plain, done, "publish", &by, {user, path, description, std::string_view(size, size_len), id});
}

void RedisStore::remove(std::string_view user, const Requester& by, std::string_view path, Completion done)
{
    call(Kind::plain, done, "delete", &by, {user, path});
}

void RedisStore::owns(std::string_view user, const Requester& by, Completion done)
{
    call(Kind::plain, done, "owns", &by, {user});
}

void RedisStore::list_users(std::string_view requester, Completion done)
{
    // A long list is copied into a snapshot in Redis: the entries of the snapshots this
    // tracker holds or has asked for are capped, so that clients asking for lists faster
    // than they read them cost Redis a bounded amount of memory (the rest get the generic
    // code). What one will hold is known when Redis answers; until then, the connected count.
    const std::size_t expected = counts_.connected > kChunk ? counts_.connected : 0;
    if (snapshot_entries_ + expected > kMaxSnapshotEntries) {
        done(Outcome::failed);
        return;
    }
    snapshot_entries_ += expected;
    reserved_ = expected;
    const std::size_t owed = pending_.size();
    call(Kind::users, done, "list_users", nullptr, {requester});
    reserved_ = 0;
    if (pending_.size() == owed)  // not sent: answered already
        snapshot_entries_ -= expected;
}

void RedisStore::list_content(std::string_view requester, std::string_view target, Completion done)
{
    if (snapshot_entries_ > kMaxSnapshotEntries) {
        done(Outcome::failed);
        return;
    }
    call(Kind::content, done, "list_content", nullptr, {requester, target});
}

void RedisStore::get_user_info(std::string_view requester, std::string_view target, Completion done)
{
    call(Kind::info, done, "get_user_info", nullptr, {requester, target});
}

void RedisStore::search(std::string_view requester, const SearchRequest& request, Completion done)
{
    const bool valid = request.query && request.limit > 0 && options_.search_budget > 0;
    const std::string limit = std::to_string(request.limit);
    const std::string budget = std::to_string(options_.search_budget);
    const std::string n_include = valid ? std::to_string(request.query->include.size()) : "0";
    std::vector<std::string_view> args{requester, limit, budget, valid ? "1" : "0", n_include};
    if (valid) {
        for (const std::string& t : request.query->include)
            args.push_back(t);
        for (const std::string& t : request.query->exclude)
            args.push_back(t);
    }
    call(Kind::search, done, "search", nullptr, args);
}

void RedisStore::sources(std::string_view requester, const SourcesRequest& request, Completion done)
{
    const bool valid = request.id && request.limit > 0;
    const std::string id = valid ? content_id_text(*request.id) : std::string();
    const std::string limit = std::to_string(request.limit);
    call(Kind::sources, done, "sources", nullptr, {requester, id, limit});
}

void RedisStore::walk_connected(std::size_t max, Completion done)
{
    if (walk_.active || max == 0 || walk_end_) {
        // The round has ended (or nothing is asked): an empty list, and the next starts anew.
        walk_end_ = false;
        StoreReply r;
        r.list = std::make_unique<UserListStream>(std::vector<UserEndpoint>());
        done(std::move(r));
        return;
    }
    walk_.active = true;
    walk_.max = max;
    walk_.users.clear();
    walk_.done = done;
    walk_step();
}

void RedisStore::walk_step()
{
    const std::string step = std::to_string(std::min(kWalkStep, walk_.max - walk_.users.size()));
    const std::string lease = std::to_string(options_.lease_ms);
    const std::string_view args[] = {walk_after_, step, me_, lease};
    if (!script(Kind::walk, {nullptr, nullptr, 0}, "walk", nullptr, std::begin(args), std::end(args))) {
        walk_.active = false;
        walk_.done(Outcome::failed);
    }
}

void RedisStore::walked(redisReply* r)
{
    RedisWalkStep step;
    step.users = std::move(walk_.users);
    if (!decode_redis_walk(r, step)) {
        walk_.active = false;
        walk_.users = {};
        walk_.done(Outcome::failed);
        return;
    }
    walk_.users = std::move(step.users);
    walk_after_ = std::move(step.after);
    if (!step.at_end && walk_.users.size() < walk_.max) {
        walk_step();
        return;
    }
    if (step.at_end) {
        walk_after_ = "0";
        walk_end_ = walk_.users.size() == walk_.max;
    }
    walk_.active = false;
    StoreReply reply;
    reply.list = std::make_unique<UserListStream>(std::move(walk_.users));
    walk_.users = {};
    walk_.done(std::move(reply));
}

void RedisStore::expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done)
{
    const std::string ip_text = ip.str();
    const std::string p = std::to_string(port);
    call(Kind::plain, done, "expire", nullptr, {user, ip_text, p});
}

void RedisStore::fetch(List& list)
{
    const std::string first = std::to_string(list.fetched());
    const std::string last = std::to_string(list.fetched() + kChunk - 1);
    const std::string ttl = std::to_string(kSnapshotMs);
    Pending p{Kind::chunk, {nullptr, nullptr, 0}, list.id()};
    if (!send(std::move(p), {"LRANGE", list.key(), first, last})) {
        list.arrived(nullptr);
        return;
    }
    send({Kind::ignore, {nullptr, nullptr, 0}}, {"PEXPIRE", list.key(), ttl});
}

void RedisStore::drop_snapshot(const std::string& key)
{
    send({Kind::ignore, {nullptr, nullptr, 0}}, {"UNLINK", key});  // if it fails, the key expires
}

void RedisStore::on_reply(redisAsyncContext*, void* reply, void* privdata)
{
    auto* self = static_cast<RedisStore*>(privdata);
    if (self->pending_.empty())
        return;  // cannot happen: one answer per command sent
    Pending p = std::move(self->pending_.front());
    self->pending_.pop_front();
    auto* r = static_cast<redisReply*>(reply);
    if (!r)
        self->up_ = false;  // the connection is going: no new command until it is back
    else if (p.kind != Kind::ignore && p.kind != Kind::load && p.kind != Kind::counts)
        self->round_trips_.observe_ns(uv_hrtime() - p.sent_ns);
    self->answer(p, r);
}

void RedisStore::answer(Pending& p, redisReply* r)
{
    switch (p.kind) {
    case Kind::ignore:
        return;
    case Kind::load:
        loading_ -= loading_ > 0;
        if (r && r->type == REDIS_REPLY_STRING && p.stream < shas_.size())
            shas_[static_cast<std::size_t>(p.stream)].assign(r->str, r->len);
        else if (r)
            Console::error("s> store: Redis refused the script: %.*s", static_cast<int>(redis_text(r).size()),
                           redis_text(r).data());
        return;
    case Kind::chunk:
        if (auto it = lists_.find(p.stream); it != lists_.end())
            it->second->arrived(r);
        return;
    case Kind::walk:
        walked(r);
        return;
    case Kind::counts:
        decode_redis_counts(r, counts_);  // the last counts stay when it has another shape
        return;
    case Kind::users:
    case Kind::content:
        snapshot_entries_ -= static_cast<std::size_t>(p.stream);  // set aside for it; its List counts what it holds
        break;
    case Kind::plain:
    case Kind::info:
    case Kind::search:
    case Kind::sources:
        break;
    }
    if (r && r->type == REDIS_REPLY_ERROR) {
        const std::string_view why = redis_text(r);
        Console::error("s> store: Redis: %.*s", static_cast<int>(why.size()), why.data());
        if (why.substr(0, 8) == "NOSCRIPT")  // flushed: load them again
            load_scripts();
    }
    RedisHead head;
    if (!decode_redis_head(r, head)) {
        p.done(Outcome::failed);
        return;
    }
    // A change brings the counts it changed, as they are after it (-1 for the others).
    if (head.users >= 0)
        counts_.users = static_cast<std::size_t>(head.users);
    if (head.connected >= 0)
        counts_.connected = static_cast<std::size_t>(head.connected);
    if (head.publications >= 0)
        counts_.publications = static_cast<std::size_t>(head.publications);
    StoreReply reply;
    reply.outcome = head.outcome;
    if (reply.outcome != Outcome::ok || p.kind == Kind::plain) {
        p.done(std::move(reply));
        return;
    }
    const auto bad = [&] {
        Console::error("s> store: an answer of Redis has an unexpected shape");
        p.done(Outcome::failed);
    };
    switch (p.kind) {
    case Kind::info:
        if (!decode_redis_info(r, reply.ip, reply.port))
            return bad();
        break;
    case Kind::users:
    case Kind::content: {
        std::size_t count;
        std::string key;
        if (!decode_redis_list(r, count, key))
            return bad();
        auto list = std::make_unique<List>(*this, p.kind, count, std::move(key));
        list->take(r, kRedisListFirst);
        if (!list->intact())  // nothing sent yet: the request gets its generic code
            return bad();
        reply.list = std::move(list);
        break;
    }
    case Kind::search: {
        SearchHits hits;
        if (!decode_redis_hits(r, hits))
            return bad();
        reply.list = std::make_unique<HitStream>(std::move(hits));
        break;
    }
    case Kind::sources: {
        std::vector<ContentSource> sources;
        if (!decode_redis_sources(r, sources))
            return bad();
        reply.list = std::make_unique<SourceStream>(std::move(sources));
        break;
    }
    case Kind::plain:
    case Kind::walk:
    case Kind::chunk:
    case Kind::load:
    case Kind::counts:
    case Kind::ignore:
        break;
    }
    p.done(std::move(reply));
}

void RedisStore::close(void (*closed)(void* ctx), void* ctx)
{
    closing_ = true;
    closed_ = closed;
    closed_ctx_ = ctx;
    if (ac_) {
        up_ = false;
        redisAsyncFree(std::exchange(ac_, nullptr));  // what is still owed fails
    }
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(prepare_, nullptr)),
             [](uv_handle_t* h) { std::unique_ptr<uv_prepare_t> drop(reinterpret_cast<uv_prepare_t*>(h)); });
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(timer_, nullptr)), [](uv_handle_t* h) {
        std::unique_ptr<uv_timer_t> timer(reinterpret_cast<uv_timer_t*>(h));
        auto* self = static_cast<RedisStore*>(timer->data);
        self->closed_(self->closed_ctx_);
    });
}

}  // namespace peerdex
