// The shared store (--store redis://HOST:PORT[/DB] or unix:/path): the registry lives in
// Redis, so any number of trackers pointed at one Redis serve one index. Each operation is
// one call of the Lua script (redis_script.cc), atomic in Redis; the requests of every
// session are pipelined on one connection, driven by hiredis on the tracker's own loop.
//
// The keys, all under the hash tag TAG (default "{pdx}", one Redis Cluster slot):
//   TAG:u:NAME     hash: o (owner's address), k (key hash), ip, port (while connected)
//   TAG:conn       sorted set of the connected users, by order of connection
//   TAG:c:NAME     sorted set of NAME's paths, scored by their publication id
//   TAG:p:ID       hash of publication ID: u (user), p (path), d (description), and when a
//                  peerdex/2 PUBLISH gave them s (size, decimal) and i (content id, lowercase)
//   TAG:pubs       sorted set of every publication id (SEARCH's walk of last resort)
//   TAG:t:TOKEN    sorted set of the ids of the publications holding TOKEN (folded)
//   TAG:tokens     every TOKEN, lexically ordered (prefix terms of SEARCH)
//   TAG:i:ID       sorted set of the ids of the publications with content id ID (SOURCES)
//   TAG:l:NAME     the lease of NAME's liveness probes: the tracker holding it, with a TTL
//   TAG:n          hash of counts: users, conn, pubs
//   TAG:seq, TAG:snapseq   counters; TAG:snap:N  a list answer's snapshot, read in chunks
//
// Redis away: a request gets `failed` at once while no connection is up, or when its answer
// has not come within the timeout (the connection is then dropped); the store reconnects
// with backoff by itself and loads the script again.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store.hh"

struct redisAsyncContext;
struct redisReply;

namespace peerdex {

// Where Redis is, as --store names it.
struct RedisTarget {
    std::string host;       // TCP; empty for a unix socket
    int port = 6379;
    std::string unix_path;  // unix:/path
    int db = 0;
};

// Parses redis://HOST[:PORT][/DB] (HOST may be [IPv6]) or unix:/path; false and `error`.
bool parse_redis_target(std::string_view text, RedisTarget& out, std::string& error);

struct RedisOptions {
    std::string target;
    AuthMode auth = AuthMode::none;
    std::size_t search_budget = kDefaultSearchBudget;
    std::uint64_t lease_ms = 120000;  // a probe lease: twice the probe interval
    std::uint64_t timeout_ms = 3000;  // an answer not come by then fails, and the connection is dropped
    std::string tag = "{pdx}";
};

class RedisStore final : public Store {
public:
    // Checks that Redis answers and loads the script (synchronously, once, at start); null
    // and `error` ("--store TARGET: why") when it cannot.
    static std::unique_ptr<RedisStore> open(uv_loop_t* loop, const RedisOptions& options, std::string& error);
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;
    ~RedisStore() override;

    void register_user(std::string_view user, const Requester& by, Completion done) override;
    void unregister_user(std::string_view user, const Requester& by, Completion done) override;
    void connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done) override;
    void disconnect(std::string_view user, const Requester& by, Completion done) override;
    void publish(std::string_view user, const Requester& by, std::string_view path, std::string_view description,
                 const ContentMeta& meta, Completion done) override;
    void remove(std::string_view user, const Requester& by, std::string_view path, Completion done) override;
    void owns(std::string_view user, const Requester& by, Completion done) override;
    void list_users(std::string_view requester, Completion done) override;
    void list_content(std::string_view requester, std::string_view target, Completion done) override;
    void get_user_info(std::string_view requester, std::string_view target, Completion done) override;
    void search(std::string_view requester, const SearchRequest& request, Completion done) override;
    void sources(std::string_view requester, const SourcesRequest& request, Completion done) override;
    void walk_connected(std::size_t max, Completion done) override;
    void expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done) override;
    // The counts the last answer of Redis carried.
    StoreCounts counts() const override { return counts_; }
    const Histogram* commit_latency() const override { return &round_trips_; }
    bool saturated() const override;
    void close(void (*closed)(void* ctx), void* ctx) override;

private:
    class List;
    // What an answer of Redis is for, in the order the commands were sent.
    enum class Kind : std::uint8_t { plain, info, users, content, search, sources, walk, chunk, load, counts, ignore };
    struct Pending {
        Kind kind;
        Completion done;
        std::uint64_t stream = 0;  // Kind::chunk: the list it is for; load: the script; users: entries set aside
        std::uint64_t sent_ms = 0;
        std::uint64_t sent_ns = 0;  // for the round trip of GET /metrics
    };

    RedisStore(uv_loop_t* loop, const RedisOptions& options, RedisTarget target, std::vector<std::string> shas);

    // One operation of the script; `args` after the requester's fields.
    void call(Kind kind, Completion done, std::string_view op, const Requester* by,
              std::initializer_list<std::string_view> args);
    void call(Kind kind, Completion done, std::string_view op, const Requester* by,
              const std::vector<std::string_view>& args);
    // The same, the arguments in [first, last); false when it could not be sent (no connection).
    bool script(Kind kind, Completion done, std::string_view op, const Requester* by, const std::string_view* first,
                const std::string_view* last);
    bool send(Pending&& pending, const std::vector<std::string_view>& argv);
    void fetch(List& list);
    void drop_snapshot(const std::string& key);
    void answer(Pending& p, redisReply* reply);
    void walk_step();
    void walked(redisReply* reply);

    void dial();
    void lost(const char* why);
    static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_connect(const redisAsyncContext* ac, int status);
    static void on_disconnect(const redisAsyncContext* ac, int status);
    static void on_tick(uv_timer_t* timer);
    struct Io;
    static void on_prepare(uv_prepare_t* prepare);
    // Writes what hiredis has queued: at the end of a loop turn (flush), or in the middle of
    // one once kFlushEvery commands wait (flush_early).
    void flush();
    void flush_early();
    void tick();

    uv_loop_t* loop_;
    RedisOptions options_;
    RedisTarget target_;
    std::vector<std::string> shas_;  // of redis_scripts(), in their order
    std::size_t loading_ = 0;         // SCRIPT LOADs not yet answered
    void load_scripts();
    std::string me_;  // this tracker's id in the probe leases
    redisAsyncContext* ac_ = nullptr;
    bool up_ = false;  // a connection is up or being made: requests are sent
    bool closing_ = false;
    std::uint64_t backoff_ms_ = 0;
    std::uint64_t retry_at_ = 0;  // when to dial again (loop time, ms); 0: not waiting
    std::deque<Pending> pending_;
    std::size_t unflushed_ = 0;  // commands queued since the last write to Redis
    std::unordered_map<std::uint64_t, List*> lists_;
    std::uint64_t next_list_ = 1;
    StoreCounts counts_;
    Histogram round_trips_;  // each operation's script, sent to answered
    std::uint64_t counts_at_ = 0;  // when the counts were last read
    std::size_t snapshot_entries_ = 0;  // in Redis snapshots held or asked for (capped)
    std::size_t reserved_ = 0;          // set aside for the list request being sent
    std::string counts_key_;
    // The liveness walk: where the last one stopped, and the one under way.
    std::string walk_after_ = "0";
    bool walk_end_ = false;
    struct Walk {
        bool active = false;
        std::size_t max = 0;
        std::vector<UserEndpoint> users;
        Completion done{nullptr, nullptr, 0};
    } walk_;
    // Reused per call: the command's fields.
    std::vector<std::string_view> argv_;
    std::string ip_text_;
    uv_timer_t* timer_;  // timeouts and reconnection; freed in its close callback
    uv_prepare_t* prepare_;  // writes the commands of a loop turn before the loop polls
    void (*closed_)(void*) = nullptr;
    void* closed_ctx_ = nullptr;
};

}  // namespace peerdex
