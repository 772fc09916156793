#include "registry.hh"

#include <utility>

#include "wire.hh"

namespace peerdex {

using detail::Connection;
using detail::Link;
using detail::Publication;

Registry::~Registry() = default;

Registry::User* Registry::find(std::string_view name) const
{
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : it->second.get();
}

std::uint8_t Registry::check_requester(std::string_view name, User*& user) const
{
    user = find(name);
    if (!user)
        return 1;
    return user->connection ? 0 : 2;
}

std::uint8_t Registry::register_user(std::string_view name)
{
    if (find(name))
        return 1;
    auto user = std::make_unique<User>();
    user->name.assign(name);
    std::string_view key = user->name;  // points into the heap-allocated User: stable
    users_.emplace(key, std::move(user));
    return 0;
}

std::uint8_t Registry::unregister_user(std::string_view name)
{
    auto it = users_.find(name);
    if (it == users_.end())
        return 1;
    User& user = *it->second;
    if (user.connection)
        drop_connection(user);
    for (const Link* l = user.publications.head(); l; l = l->next) {
        const auto* pub = static_cast<const Publication*>(l);
        if (pub->died == 0)
            publications_.erase({&user, pub->path});
    }
    std::unique_ptr<User> owned = std::move(it->second);
    users_.erase(it);
    if (pinned_.empty())
        return 0;  // `owned` frees the user and its publications now
    // A paused cursor may still walk this user's publications or its connection.
    zombies_.push_back({++gen_, nullptr, nullptr, nullptr, std::move(owned)});
    return 0;
}

std::uint8_t Registry::connect(std::string_view name, const Address& ip, std::uint16_t port)
{
    User* user = find(name);
    if (!user)
        return 1;
    if (user->connection)
        return 2;
    auto conn = std::make_unique<Connection>();
    conn->user = user;
    conn->ip = ip;
    conn->port = port;
    conn->born = ++gen_;
    user->connection = connected_.push_back(std::move(conn));
    ++connected_count_;
    return 0;
}

std::uint8_t Registry::disconnect(std::string_view name)
{
    User* user;
    if (std::uint8_t code = check_requester(name, user))
        return code;
    drop_connection(*user);
    return 0;
}

void Registry::drop_connection(User& user)
{
    Connection* conn = std::exchange(user.connection, nullptr);
    --connected_count_;
    if (pinned_.empty()) {
        connected_.erase(conn);
        return;
    }
    conn->died = ++gen_;
    zombies_.push_back({conn->died, conn, nullptr, nullptr, nullptr});
}

std::uint8_t Registry::publish(std::string_view name, std::string_view path, std::string_view description)
{
    User* user;
    if (std::uint8_t code = check_requester(name, user))
        return code;
    if (publications_.count({user, path}))
        return 3;
    auto pub = std::make_unique<Publication>();
    pub->path.assign(path);
    pub->description.assign(description);
    pub->born = ++gen_;
    Publication* p = user->publications.push_back(std::move(pub));
    publications_.emplace(detail::PublicationKey{user, p->path}, p);
    ++user->publication_count;
    return 0;
}

std::uint8_t Registry::remove(std::string_view name, std::string_view path)
{
    User* user;
    if (std::uint8_t code = check_requester(name, user))
        return code;
    auto it = publications_.find({user, path});
    if (it == publications_.end())
        return 3;
    Publication* pub = it->second;
    publications_.erase(it);
    drop_publication(*user, pub);
    return 0;
}

void Registry::drop_publication(User& user, Publication* pub)
{
    --user.publication_count;
    if (pinned_.empty()) {
        user.publications.erase(pub);
        return;
    }
    pub->died = ++gen_;
    zombies_.push_back({pub->died, nullptr, pub, &user, nullptr});
}

std::uint8_t Registry::list_users(std::string_view requester, ListCursor& cursor)
{
    User* user;
    if (std::uint8_t code = check_requester(requester, user))
        return code;
    cursor = ListCursor();
    cursor.registry_ = this;
    cursor.kind_ = ListCursor::Kind::users;
    cursor.pos_ = connected_.head();
    cursor.gen_ = gen_;
    cursor.count_ = cursor.remaining_ = connected_count_;
    return 0;
}

std::uint8_t Registry::list_content(std::string_view requester, std::string_view target, ListCursor& cursor)
{
    User* user;
    if (std::uint8_t code = check_requester(requester, user))
        return code;
    const User* owner = find(target);
    if (!owner)
        return 3;
    cursor = ListCursor();
    cursor.registry_ = this;
    cursor.kind_ = ListCursor::Kind::content;
    cursor.pos_ = owner->publications.head();
    cursor.gen_ = gen_;
    cursor.count_ = cursor.remaining_ = owner->publication_count;
    return 0;
}

std::uint8_t Registry::get_user_info(std::string_view requester, std::string_view target, std::string& out)
{
    User* user;
    if (std::uint8_t code = check_requester(requester, user))
        return code;
    const User* owner = find(target);
    if (!owner || !owner->connection)
        return 3;
    Encoder enc(out);
    owner->connection->ip.append_to(out);
    out.push_back('\0');
    enc.number(owner->connection->port);
    return 0;
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
            connected_.erase(z.connection);
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

bool ListCursor::fill(std::string& out, std::size_t limit)
{
    Encoder enc(out);
    while (remaining_ > 0 && pos_ && pos_->born <= gen_ && out.size() < limit) {
        if (pos_->visible_at(gen_)) {
            if (kind_ == Kind::users) {
                const auto* c = static_cast<const Connection*>(pos_);
                enc.field(c->user->name);
                c->ip.append_to(out);
                out.push_back('\0');
                enc.number(c->port);
            } else {
                enc.field(static_cast<const Publication*>(pos_)->path);
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
    if (!pinned_) {
        registry_->pin(gen_);
        pinned_ = true;
    }
    return false;
}

}  // namespace peerdex
