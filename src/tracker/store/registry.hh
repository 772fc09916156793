// The tracker's index (peerdex-protocol(7), TRACKER REQUESTS): users, their connection
// endpoint and their publications in insertion order. Pure data, no I/O: every operation is
// O(1) except UNREGISTER (O(publications of that user)) and the list cursors (O(entries)).
//
// Large LIST_USERS / LIST_CONTENT replies are streamed in chunks. To stream a consistent
// snapshot without copying the list, every list node carries the generation in which it
// was added and removed; while a paused cursor needs an older generation, removed nodes
// stay linked (as "zombies") and are freed once no cursor can still see them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "address.hh"
#include "flat_set.hh"
#include "owner.hh"
#include "protocol.hh"
#include "search_index.hh"
#include "store.hh"

namespace peerdex {

class Registry;

namespace detail {

struct Link {
    Link* prev = nullptr;
    Link* next = nullptr;
    std::uint64_t born = 0;  // generation of insertion
    std::uint64_t died = 0;  // generation of removal, 0 while live

    bool visible_at(std::uint64_t gen) const { return born <= gen && (died == 0 || died > gen); }
};

// Owning intrusive list in insertion order; erase() frees the node.
template <class Node>
class OwningList {
public:
    OwningList() = default;
    OwningList(const OwningList&) = delete;
    OwningList& operator=(const OwningList&) = delete;
    ~OwningList()
    {
        while (head_)
            erase(static_cast<Node*>(head_));
    }

    Node* push_back(std::unique_ptr<Node> owned)
    {
        Node* n = owned.release();
        n->prev = tail_;
        n->next = nullptr;
        (tail_ ? tail_->next : head_) = n;
        tail_ = n;
        return n;
    }
    void erase(Node* n)
    {
        (n->prev ? n->prev->next : head_) = n->next;
        (n->next ? n->next->prev : tail_) = n->prev;
        std::unique_ptr<Node> drop(n);
    }
    const Link* head() const { return head_; }

private:
    Link* head_ = nullptr;
    Link* tail_ = nullptr;
};

struct User;

struct Connection : Link {
    const User* user = nullptr;
    Address ip;
    std::uint16_t port = 0;
};

struct Publication : Link {
    const User* owner = nullptr;  // the key of Registry::publications_ is (owner, path)
    std::string path;
    std::string description;
    std::uint32_t search_id = 0;  // in Registry::index_
    // Size and content id (a peerdex/2 PUBLISH), out of line: most publications have none.
    std::unique_ptr<ContentMeta> meta;

    const ContentMeta& content() const { return meta ? *meta : kUnknownContent; }
};
// The registry holds millions of these: with glibc's malloc a node of up to 120 bytes takes a
// 128-byte chunk, so one more field here costs every publication 16 bytes.
static_assert(sizeof(void*) != 8 || sizeof(Publication) <= 120, "a publication outgrew its malloc chunk");

struct User {
    std::string name;
    Address owner;                     // who registered it (family 0: stored before owners were)
    std::unique_ptr<KeyHash> key;      // registered with a key (HELLO's OWN)
    Connection* connection = nullptr;  // owned by Registry::connected_
    OwningList<Publication> publications;
    std::size_t publication_count = 0;
};

struct UserName {
    std::string_view operator()(const User* u) const { return u->name; }
};

struct PublicationKey {
    const User* user;
    std::string_view path;
    bool operator==(const PublicationKey& o) const { return user == o.user && path == o.path; }
};

struct PublicationKeyOf {
    PublicationKey operator()(const Publication* p) const { return {p->owner, p->path}; }
};

struct PublicationKeyHash {
    std::size_t operator()(const PublicationKey& k) const
    {
        return std::hash<std::string_view>()(k.path) ^ (reinterpret_cast<std::uintptr_t>(k.user) >> 4);
    }
};

// Content ids spread evenly already (they are SHA-256 roots): their first bytes are a hash.
struct DigestHash {
    std::size_t operator()(const Digest& d) const
    {
        std::size_t h = 0;
        for (std::size_t i = 0; i < sizeof h; ++i)
            h = h << 8 | d[i];
        return h;
    }
};

}  // namespace detail

// Streams the entries of one list as they were when the cursor was made. The cursor pins
// that generation from the start, so it may wait any time before its first fill.
class ListCursor {
public:
    ListCursor() = default;
    ListCursor(ListCursor&& o) noexcept { *this = std::move(o); }
    ListCursor& operator=(ListCursor&& o) noexcept;
    ~ListCursor() { release(); }

    bool active() const { return registry_ != nullptr; }
    std::size_t count() const { return count_; }
    // Gives entries to `sink` until it is full or the list ends. Returns true when the
    // list is complete (the cursor is then released).
    bool fill(ListSink& sink);

private:
    friend class Registry;
    enum class Kind : std::uint8_t { users, content };

    void start(Registry* registry, Kind kind, const detail::Link* head, std::size_t count);
    void release();

    Registry* registry_ = nullptr;
    const detail::Link* pos_ = nullptr;
    std::uint64_t gen_ = 0;
    std::size_t count_ = 0;
    std::size_t remaining_ = 0;
    Kind kind_ = Kind::users;
    bool pinned_ = false;
};

// A cursor as a store's list stream: the memory and durable stores answer lists with it.
class CursorStream final : public ListStream {
public:
    explicit CursorStream(ListCursor&& cursor) : cursor_(std::move(cursor)) {}
    std::size_t count() const override { return cursor_.count(); }
    Pull pull(ListSink& sink, Wakeup) override { return cursor_.fill(sink) ? Pull::end : Pull::more; }

private:
    ListCursor cursor_;
};

// The liveness walk (Registry::walk_connected) as a store's answer: the memory and the
// durable store give it alike.
StoreReply walk_reply(Registry& registry, std::size_t max);
// SEARCH (Registry::search) as a store's answer, alike for the memory and the durable store.
StoreReply search_reply(const Registry& registry, std::string_view requester, const SearchRequest& request);
// SOURCES (Registry::sources) as a store's answer, alike for the memory and the durable store.
StoreReply sources_reply(const Registry& registry, std::string_view requester, const SourcesRequest& request);

class Registry {
public:
    // `search_budget`: candidates one SEARCH may examine; 0 keeps no index (SEARCH is off).
    explicit Registry(AuthMode auth = AuthMode::none, std::size_t search_budget = kDefaultSearchBudget)
        : auth_(auth), search_budget_(search_budget)
    {
    }
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;
    ~Registry();

    // Each says what happened (never Outcome::failed: malformed requests are refused
    // before they reach the registry); result_code() turns it into the wire's code. `by`
    // is who asks: REGISTER records it as the owner, the other mutations check it (after
    // the user's existence, before everything else) under the registry's AuthMode.
    Outcome register_user(std::string_view user, const Requester& by = {});
    Outcome unregister_user(std::string_view user, const Requester& by = {});
    Outcome connect(std::string_view user, const Address& ip, std::uint16_t port, const Requester& by = {});
    Outcome publish(std::string_view user, std::string_view path, std::string_view description,
                    const Requester& by = {}, const ContentMeta& meta = kUnknownContent);
    Outcome remove(std::string_view user, std::string_view path, const Requester& by = {});
    Outcome disconnect(std::string_view user, const Requester& by = {});
    // HELLO's OWN: ok when `by` may change the user (or it is not registered), else not_owner.
    Outcome owns(std::string_view user, const Requester& by) const;
    AuthMode auth() const { return auth_; }
    // The user named, or null.
    const detail::User* user(std::string_view name) const { return find(name); }
    // On ok the cursor is ready: its count() goes on the wire, then fill().
    Outcome list_users(std::string_view requester, ListCursor& cursor);
    Outcome list_content(std::string_view requester, std::string_view target, ListCursor& cursor);
    // Loading a saved state: a user (nullptr if the name is taken), its connection (in
    // connection order), and a publication of a registered user, connected or not.
    detail::User* restore_user(std::string_view user, const Address& owner = Address(), const KeyHash* key = nullptr);
    void restore_connection(detail::User& user, const Address& ip, std::uint16_t port);
    Outcome restore_publication(std::string_view user, std::string_view path, std::string_view description,
                                const ContentMeta& meta = kUnknownContent);
    // Room for this many users and publications without growing (loading a saved state).
    void reserve(std::size_t users, std::size_t publications);
    // Liveness (peerdex-protocol(7), EXPIRY). Appends to `out` up to `max` connected users,
    // in connection order from where the previous walk stopped; fewer than `max` means the
    // walk has reached the last connection, and the next call starts again at the first.
    void walk_connected(std::size_t max, std::vector<UserEndpoint>& out);
    // Disconnects `user` as DISCONNECT does, only while it is connected at ip:port.
    Outcome expire(std::string_view user, const Address& ip, std::uint16_t port);
    // SEARCH (peerdex-protocol(7), SEARCH): on ok, `out` holds up to `limit` hits, file-name
    // matches first, newest first within each group; at most the search budget of candidates
    // is examined. A null query (out of the rules) is `failed` after the requester's checks.
    Outcome search(std::string_view requester, const SearchRequest& request, SearchHits& out) const;
    bool searchable() const { return search_budget_ != 0; }
    // SOURCES (peerdex-protocol(7), SOURCES): on ok, `out` holds up to `limit` publications
    // with the request's id whose owners are connected, newest first; a null id (out of the
    // rules) is `failed` after the requester's checks. O(publications with that id).
    Outcome sources(std::string_view requester, const SourcesRequest& request, std::vector<ContentSource>& out) const;
    // A new budget for the next searches (not 0: the index is kept or not from the start).
    void set_search_budget(std::size_t budget) { search_budget_ = budget ? budget : search_budget_; }
    // Bytes the search index holds in its lists and id table.
    std::size_t search_index_bytes() const { return index_.list_bytes(); }
    // On ok, where the target's peer listens.
    Outcome get_user_info(std::string_view requester, std::string_view target, Address& ip, std::uint16_t& port);

    std::size_t user_count() const { return users_.size(); }
    std::size_t connected_count() const { return connected_count_; }
    std::size_t publication_count() const { return publications_.size(); }
    // True while a list cursor of this registry is open.
    bool has_cursors() const { return !pinned_.empty(); }
    // Removed nodes still held for paused cursors.
    std::size_t retained_count() const { return zombies_.size(); }

private:
    friend class ListCursor;
    using User = detail::User;

    struct Zombie {
        std::uint64_t died;
        detail::Connection* connection = nullptr;
        detail::Publication* publication = nullptr;
        User* owner = nullptr;              // of `publication`
        std::unique_ptr<User> user;         // an unregistered user and its publications
    };

    User* find(std::string_view name) const;
    // The requester checks shared by every operation: exists, then (for a change, `by`
    // given) that `by` may change it, then connected.
    Outcome check_requester(std::string_view name, User*& user, const Requester* by = nullptr) const;
    Outcome check_owner(const User& user, const Requester& by) const;
    // ... then that the target of LIST_CONTENT or GET_USER_INFO is registered.
    Outcome check_target(std::string_view requester, std::string_view target, const User*& owner) const;
    Outcome add_publication(User& user, std::string_view path, std::string_view description,
                            const ContentMeta& meta);
    void drop_connection(User& user);
    void erase_connection(detail::Connection* conn);
    void drop_publication(User& user, detail::Publication* pub);
    void unindex(const detail::Publication& pub);
    void pin(std::uint64_t gen);
    void unpin(std::uint64_t gen);
    void purge();

    // Owns its users (freed by unregister_user and the destructor).
    FlatSet<User, std::string_view, detail::UserName, std::hash<std::string_view>> users_;
    // Every live publication by (owner, path); the users' lists own them.
    FlatSet<detail::Publication, detail::PublicationKey, detail::PublicationKeyOf, detail::PublicationKeyHash>
        publications_;
    detail::OwningList<detail::Connection> connected_;
    std::size_t connected_count_ = 0;
    AuthMode auth_;
    std::size_t search_budget_;
    SearchIndex index_;  // of the live publications, kept by add_publication and their removal
    // The live publications that have a content id, by id, oldest first; kept alike. Only
    // publications with an id are in it: the others cost nothing more.
    std::unordered_map<Digest, std::vector<const detail::Publication*>, detail::DigestHash> by_id_;
    // The liveness walk: the next connection to give, or (null) the first, or (walk_end_)
    // none before the walk starts again.
    const detail::Link* walk_ = nullptr;
    bool walk_end_ = false;
    std::uint64_t gen_ = 0;
    std::map<std::uint64_t, std::uint32_t> pinned_;  // generation -> paused cursors
    std::deque<Zombie> zombies_;                      // in order of `died`
};

}  // namespace peerdex
