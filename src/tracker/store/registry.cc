#include "registry.hh"

#include <algorithm>
#include <utility>


namespace peerdex {

using detail::Connection;
using detail::Link;
using detail::Publication;

Registry::~Registry()
{
    users_.for_each([](User* u) { delete u; });
}

Registry::User* Registry::find(std::string_view name) const
{
    return users_.find(name);
}

Outcome Registry::check_requester(std::string_view name, User*& user, const Requester* by) const
{
    user = find(name);
    if (!user)
        return Outcome::no_such_user;
    if (by)
        if (Outcome o = check_owner(*user, *by); o != Outcome::ok)
            return o;
    return user->connection ? Outcome::ok : Outcome::not_connected;
}

Outcome Registry::check_owner(const User& user, const Requester& by) const
{
    if (auth_ == AuthMode::none)
        return Outcome::ok;
    if (auth_ == AuthMode::key && user.key) {
        KeyHash h;
        return !by.key.empty() && hash_key(by.key, h) && h == *user.key ? Outcome::ok : Outcome::not_owner;
    }
    if (user.owner.family == 0)
        return Outcome::ok;  // stored before owners were: open, as in the course
    return user.owner == by.ip ? Outcome::ok : Outcome::not_owner;
}

Outcome Registry::owns(std::string_view name, const Requester& by) const
{
    const User* user = find(name);
    return user ? check_owner(*user, by) : Outcome::ok;
}

Outcome Registry::register_user(std::string_view name, const Requester& by)
{
    KeyHash h;
    const bool keyed = !by.key.empty() && hash_key(by.key, h);
    return restore_user(name, by.ip, keyed ? &h : nullptr) ? Outcome::ok : Outcome::name_in_use;
}

Registry::User* Registry::restore_user(std::string_view name, const Address& owner, const KeyHash* key)
{
    auto user = std::make_unique<User>();
    user->name.assign(name);
    user->owner = owner;
    if (key)
        user->key = std::make_unique<KeyHash>(*key);
    // One lookup: a name in use leaves the set as it was, and the new user is freed.
    if (!users_.insert(user.get()).second)
        return nullptr;
    return user.release();
}

void Registry::reserve(std::size_t users, std::size_t publications)
{
    users_.reserve(users);
    publications_.reserve(publications);
}

Outcome Registry::unregister_user(std::string_view name, const Requester& by)
{
    User* found = users_.find(name);
    if (!found)
        return Outcome::no_such_user;
    User& user = *found;
    if (Outcome o = check_owner(user, by); o != Outcome::ok)
        return o;
    if (user.connection)
        drop_connection(user);
    for (const Link* l = user.publications.head(); l; l = l->next) {
        const auto* pub = static_cast<const Publication*>(l);
        if (pub->died == 0) {
            publications_.erase({&user, pub->path});
            unindex(*pub);
        }
    }
    users_.erase(user.name);  // before the user (whose name is the key) may be freed
    std::unique_ptr<User> owned(found);
    if (pinned_.empty())
        return Outcome::ok;  // `owned` frees the user and its publications now
    // A paused cursor may still walk this user's publications or its connection.
    zombies_.push_back({++gen_, nullptr, nullptr, nullptr, std::move(owned)});
    return Outcome::ok;
}

Outcome Registry::connect(std::string_view name, const Address& ip, std::uint16_t port, const Requester& by)
{
    User* user = find(name);
    if (!user)
        return Outcome::no_such_user;
    if (Outcome o = check_owner(*user, by); o != Outcome::ok)
        return o;
    if (user->connection)
        return Outcome::already_connected;
    restore_connection(*user, ip, port);
    return Outcome::ok;
}

void Registry::restore_connection(User& user, const Address& ip, std::uint16_t port)
{
    auto conn = std::make_unique<Connection>();
    conn->user = &user;
    conn->ip = ip;
    conn->port = port;
    conn->born = ++gen_;
    user.connection = connected_.push_back(std::move(conn));
    ++connected_count_;
}

Outcome Registry::disconnect(std::string_view name, const Requester& by)
{
    User* user;
    if (Outcome o = check_requester(name, user, &by); o != Outcome::ok)
        return o;
    drop_connection(*user);
    return Outcome::ok;
}

void Registry::drop_connection(User& user)
{
    Connection* conn = std::exchange(user.connection, nullptr);
    --connected_count_;
    if (pinned_.empty()) {
        erase_connection(conn);
        return;
    }
    conn->died = ++gen_;
    zombies_.push_back({conn->died, conn, nullptr, nullptr, nullptr});
}

// Frees a connection node; the liveness walk steps over it first.
void Registry::erase_connection(Connection* conn)
{
    if (walk_ == conn) {
        walk_ = conn->next;
        walk_end_ = walk_ == nullptr;
    }
    connected_.erase(conn);
}

void Registry::walk_connected(std::size_t max, std::vector<UserEndpoint>& out)
{
    const std::size_t start = out.size();
    const Link* l = walk_end_ ? nullptr : walk_ ? walk_ : connected_.head();
    for (; l && out.size() - start < max; l = l->next) {
        if (l->died != 0)
            continue;  // kept only for a paused list cursor
        const auto* c = static_cast<const Connection*>(l);
        out.push_back({c->user->name, c->ip, c->port});
    }
    // Reaching the end with `max` given: the next call gives none, which ends the round.
    walk_end_ = !l && out.size() - start == max && max != 0;
    walk_ = l;
}

StoreReply search_reply(const Registry& registry, std::string_view requester, const SearchRequest& request)
{
    StoreReply r;
    SearchHits hits;
    r.outcome = registry.search(requester, request, hits);
    if (r.outcome == Outcome::ok)
        r.list = std::make_unique<HitStream>(std::move(hits));
    return r;
}

StoreReply sources_reply(const Registry& registry, std::string_view requester, const SourcesRequest& request)
{
    StoreReply r;
    std::vector<ContentSource> sources;
    r.outcome = registry.sources(requester, request, sources);
    if (r.outcome == Outcome::ok)
        r.list = std::make_unique<SourceStream>(std::move(sources));
    return r;
}

StoreReply walk_reply(Registry& registry, std::size_t max)
{
    std::vector<UserEndpoint> users;
    registry.walk_connected(max, users);
    StoreReply r;
    r.list = std::make_unique<UserListStream>(std::move(users));
    return r;
}

Outcome Registry::expire(std::string_view name, const Address& ip, std::uint16_t port)
{
    User* user = find(name);
    if (!user)
        return Outcome::no_such_user;
    const Connection* c = user->connection;
    if (!c || c->ip != ip || c->port != port)
        return Outcome::not_connected;
    drop_connection(*user);
    return Outcome::ok;
}

Outcome Registry::publish(std::string_view name, std::string_view path, std::string_view description,
                          const Requester& by, const ContentMeta& meta)
{
    User* user;
    if (Outcome o = check_requester(name, user, &by); o != Outcome::ok)
        return o;
    return add_publication(*user, path, description, meta);
}

Outcome Registry::restore_publication(std::string_view name, std::string_view path, std::string_view description,
                                      const ContentMeta& meta)
{
    User* user = find(name);
    return user ? add_publication(*user, path, description, meta) : Outcome::no_such_user;
}

Outcome Registry::add_publication(User& owner, std::string_view path, std::string_view description,
                                  const ContentMeta& meta)
{
    User* user = &owner;
    auto pub = std::make_unique<Publication>();
    pub->owner = user;
    pub->path.assign(path);
    // One lookup: the key is read from the new node, which is freed if the path is taken.
    if (!publications_.insert(pub.get()).second)
        return Outcome::already_published;
    pub->description.assign(description);
    if (meta.known())
        pub->meta = std::make_unique<ContentMeta>(meta);
    if (meta.has_id)
        by_id_[meta.id].push_back(pub.get());
    if (search_budget_)
        pub->search_id = index_.add(pub.get(), pub->path, pub->description);
    pub->born = ++gen_;
    user->publications.push_back(std::move(pub));
    ++user->publication_count;
    return Outcome::ok;
}

Outcome Registry::remove(std::string_view name, std::string_view path, const Requester& by)
{
    User* user;
    if (Outcome o = check_requester(name, user, &by); o != Outcome::ok)
        return o;
    Publication* pub = publications_.find({user, path});
    if (!pub)
        return Outcome::not_published;
    publications_.erase({user, pub->path});
    drop_publication(*user, pub);
    return Outcome::ok;
}

void Registry::unindex(const Publication& pub)
{
    if (pub.meta && pub.meta->has_id) {
        const auto it = by_id_.find(pub.meta->id);
        if (it != by_id_.end()) {
            auto& pubs = it->second;
            if (const auto at = std::find(pubs.begin(), pubs.end(), &pub); at != pubs.end())
                pubs.erase(at);
            if (pubs.empty())
                by_id_.erase(it);
        }
    }
    if (search_budget_)
        index_.remove(pub.search_id, pub.path, pub.description);
}

void Registry::drop_publication(User& user, Publication* pub)
{
    --user.publication_count;
    unindex(*pub);
    if (pinned_.empty()) {
        user.publications.erase(pub);
        return;
    }
    pub->died = ++gen_;
    zombies_.push_back({pub->died, nullptr, pub, &user, nullptr});
}

Outcome Registry::search(std::string_view requester, const SearchRequest& request, SearchHits& out) const
{
    User* user;
    if (Outcome o = requester == kOperator ? Outcome::ok : check_requester(requester, user); o != Outcome::ok)
        return o;
    if (!request.query || request.limit == 0 || !searchable())
        return Outcome::failed;
    const SearchQuery& q = *request.query;
    const std::size_t limit = request.limit;
    // Candidates come newest first: the first `limit` file-name matches are the answer's
    // first group, and once there are that many nothing else can enter it. A candidate the
    // index decided (every term checked in its lists) costs no match(); once the other
    // group is full, only file-name matches are wanted, and the index passes over the
    // candidates that cannot be one without checking them.
    using Want = SearchIndex::Want;
    std::vector<const Publication*> names, others;
    names.reserve(std::min<std::size_t>(limit, 128));  // most answers: no regrowth
    others.reserve(std::min<std::size_t>(limit, 128));
    const auto wanted = [&] { return others.size() < limit ? Want::all : Want::named; };
    // Once the other group is full, a candidate whose rarest term is not in its file name
    // cannot enter the answer.
    const auto passed_over = [&](const SearchIndex::Candidate& c) {
        return c.exact && !c.named && wanted() == Want::named;
    };
    const auto take = [&](const SearchIndex::Candidate& c) {
        if (passed_over(c))
            return Want::named;
        const auto* pub = static_cast<const Publication*>(c.doc);
        if (!pub->owner->connection)
            return wanted();  // a disconnected user's publications stay indexed, unseen
        const Match m = c.decided ? (c.named ? Match::name : Match::other) : match(q, pub->path, pub->description);
        // What the answer will copy from a hit is asked for now: it arrives while the walk
        // goes on, where the copy at the end would wait for each hit's in turn.
        const auto keep = [&](std::vector<const Publication*>& group) {
            group.push_back(pub);
            __builtin_prefetch(pub->owner);  // its name
            __builtin_prefetch(pub->owner->connection);
            __builtin_prefetch(pub->path.data());
            __builtin_prefetch(pub->description.data());
            if (pub->meta)
                __builtin_prefetch(pub->meta.get());
        };
        if (m == Match::name) {
            keep(names);
            return names.size() < limit ? wanted() : Want::stop;
        }
        if (m == Match::other && others.size() < limit)
            keep(others);
        return wanted();
    };
    // A candidate is taken kLag candidates after it arrives. The index fetched its
    // publication ahead; its owner is one more cache miss, which depends on it: asked for
    // on arrival, the owners of several candidates are fetched at once rather than one
    // after another (and the text, when match() will read it). Most of a query that visits
    // hundreds of candidates from memory was spent waiting on them (docs/PERFORMANCE.md).
    // Candidates are taken in order, and once the other group is full a candidate that
    // cannot be a file-name match is passed over on arrival. The index learns the Want
    // eight candidates later: a walk narrowed to file-name matches starts its quarter of
    // the budget that much later (the only change to an answer, where the budget ends it).
    constexpr std::size_t kLag = 8;
    SearchIndex::Candidate lag[kLag];
    std::size_t lag_head = 0, lag_n = 0;
    bool stopped = false;
    index_.candidates(q, search_budget_, [&](const SearchIndex::Candidate& c) {
        if (passed_over(c))
            return Want::named;
        const auto* pub = static_cast<const Publication*>(c.doc);
        __builtin_prefetch(&pub->owner->connection);  // take() reads it (past the name: maybe another line)
        if (!c.decided) {
            __builtin_prefetch(pub->path.data());
            __builtin_prefetch(pub->description.data());
        }
        if (lag_n < kLag) {
            lag[(lag_head + lag_n++) % kLag] = c;
            return wanted();
        }
        const SearchIndex::Candidate due = lag[lag_head];
        lag[lag_head] = c;
        lag_head = (lag_head + 1) % kLag;
        const Want more = take(due);
        stopped = more == Want::stop;
        return more;
    });
    for (; !stopped && lag_n > 0; --lag_n, lag_head = (lag_head + 1) % kLag)
        stopped = take(lag[lag_head]) == Want::stop;
    // The answer: `limit` hits at most, file-name matches first. Its strings are sized
    // first, so that it allocates once for them.
    const std::size_t n = std::min(limit, names.size() + others.size());
    const auto each = [&](const auto& f) {
        std::size_t k = 0;
        for (const auto* group : {&names, &others})
            for (auto p = group->begin(); p != group->end() && k < n; ++p, ++k)
                f(**p);
    };
    std::size_t text = 0;
    each([&](const Publication& pub) { text += pub.owner->name.size() + pub.path.size() + pub.description.size(); });
    out.clear();
    out.reserve(n, text);
    each([&](const Publication& pub) {
        const Connection& c = *pub.owner->connection;
        out.add(pub.owner->name, c.ip, c.port, pub.path, pub.description, pub.content());
    });
    return Outcome::ok;
}

Outcome Registry::sources(std::string_view requester, const SourcesRequest& request,
                          std::vector<ContentSource>& out) const
{
    User* user;
    if (Outcome o = check_requester(requester, user); o != Outcome::ok)
        return o;
    if (!request.id || request.limit == 0)
        return Outcome::failed;
    out.clear();
    const auto it = by_id_.find(*request.id);
    if (it == by_id_.end())
        return Outcome::ok;
    const auto& pubs = it->second;
    for (auto p = pubs.rbegin(); p != pubs.rend() && out.size() < request.limit; ++p) {
        const Publication& pub = **p;
        const Connection* c = pub.owner->connection;
        if (!c)
            continue;  // a disconnected user's publications stay indexed, unseen
        out.push_back({pub.owner->name, c->ip, c->port, pub.path, pub.meta->size});
    }
    return Outcome::ok;
}

Outcome Registry::list_users(std::string_view requester, ListCursor& cursor)
{
    User* user;
    if (Outcome o = requester == kOperator ? Outcome::ok : check_requester(requester, user); o != Outcome::ok)
        return o;
    cursor.start(this, ListCursor::Kind::users, connected_.head(), connected_count_);
    return Outcome::ok;
}

Outcome Registry::check_target(std::string_view requester, std::string_view target, const User*& owner) const
{
    User* user;
    if (Outcome o = check_requester(requester, user); o != Outcome::ok)
        return o;
    owner = find(target);
    return owner ? Outcome::ok : Outcome::no_such_target;
}

Outcome Registry::list_content(std::string_view requester, std::string_view target, ListCursor& cursor)
{
    const User* owner;
    if (Outcome o = check_target(requester, target, owner); o != Outcome::ok)
        return o;
    cursor.start(this, ListCursor::Kind::content, owner->publications.head(), owner->publication_count);
    return Outcome::ok;
}

Outcome Registry::get_user_info(std::string_view requester, std::string_view target, Address& ip,
                                std::uint16_t& port)
{
    const User* owner;
    if (Outcome o = check_target(requester, target, owner); o != Outcome::ok)
        return o;
    if (!owner->connection)
        return Outcome::target_offline;
    ip = owner->connection->ip;
    port = owner->connection->port;
    return Outcome::ok;
}

void Registry::pin(std::uint64_t gen)
{
    ++pinned_[gen];
}

void Registry::unpin(std::uint64_t gen)
{
    auto it = pinned_.find(gen);
    if (--it->second == 0)
        pinned_.erase(it);
    purge();
}

void Registry::purge()
{
    // A node removed in generation D is invisible to every cursor of generation >= D.
    const std::uint64_t oldest = pinned_.empty() ? UINT64_MAX : pinned_.begin()->first;
    while (!zombies_.empty() && zombies_.front().died <= oldest) {
        Zombie& z = zombies_.front();
        if (z.connection)
            erase_connection(z.connection);
        else if (z.publication)
            z.owner->publications.erase(z.publication);
        zombies_.pop_front();  // frees z.user, if any
    }
}

ListCursor& ListCursor::operator=(ListCursor&& o) noexcept
{
    if (this != &o) {
        release();
        registry_ = std::exchange(o.registry_, nullptr);
        pos_ = o.pos_;
        gen_ = o.gen_;
        count_ = o.count_;
        remaining_ = o.remaining_;
        kind_ = o.kind_;
        pinned_ = std::exchange(o.pinned_, false);
    }
    return *this;
}

void ListCursor::release()
{
    Registry* r = std::exchange(registry_, nullptr);
    if (r && pinned_)
        r->unpin(gen_);
    pinned_ = false;
}

void ListCursor::start(Registry* registry, Kind kind, const detail::Link* head, std::size_t count)
{
    release();
    registry_ = registry;
    kind_ = kind;
    pos_ = head;
    gen_ = registry->gen_;
    count_ = remaining_ = count;
    // Rest on a node this cursor will emit: a removed one kept only for an older cursor may
    // be freed while this one waits.
    while (pos_ && pos_->born <= gen_ && !pos_->visible_at(gen_))
        pos_ = pos_->next;
    if (count > 0) {
        registry->pin(gen_);
        pinned_ = true;
    }
}

bool ListCursor::fill(ListSink& sink)
{
    while (remaining_ > 0 && pos_ && pos_->born <= gen_ && !sink.full()) {
        if (pos_->visible_at(gen_)) {
            if (kind_ == Kind::users) {
                const auto* c = static_cast<const Connection*>(pos_);
                sink.user(c->user->name, c->ip, c->port);
            } else {
                const auto* p = static_cast<const Publication*>(pos_);
                sink.content(p->path, p->description, p->content());
            }
            --remaining_;
        }
        pos_ = pos_->next;
    }
    // Rest only on a node this cursor will emit: such a node outlives the pin.
    while (pos_ && pos_->born <= gen_ && !pos_->visible_at(gen_))
        pos_ = pos_->next;
    if (remaining_ == 0 || !pos_ || pos_->born > gen_) {
        release();
        return true;
    }
    return false;
}

}  // namespace peerdex
