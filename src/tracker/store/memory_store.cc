#include "memory_store.hh"

#include <utility>

namespace peerdex {

void MemoryStore::register_user(std::string_view user, const Requester& by, Completion done)
{
    done(registry_.register_user(user, by));
}

void MemoryStore::unregister_user(std::string_view user, const Requester& by, Completion done)
{
    done(registry_.unregister_user(user, by));
}

void MemoryStore::connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done)
{
    done(registry_.connect(user, by.ip, port, by));
}

void MemoryStore::disconnect(std::string_view user, const Requester& by, Completion done)
{
    done(registry_.disconnect(user, by));
}

void MemoryStore::publish(std::string_view user, const Requester& by, std::string_view path,
                          std::string_view description, const ContentMeta& meta, Completion done)
{
    done(registry_.publish(user, path, description, by, meta));
}

void MemoryStore::remove(std::string_view user, const Requester& by, std::string_view path, Completion done)
{
    done(registry_.remove(user, path, by));
}

void MemoryStore::owns(std::string_view user, const Requester& by, Completion done)
{
    done(registry_.owns(user, by));
}

void MemoryStore::answer_list(Outcome outcome, ListCursor&& cursor, Completion& done)
{
    StoreReply r;
    r.outcome = outcome;
    if (outcome == Outcome::ok)
        r.list = std::make_unique<CursorStream>(std::move(cursor));
    done(std::move(r));
}

void MemoryStore::list_users(std::string_view requester, Completion done)
{
    ListCursor cursor;
    const Outcome o = registry_.list_users(requester, cursor);
    answer_list(o, std::move(cursor), done);
}

void MemoryStore::list_content(std::string_view requester, std::string_view target, Completion done)
{
    ListCursor cursor;
    const Outcome o = registry_.list_content(requester, target, cursor);
    answer_list(o, std::move(cursor), done);
}

void MemoryStore::get_user_info(std::string_view requester, std::string_view target, Completion done)
{
    StoreReply r;
    r.outcome = registry_.get_user_info(requester, target, r.ip, r.port);
    done(std::move(r));
}

void MemoryStore::search(std::string_view requester, const SearchRequest& request, Completion done)
{
    done(search_reply(registry_, requester, request));
}

void MemoryStore::sources(std::string_view requester, const SourcesRequest& request, Completion done)
{
    done(sources_reply(registry_, requester, request));
}

void MemoryStore::walk_connected(std::size_t max, Completion done)
{
    done(walk_reply(registry_, max));
}

void MemoryStore::expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done)
{
    done(registry_.expire(user, ip, port));
}

StoreCounts MemoryStore::counts() const
{
    return {registry_.user_count(), registry_.connected_count(), registry_.publication_count()};
}

}  // namespace peerdex
