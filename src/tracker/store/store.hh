// The tracker's store: one verb per operation of peerdex-protocol(7), TRACKER REQUESTS, each
// answering through a Completion. The session layer (server.cc) submits, the protocol layer
// (answer.hh) encodes, and a store only says what happened. A new backend is a class of its
// own files here plus one line in make_store(); nothing above this interface changes.
//
// The contract every backend keeps, and that tests/unit/store_suite.cc checks:
//  * the arguments of a verb are valid only during the call: a store that answers later
//    copies what it keeps;
//  * `done` is called exactly once, on the loop thread, either before the verb returns or on
//    a later loop turn;
//  * the checks of each operation run in the order of the protocol page, and the first that
//    fails is the outcome;
//  * a list answer is a snapshot: its count and entries are those of the moment the store
//    answered, however long the stream takes and whatever changes meanwhile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "address.hh"
#include "metrics.hh"
#include "owner.hh"
#include "protocol.hh"
#include "search.hh"

typedef struct uv_loop_s uv_loop_t;

namespace peerdex {

// Where the entries of a list go; the protocol layer encodes them.
class ListSink {
public:
    virtual void user(std::string_view name, const Address& ip, std::uint16_t port) = 0;
    // One publication of LIST_CONTENT; `meta` is kUnknownContent unless a peerdex/2 PUBLISH
    // gave a size (and an id).
    virtual void content(std::string_view path, std::string_view description, const ContentMeta& meta) = 0;
    // One hit of SEARCH: whose publication, where its peer listens, what it is.
    virtual void hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                     std::string_view description, const ContentMeta& meta) = 0;
    // One source of SOURCES: whose publication of the id, where its peer listens, its path
    // and size (a publication with an id always has a size). Its own entry rather than hit()
    // with an unused description: the two answers have different fields on the wire.
    virtual void source(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                        std::uint64_t size) = 0;
    // True once the chunk being built is big enough: the stream pauses there.
    virtual bool full() const = 0;

protected:
    ~ListSink() = default;
};

// A one-shot notification on the loop: (ctx, token) tell the receiver what it is about, so
// that a receiver gone meanwhile can recognise a stale token and ignore it.
struct Wakeup {
    void (*fn)(void* ctx, std::uint64_t token) = nullptr;
    void* ctx = nullptr;
    std::uint64_t token = 0;
    void operator()() const { fn(ctx, token); }
};

// The entries of one list answer, pulled in bounded chunks.
class ListStream {
public:
    enum class Pull : std::uint8_t {
        more,   // the sink is full; pull again
        end,    // every entry has been given
        later,  // no entry is ready: `ready` will be called once, then pull again
        failed, // the rest cannot be given (a shared store lost it): the answer is cut short
    };
    virtual ~ListStream() = default;
    virtual std::size_t count() const = 0;
    virtual Pull pull(ListSink& sink, Wakeup ready) = 0;
};

// A user and where its peer listens.
struct UserEndpoint {
    std::string name;
    Address ip;
    std::uint16_t port = 0;
};

// A list given whole, as users (the liveness walk's answer).
class UserListStream final : public ListStream {
public:
    explicit UserListStream(std::vector<UserEndpoint>&& users) : users_(std::move(users)) {}
    std::size_t count() const override { return users_.size(); }
    Pull pull(ListSink& sink, Wakeup) override
    {
        for (; next_ < users_.size() && !sink.full(); ++next_)
            sink.user(users_[next_].name, users_[next_].ip, users_[next_].port);
        return next_ == users_.size() ? Pull::end : Pull::more;
    }

private:
    std::vector<UserEndpoint> users_;
    std::size_t next_ = 0;
};

// One hit of SEARCH, as SearchHits gives it: its strings are the answer's.
struct SearchHit {
    std::string_view user;
    Address ip;
    std::uint16_t port = 0;
    std::string_view path;
    std::string_view description;
    ContentMeta meta;
};

// SEARCH's answer, copied (a snapshot however long its stream takes), in the order of
// peerdex-protocol(7), SEARCH. The hits' strings are in one buffer: an answer of a hundred
// hits allocates a few times, not once or twice a hit (docs/PERFORMANCE.md, Search).
class SearchHits {
public:
    void clear()
    {
        entries_.clear();
        text_.clear();
    }
    void reserve(std::size_t hits, std::size_t text)
    {
        entries_.reserve(hits);
        text_.reserve(text);
    }
    // The strings are copied; they must not be views of this answer's.
    void add(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
             std::string_view description, const ContentMeta& meta)
    {
        const std::size_t at = text_.size();
        text_.append(user).append(path).append(description);
        entries_.push_back({at, user.size(), path.size(), description.size(), ip, port, meta});
    }
    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    // Its views are valid until the answer next changes, moves or goes.
    SearchHit operator[](std::size_t i) const
    {
        const Entry& e = entries_[i];
        const std::string_view t(text_);
        return {t.substr(e.at, e.user), e.ip, e.port, t.substr(e.at + e.user, e.path),
                t.substr(e.at + e.user + e.path, e.description), e.meta};
    }

private:
    struct Entry {
        std::size_t at, user, path, description;  // where its strings start, and their sizes
        Address ip;
        std::uint16_t port = 0;
        ContentMeta meta;
    };
    std::vector<Entry> entries_;
    std::string text_;
};

// SEARCH's answer as a list.
class HitStream final : public ListStream {
public:
    explicit HitStream(SearchHits&& hits) : hits_(std::move(hits)) {}
    std::size_t count() const override { return hits_.size(); }
    Pull pull(ListSink& sink, Wakeup) override
    {
        for (; next_ < hits_.size() && !sink.full(); ++next_) {
            const SearchHit h = hits_[next_];
            sink.hit(h.user, h.ip, h.port, h.path, h.description, h.meta);
        }
        return next_ == hits_.size() ? Pull::end : Pull::more;
    }

private:
    SearchHits hits_;
    std::size_t next_ = 0;
};

// One source of SOURCES, copied: the answer is a snapshot however long its stream takes.
struct ContentSource {
    std::string user;
    Address ip;
    std::uint16_t port = 0;
    std::string path;
    std::uint64_t size = 0;
};

// SOURCES's answer: its sources, in the order of peerdex-protocol(7), SOURCES.
class SourceStream final : public ListStream {
public:
    explicit SourceStream(std::vector<ContentSource>&& sources) : sources_(std::move(sources)) {}
    std::size_t count() const override { return sources_.size(); }
    Pull pull(ListSink& sink, Wakeup) override
    {
        for (; next_ < sources_.size() && !sink.full(); ++next_) {
            const ContentSource& s = sources_[next_];
            sink.source(s.user, s.ip, s.port, s.path, s.size);
        }
        return next_ == sources_.size() ? Pull::end : Pull::more;
    }

private:
    std::vector<ContentSource> sources_;
    std::size_t next_ = 0;
};

// A SOURCES request as the store sees it: `id` null when the id or the limit broke the
// rules (the answer is then `failed`, once the requester's checks have passed); `limit`
// already capped by the tracker's --max-results.
struct SourcesRequest {
    const Digest* id = nullptr;
    std::size_t limit = 0;
};

// A SEARCH request as the store sees it: `query` null when the query or the limit broke
// the rules (the answer is then `failed`, once the requester's checks have passed); `limit`
// already capped by the tracker's --max-results.
struct SearchRequest {
    const SearchQuery* query = nullptr;
    std::size_t limit = 0;
};

struct StoreReply {
    Outcome outcome = Outcome::ok;
    Address ip;                        // GET_USER_INFO: where the target's peer listens
    std::uint16_t port = 0;
    std::unique_ptr<ListStream> list;  // LIST_USERS, LIST_CONTENT, SEARCH, SOURCES: set on ok
};

// How a store answers: a function pointer and a token, no allocation per request.
class Completion {
public:
    using Fn = void (*)(void* ctx, std::uint64_t token, StoreReply&& reply);
    Completion(Fn fn, void* ctx, std::uint64_t token) : fn_(fn), ctx_(ctx), token_(token) {}
    void operator()(StoreReply&& reply) const { fn_(ctx_, token_, std::move(reply)); }
    void operator()(Outcome outcome) const
    {
        StoreReply r;
        r.outcome = outcome;
        fn_(ctx_, token_, std::move(r));
    }

private:
    Fn fn_;
    void* ctx_;
    std::uint64_t token_;
};

// Figures for the statistics line, as far as the store knows them cheaply.
struct StoreCounts {
    std::size_t users = 0;
    std::size_t connected = 0;
    std::size_t publications = 0;
};

class Store {
public:
    virtual ~Store() = default;

    // The mutations take who sends them (`by`): REGISTER records the owner, the others
    // answer not_owner when the store's AuthMode says `by` may not change that user
    // (peerdex-protocol(7), OWNERSHIP). CONNECT records by.ip as the user's address.
    virtual void register_user(std::string_view user, const Requester& by, Completion done) = 0;
    virtual void unregister_user(std::string_view user, const Requester& by, Completion done) = 0;
    virtual void connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done) = 0;
    virtual void disconnect(std::string_view user, const Requester& by, Completion done) = 0;
    // `meta`: what a peerdex/2 PUBLISH said of the file (kUnknownContent otherwise), kept with
    // the publication and given back by LIST_CONTENT and SEARCH; an already published path
    // keeps what it had.
    virtual void publish(std::string_view user, const Requester& by, std::string_view path,
                         std::string_view description, const ContentMeta& meta, Completion done) = 0;
    virtual void remove(std::string_view user, const Requester& by, std::string_view path,
                        Completion done) = 0;  // DELETE
    // HELLO's OWN: ok when `by` may change `user` (or it is not registered), else not_owner.
    virtual void owns(std::string_view user, const Requester& by, Completion done) = 0;
    virtual void list_users(std::string_view requester, Completion done) = 0;
    virtual void list_content(std::string_view requester, std::string_view target, Completion done) = 0;
    virtual void get_user_info(std::string_view requester, std::string_view target, Completion done) = 0;
    // Liveness (peerdex-protocol(7), EXPIRY), for the tracker's own prober. The next
    // connected users to probe, walking every connected user round after round: the
    // answer's list gives up to `max` of them (name, ip, port) from where the previous walk
    // stopped; a list shorter than `max` means the round has reached its end, and the next
    // call starts the next round. Users connected meanwhile are met in this round or the next.
    virtual void walk_connected(std::size_t max, Completion done) = 0;
    // Disconnects `user` exactly as DISCONNECT does, but only while it is connected at
    // ip:port (the endpoint that was probed): ok, not_connected (no longer, or elsewhere:
    // it reconnected), no_such_user. A mutation like any other for a durable store.
    virtual void expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done) = 0;
    // SEARCH (peerdex-protocol(7), SEARCH): the requester's checks (exists, connected), then
    // the request's (`failed` when its query is null), then the hits as a list of up to
    // `limit`: publications of connected users matching the query, file-name matches first,
    // newest first within each group. Reads only: nothing changes.
    virtual void search(std::string_view requester, const SearchRequest& request, Completion done) = 0;
    // SOURCES (peerdex-protocol(7), SOURCES): the requester's checks (exists, connected),
    // then the request's (`failed` when its id is null), then up to `limit` sources: the
    // publications with that content id of connected users (the requester's own included),
    // newest first. Found through an index by id, never a walk of every publication. Reads
    // only: nothing changes.
    virtual void sources(std::string_view requester, const SourcesRequest& request, Completion done) = 0;

    virtual StoreCounts counts() const = 0;
    // For GET /metrics: how long the store takes to make a change durable or shared (a
    // durable store's transaction, a shared store's script round trip); null when it has no
    // such step (memory).
    virtual const Histogram* commit_latency() const { return nullptr; }
    // True while the store takes no more requests (its batch is full): sessions stop reading
    // until it is false again, as at their own caps.
    virtual bool saturated() const { return false; }
    // Asks the store to finish: every answer still owed is given (or failed), handles are
    // closed, then `closed(ctx)` is called on the loop. Called once, after the last session.
    virtual void close(void (*closed)(void* ctx), void* ctx) = 0;
};

// The requester of the tracker's own reads (the status page, peerdex-tracker(8), HTTP):
// list_users and search take it and skip the requester's checks. Never from the wire: a
// user name there has 1 to 255 bytes (peerdex-protocol(7), TRACKER REQUESTS). The mutations and
// the other reads treat it as any name that is not registered.
inline constexpr std::string_view kOperator{};

// What the command line says about the store.
struct StoreConfig {
    std::string name;       // --store: "memory" (the default), "delayed" (for tests), redis://…, unix:…
    std::string state;      // --state FILE: the durable store on SQLite
    bool sync_full = true;  // --sync full|normal
    AuthMode auth = AuthMode::none;  // --auth
    std::size_t search_budget = kDefaultSearchBudget;  // --search-budget
    std::uint64_t lease_ms = 0;  // shared store: how long a tracker holds a user's probes (0: its default)
};

// True when `name` names the shared store (redis://… or unix:…), whether or not this
// build has it.
bool is_redis_target(std::string_view name);

// The backend the configuration names: memory; delayed (for tests: the memory store
// answering every request on a later loop turn, in reverse order); with a state file, the
// durable store, loaded. Null and `error` set when none can be made.
std::unique_ptr<Store> make_store(uv_loop_t* loop, const StoreConfig& config, std::string& error);

}  // namespace peerdex
