// The memory store: the Registry behind the Store interface, answering every verb before it
// returns. It is the model the other backends must match.
#pragma once

#include "registry.hh"
#include "store.hh"

namespace peerdex {

class MemoryStore final : public Store {
public:
    explicit MemoryStore(AuthMode auth = AuthMode::none, std::size_t search_budget = kDefaultSearchBudget)
        : registry_(auth, search_budget)
    {
    }
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
    void close(void (*closed)(void* ctx), void* ctx) override { closed(ctx); }

    Registry& registry() { return registry_; }

private:
    void answer_list(Outcome outcome, ListCursor&& cursor, Completion& done);

    Registry registry_;
};

}  // namespace peerdex
