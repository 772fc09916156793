// The durable store (--state FILE): the Registry stays the read model, and every change it
// accepts joins the open batch, which is committed to an SQLite database as one transaction
// on the thread pool (group commit: while one batch commits, the next fills). An answer is
// given only once every change applied before it was computed is committed, so no client
// sees state that a crash could take back (peerdex-protocol(7), TRACKER STATE). A commit
// that fails refuses every answer that depended on it, and the registry is reloaded from
// the database, which holds exactly what was acknowledged.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "registry.hh"
#include "store.hh"

struct sqlite3;

namespace peerdex {

struct SqliteOptions {
    std::string path;
    bool sync_full = true;  // SQLite synchronous=FULL (survives power loss), else NORMAL
    AuthMode auth = AuthMode::none;
    std::size_t search_budget = kDefaultSearchBudget;
};

class StateDatabase;

// Loads every user, connection (in connection order) and publication (in publication order)
// of an open state database of schema `version` into `into`, and the next connection
// sequence number into `next_seq`; false and `error` when a row cannot be taken as it is
// (a file damaged or written by hand). Used at start and after a failed commit, and by the
// fuzz target of the loader.
bool load_state(sqlite3* db, int version, Registry& into, std::int64_t& next_seq, std::string& error);

class SqliteStore final : public Store {
public:
    // Opens (creating it if absent) and loads the database. Null and `error` ("FILE: why")
    // when it cannot be used; the file is then left as it was.
    static std::unique_ptr<SqliteStore> open(uv_loop_t* loop, const SqliteOptions& options, std::string& error);
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;
    ~SqliteStore() override;

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
    StoreCounts counts() const override;
    const Histogram* commit_latency() const override { return &commits_; }
    bool saturated() const override;
    void close(void (*closed)(void* ctx), void* ctx) override;

    // One change as the database stores it.
    struct Change {
        Op op;
        std::string user;
        std::string path;         // PUBLISH, DELETE; CONNECT: the IP as text; REGISTER: the owner's
        std::string description;  // PUBLISH; REGISTER: the key's hash (empty: none)
        std::uint16_t port = 0;   // CONNECT
        std::int64_t seq = 0;     // CONNECT: its place in the order of connections
        ContentMeta meta;         // PUBLISH: size and content id, NULL columns when unknown
    };

private:
    struct Waiter {
        Completion done;
        StoreReply reply;
    };
    struct Batch {
        std::vector<Change> changes;
        std::vector<Waiter> waiters;  // answers given once this batch is committed
        std::size_t bytes = 0;
    };
    struct Job;

    SqliteStore(uv_loop_t* loop, std::unique_ptr<StateDatabase> db, std::unique_ptr<Registry> registry,
                std::int64_t next_seq, std::string path, const SqliteOptions& options);

    // Gives `reply` now when nothing is pending, else once what is pending is committed.
    void answer(Completion& done, StoreReply&& reply);
    void answer(Completion& done, Outcome outcome);
    void changed(Change&& change);
    void kick();
    static void work(uv_work_t* req);
    static void after(uv_work_t* req, int status);
    void committed(Job& job);
    void reloaded(Job& job);
    void finish_if_closing();
    std::unique_ptr<ListStream> stream(ListCursor&& cursor);
    // While the registry is being reloaded, requests wait, replayed in order after.
    void hold(Completion& done, std::function<void()> request);

    uv_loop_t* loop_;
    AuthMode auth_;
    std::size_t search_budget_;
    std::unique_ptr<StateDatabase> db_;
    std::unique_ptr<Registry> registry_;
    std::vector<std::unique_ptr<Registry>> retired_;  // replaced, kept while a list streams from one
    std::int64_t next_seq_;
    std::string path_;
    Batch open_;
    Histogram commits_;  // each batch's transaction
    std::unique_ptr<Batch> committing_;
    bool recovering_ = false;
    std::vector<std::function<void()>> held_;
    uv_idle_t* turn_end_;  // starts the commit at the end of a loop turn; freed in its close callback
    bool closing_ = false;
    void (*closed_)(void*) = nullptr;
    void* closed_ctx_ = nullptr;
};

}  // namespace peerdex
