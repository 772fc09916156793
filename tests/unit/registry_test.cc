#include "registry.hh"

#include "answer.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "addresses.hh"
#include <netinet/in.h>

#include <map>
#include <memory>
#include <vector>

namespace peerdex {
namespace {

using test::ipv4;

// Decodes a list reply body (after the code and the count) into its NUL fields.
std::vector<std::string> fields_of(const std::string& body)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i < body.size(); ++i)
        if (body[i] == '\0') {
            out.push_back(body.substr(start, i - start));
            start = i + 1;
        }
    return out;
}

bool fill(ListCursor& c, std::string& body, std::size_t limit)
{
    ListEncoder enc(body, limit);
    return c.fill(enc);
}

std::vector<std::string> drain(ListCursor& c, std::size_t chunk = 1 << 20)
{
    std::string body;
    for (;;) {
        ListEncoder enc(body, body.size() + chunk);
        if (c.fill(enc))
            break;
    }
    return fields_of(body);
}

class RegistryTest : public ::testing::Test {
protected:
    void connected(const char* name, std::uint16_t port = 4000)
    {
        ASSERT_EQ(reg.register_user(name), Outcome::ok);
        ASSERT_EQ(reg.connect(name, ipv4("127.0.0.1"), port), Outcome::ok);
    }
    std::vector<std::string> users(const char* requester = "alice")
    {
        ListCursor c;
        EXPECT_EQ(reg.list_users(requester, c), Outcome::ok);
        return drain(c);
    }
    std::vector<std::string> content(const char* target, const char* requester = "alice")
    {
        ListCursor c;
        EXPECT_EQ(reg.list_content(requester, target, c), Outcome::ok);
        return drain(c);
    }
    Registry reg;
};

TEST(Address, Loopback)
{
    EXPECT_TRUE(ipv4("127.0.0.1").loopback());
    EXPECT_TRUE(ipv4("127.1.2.3").loopback());
    EXPECT_FALSE(ipv4("0.0.0.0").loopback());
    EXPECT_FALSE(ipv4("10.0.0.1").loopback());
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &sa.sin6_addr);
    EXPECT_TRUE(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).loopback());
    inet_pton(AF_INET6, "::", &sa.sin6_addr);
    EXPECT_FALSE(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).loopback());
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa.sin6_addr);
    EXPECT_TRUE(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).loopback());
}

TEST_F(RegistryTest, Ipv6AndMappedAddresses)
{
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &sa.sin6_addr);
    EXPECT_EQ(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).str(), "10.1.2.3");
    inet_pton(AF_INET6, "2001:db8::1", &sa.sin6_addr);
    EXPECT_EQ(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).str(), "2001:db8::1");
}

// The behaviour of every operation is in store_suite.cc (the memory store is this registry);
// here, what only the registry has: the nodes a paused cursor retains, and their freeing.

// A paused cursor streams the list as it was, whatever happens meanwhile.
TEST_F(RegistryTest, PausedCursorSeesASnapshot)
{
    for (int i = 0; i < 100; ++i)
        connected(("u" + std::to_string(i)).c_str(), static_cast<std::uint16_t>(1000 + i));
    ListCursor c;
    ASSERT_EQ(reg.list_users("u0", c), Outcome::ok);
    ASSERT_EQ(c.count(), 100u);
    std::string body;
    ASSERT_FALSE(fill(c, body, 50));  // a few entries only
    // Churn: remove users behind and ahead of the cursor, add new ones, reconnect one.
    for (int i = 0; i < 100; i += 2)
        ASSERT_EQ(reg.unregister_user("u" + std::to_string(i)), Outcome::ok);
    ASSERT_EQ(reg.disconnect("u1"), Outcome::ok);
    ASSERT_EQ(reg.connect("u1", ipv4("127.0.0.1"), 1), Outcome::ok);
    connected("late");
    EXPECT_GT(reg.retained_count(), 0u);
    while (!fill(c, body, body.size() + 37)) {
    }
    auto f = fields_of(body);
    ASSERT_EQ(f.size(), 300u);
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(f[3 * i], "u" + std::to_string(i));
        EXPECT_EQ(f[3 * i + 2], std::to_string(1000 + i));
    }
    // The cursor is done: every retained node is freed, and new lists see the present.
    EXPECT_EQ(reg.retained_count(), 0u);
    auto now = users("u1");
    EXPECT_EQ(now.size(), 3u * 51);
}

// A cursor not filled yet already holds its snapshot: a store may answer a list now and
// have it streamed later, after other requests changed the registry.
TEST_F(RegistryTest, UnfilledCursorHoldsItsSnapshot)
{
    connected("alice");
    connected("bob", 5);
    ListCursor c;
    ASSERT_EQ(reg.list_users("alice", c), Outcome::ok);
    ASSERT_EQ(reg.unregister_user("bob"), Outcome::ok);
    EXPECT_EQ(reg.retained_count(), 2u);  // bob and his connection
    EXPECT_EQ(drain(c), (std::vector<std::string>{"alice", "127.0.0.1", "4000", "bob", "127.0.0.1", "5"}));
    EXPECT_EQ(reg.retained_count(), 0u);
}

// A head removed while an older cursor holds it is skipped by a new cursor, which must not
// rest on it: the older cursor's release frees it.
TEST_F(RegistryTest, NewCursorDoesNotRestOnANodeOnlyAnOlderOneSees)
{
    for (const char* u : {"a", "b", "c"})
        connected(u);
    ListCursor older;
    ASSERT_EQ(reg.list_users("a", older), Outcome::ok);
    ASSERT_EQ(reg.unregister_user("a"), Outcome::ok);  // the head, kept for `older`
    ListCursor newer;
    ASSERT_EQ(reg.list_users("b", newer), Outcome::ok);
    older = ListCursor();  // frees a
    EXPECT_EQ(reg.retained_count(), 0u);
    EXPECT_EQ(drain(newer), (std::vector<std::string>{"b", "127.0.0.1", "4000", "c", "127.0.0.1", "4000"}));
}

TEST_F(RegistryTest, OverlappingCursorsFreeInOrder)
{
    connected("alice");
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(reg.publish("alice", "/f" + std::to_string(i), ""), Outcome::ok);
    ListCursor a, b;
    std::string ba, bb;
    ASSERT_EQ(reg.list_content("alice", "alice", a), Outcome::ok);
    ASSERT_FALSE(fill(a, ba, 5));
    ASSERT_EQ(reg.remove("alice", "/f10"), Outcome::ok);
    ASSERT_EQ(reg.list_content("alice", "alice", b), Outcome::ok);
    ASSERT_FALSE(fill(b, bb, 5));
    ASSERT_EQ(reg.remove("alice", "/f11"), Outcome::ok);
    EXPECT_EQ(reg.retained_count(), 2u);
    a = ListCursor();  // releasing the older cursor frees what only it could see
    EXPECT_EQ(reg.retained_count(), 1u);
    while (!fill(b, bb, bb.size() + 5)) {
    }
    EXPECT_EQ(fields_of(bb).size(), 19u);
    EXPECT_EQ(reg.retained_count(), 0u);
}

TEST_F(RegistryTest, ScalesToManyUsersWithoutLimits)
{
    for (int i = 0; i < 50000; ++i) {
        const std::string name = "user" + std::to_string(i);
        ASSERT_EQ(reg.register_user(name), Outcome::ok);
    }
    EXPECT_EQ(reg.user_count(), 50000u);
    EXPECT_EQ(reg.register_user("user49999"), Outcome::name_in_use);
}

// The liveness walk steps over connections kept only for a paused list cursor, and over
// the one it would give next when that one is freed.
TEST_F(RegistryTest, WalkSkipsRemovedConnectionsKeptForACursor)
{
    for (const char* n : {"alice", "bob", "carol", "dave"})
        connected(n);
    const auto names = [](const std::vector<UserEndpoint>& v) {
        std::vector<std::string> out;
        for (const auto& u : v)
            out.push_back(u.name);
        return out;
    };
    using V = std::vector<std::string>;
    std::vector<UserEndpoint> got;
    reg.walk_connected(1, got);
    EXPECT_EQ(names(got), V{"alice"});
    {
        ListCursor paused;  // pins the generation: bob stays linked, as removed
        ASSERT_EQ(reg.list_users("alice", paused), Outcome::ok);
        ASSERT_EQ(reg.disconnect("bob"), Outcome::ok);
        got.clear();
        reg.walk_connected(1, got);
        EXPECT_EQ(names(got), V{"carol"});
        ASSERT_EQ(reg.disconnect("dave"), Outcome::ok);  // the next one, removed while pinned
    }  // the cursor goes: bob and dave are freed, the walk's position with them
    got.clear();
    reg.walk_connected(5, got);
    EXPECT_TRUE(got.empty());  // the round ended at dave
    reg.walk_connected(5, got);
    EXPECT_EQ(names(got), (V{"alice", "carol"}));
}

// --auth ip: a user belongs to the address that registered it; the other mutations are
// checked after the user's existence and before anything else; reads stay open.
TEST(RegistryOwnership, ByAddress)
{
    Registry reg(AuthMode::ip);
    const Requester home{ipv4("127.0.0.1"), {}}, other{ipv4("127.0.0.2"), {}};
    ASSERT_EQ(reg.register_user("alice", home), Outcome::ok);
    EXPECT_EQ(reg.connect("alice", other.ip, 1, other), Outcome::not_owner);
    EXPECT_EQ(reg.connect("ghost", other.ip, 1, other), Outcome::no_such_user);  // existence first
    ASSERT_EQ(reg.connect("alice", home.ip, 4000, home), Outcome::ok);
    EXPECT_EQ(reg.publish("alice", "/a", "", other), Outcome::not_owner);
    ASSERT_EQ(reg.publish("alice", "/a", "", home), Outcome::ok);
    EXPECT_EQ(reg.remove("alice", "/a", other), Outcome::not_owner);
    EXPECT_EQ(reg.disconnect("alice", other), Outcome::not_owner);
    EXPECT_EQ(reg.unregister_user("alice", other), Outcome::not_owner);
    EXPECT_EQ(reg.owns("alice", other), Outcome::not_owner);
    EXPECT_EQ(reg.owns("alice", home), Outcome::ok);
    EXPECT_EQ(reg.owns("nobody", other), Outcome::ok);  // free to register
    // Nothing changed, and reads work from anywhere.
    EXPECT_EQ(reg.connected_count(), 1u);
    EXPECT_EQ(reg.publication_count(), 1u);
    Address ip;
    std::uint16_t port = 0;
    ASSERT_EQ(reg.register_user("bob", other), Outcome::ok);
    ASSERT_EQ(reg.connect("bob", other.ip, 5000, other), Outcome::ok);
    EXPECT_EQ(reg.get_user_info("bob", "alice", ip, port), Outcome::ok);
    EXPECT_EQ(port, 4000);
    EXPECT_EQ(reg.unregister_user("alice", home), Outcome::ok);
}

TEST(RegistryOwnership, NoneIsTheCourse)
{
    Registry reg(AuthMode::none);
    ASSERT_EQ(reg.register_user("alice", {ipv4("127.0.0.1"), {}}), Outcome::ok);
    EXPECT_EQ(reg.unregister_user("alice", {ipv4("127.0.0.2"), {}}), Outcome::ok);
}

TEST(RegistryOwnership, ByKeyFromAnyAddress)
{
    if (!keys_supported())
        GTEST_SKIP() << "built without libsodium: no --auth key";
    Registry reg(AuthMode::key);
    const std::string key(64, 'a'), wrong(64, 'b');
    const Requester at1{ipv4("127.0.0.1"), key}, at2{ipv4("127.0.0.2"), key};
    const Requester thief{ipv4("127.0.0.1"), wrong}, keyless{ipv4("127.0.0.1"), {}};
    ASSERT_EQ(reg.register_user("alice", at1), Outcome::ok);
    ASSERT_NE(reg.user("alice")->key, nullptr);
    EXPECT_NE(std::string(reinterpret_cast<const char*>(reg.user("alice")->key->data()), 32), key.substr(0, 32));
    EXPECT_EQ(reg.connect("alice", at2.ip, 4000, at2), Outcome::ok);  // moved: the key is enough
    EXPECT_EQ(reg.disconnect("alice", thief), Outcome::not_owner);      // even from its first address
    EXPECT_EQ(reg.disconnect("alice", keyless), Outcome::not_owner);
    EXPECT_EQ(reg.disconnect("alice", at2), Outcome::ok);
    // Registered without a key (a course client): the address rule.
    ASSERT_EQ(reg.register_user("carol", keyless), Outcome::ok);
    EXPECT_EQ(reg.connect("carol", at2.ip, 1, at2), Outcome::not_owner);
    EXPECT_EQ(reg.connect("carol", thief.ip, 1, thief), Outcome::ok);
}

TEST(Subnet, ParseAndContain)
{
    Subnet s;
    ASSERT_TRUE(Subnet::parse("127.0.0.1", s));
    EXPECT_EQ(s.prefix, 32u);
    EXPECT_TRUE(s.contains(ipv4("127.0.0.1")));
    EXPECT_FALSE(s.contains(ipv4("127.0.0.2")));
    ASSERT_TRUE(Subnet::parse("10.1.0.0/15", s));
    EXPECT_TRUE(s.contains(ipv4("10.0.255.1")));
    EXPECT_TRUE(s.contains(ipv4("10.1.2.3")));
    EXPECT_FALSE(s.contains(ipv4("10.2.0.0")));
    ASSERT_TRUE(Subnet::parse("0.0.0.0/0", s));
    EXPECT_TRUE(s.contains(ipv4("8.8.8.8")));
    Address v6;
    ASSERT_TRUE(Address::parse("fd00::5", v6));
    EXPECT_FALSE(s.contains(v6));  // an IPv4 block holds no IPv6 address
    ASSERT_TRUE(Subnet::parse("fd00::/8", s));
    EXPECT_TRUE(s.contains(v6));
    for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x", "host", "10.0.0.0/-1"})
        EXPECT_FALSE(Subnet::parse(bad, s)) << bad;
}

// The users' set against a model, with a hash that collides on purpose so that runs
// wrap around the table and every deletion shifts entries back.
struct Named {
    std::string name;
};
struct NamedKey {
    std::string_view operator()(const Named* n) const { return n->name; }
};
struct PoorHash {
    std::size_t operator()(std::string_view s) const { return s.size() % 7 + (s.empty() ? 0 : s[0] % 3) * 1000003; }
};

TEST(FlatSet, AgreesWithAModelUnderCollisions)
{
    FlatSet<Named, std::string_view, NamedKey, PoorHash> set;
    std::map<std::string, std::unique_ptr<Named>> model;
    std::uint32_t seed = 12345;
    const auto next = [&] { return seed = seed * 1103515245u + 12345u; };
    for (int step = 0; step < 20000; ++step) {
        const std::string key = "k" + std::to_string(next() % 300);
        switch (next() % 3) {
        case 0: {
            auto n = std::make_unique<Named>(Named{key});
            const auto [found, added] = set.insert(n.get());
            ASSERT_EQ(added, model.count(key) == 0) << step;
            if (added)
                model[key] = std::move(n);
            else
                ASSERT_EQ(found, model[key].get());
            break;
        }
        case 1: {
            const bool erased = set.erase(key);  // before the model frees the element
            ASSERT_EQ(erased, model.erase(key) == 1) << step;
            break;
        }
        default: {
            Named* found = set.find(key);
            auto it = model.find(key);
            ASSERT_EQ(found, it == model.end() ? nullptr : it->second.get()) << step;
        }
        }
        ASSERT_EQ(set.size(), model.size());
    }
    for (const auto& [key, n] : model)
        ASSERT_EQ(set.find(key), n.get());
    std::size_t seen = 0;
    set.for_each([&](Named*) { ++seen; });
    EXPECT_EQ(seen, model.size());
}

}  // namespace
}  // namespace peerdex
