// For tests only: the memory store, answering every request on a later loop turn, the
// requests of one turn in reverse order (so answers overtake each other across sessions and
// within one), and every chunk of a list one turn after it is asked for. It proves the
// session layer's reply slots before a store that really waits (a disk, a network) needs them.
#pragma once

#include <uv.h>

#include <vector>

#include "memory_store.hh"

namespace peerdex {

class DelayedStore final : public Store {
public:
    DelayedStore(uv_loop_t* loop, AuthMode auth = AuthMode::none, std::size_t search_budget = kDefaultSearchBudget);
    DelayedStore(const DelayedStore&) = delete;
    DelayedStore& operator=(const DelayedStore&) = delete;
    ~DelayedStore() override;

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
    StoreCounts counts() const override { return inner_.counts(); }
    void close(void (*closed)(void* ctx), void* ctx) override;

private:
    class Stream;
    struct Pending {
        Completion done;
        StoreReply reply;
    };

    Completion hold(Completion done);
    static void on_inner(void* ctx, std::uint64_t token, StoreReply&& reply);
    static void on_idle(uv_idle_t* idle);
    void arm();
    void deliver();

    MemoryStore inner_;
    uv_idle_t* idle_;  // freed in its close callback
    std::vector<Pending> pending_;
    std::vector<Wakeup> wakeups_;
    void (*closed_)(void*) = nullptr;
    void* closed_ctx_ = nullptr;
};

}  // namespace peerdex
