#include "registry.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <vector>

namespace peerdex {
namespace {

Address ipv4(const char* text)
{
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, text, &sa.sin_addr);
    return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

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

std::vector<std::string> drain(ListCursor& c, std::size_t chunk = 1 << 20)
{
    std::string body;
    while (!c.fill(body, body.size() + chunk)) {
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

TEST_F(RegistryTest, Register)
{
    EXPECT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.register_user("alice"), Outcome::name_in_use);
    EXPECT_EQ(reg.register_user("Alice"), Outcome::ok);  // case-sensitive
    EXPECT_EQ(reg.user_count(), 2u);
}

TEST_F(RegistryTest, Unregister)
{
    EXPECT_EQ(reg.unregister_user("ghost"), Outcome::no_such_user);
    connected("alice");
    ASSERT_EQ(reg.publish("alice", "/a", "d"), Outcome::ok);
    EXPECT_EQ(reg.unregister_user("alice"), Outcome::ok);  // connected or not
    EXPECT_EQ(reg.user_count(), 0u);
    EXPECT_EQ(reg.connected_count(), 0u);
    EXPECT_EQ(reg.publication_count(), 0u);
    EXPECT_EQ(reg.unregister_user("alice"), Outcome::no_such_user);
    // The name is free again and its publications are gone.
    connected("alice");
    EXPECT_TRUE(content("alice").empty());
}

TEST_F(RegistryTest, Connect)
{
    EXPECT_EQ(reg.connect("ghost", ipv4("10.0.0.1"), 1), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.connect("alice", ipv4("10.0.0.1"), 1234), Outcome::ok);
    EXPECT_EQ(reg.connect("alice", ipv4("10.0.0.2"), 999), Outcome::already_connected);
    EXPECT_EQ(users(), (std::vector<std::string>{"alice", "10.0.0.1", "1234"}));
}

TEST_F(RegistryTest, PublishChecksInCodeOrder)
{
    EXPECT_EQ(reg.publish("ghost", "/a", ""), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.publish("alice", "/a", ""), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("127.0.0.1"), 1), Outcome::ok);
    EXPECT_EQ(reg.publish("alice", "/a", "first"), Outcome::ok);
    EXPECT_EQ(reg.publish("alice", "/a", "again"), Outcome::already_published);
    connected("bob");
    EXPECT_EQ(reg.publish("bob", "/a", "bob may publish the same name"), Outcome::ok);
    EXPECT_EQ(reg.publication_count(), 2u);
}

TEST_F(RegistryTest, Delete)
{
    EXPECT_EQ(reg.remove("ghost", "/a"), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.remove("alice", "/a"), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("127.0.0.1"), 1), Outcome::ok);
    EXPECT_EQ(reg.remove("alice", "/a"), Outcome::not_published);
    ASSERT_EQ(reg.publish("alice", "/a", ""), Outcome::ok);
    EXPECT_EQ(reg.remove("alice", "/a"), Outcome::ok);
    EXPECT_EQ(reg.remove("alice", "/a"), Outcome::not_published);
}

TEST_F(RegistryTest, Disconnect)
{
    EXPECT_EQ(reg.disconnect("ghost"), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.disconnect("alice"), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("127.0.0.1"), 1), Outcome::ok);
    ASSERT_EQ(reg.publish("alice", "/kept", ""), Outcome::ok);
    EXPECT_EQ(reg.disconnect("alice"), Outcome::ok);
    EXPECT_EQ(reg.disconnect("alice"), Outcome::not_connected);
    // Publications survive DISCONNECT.
    connected("bob");
    EXPECT_EQ(content("alice", "bob"), std::vector<std::string>{"/kept"});
}

TEST_F(RegistryTest, ListUsersCodesAndOrder)
{
    ListCursor c;
    EXPECT_EQ(reg.list_users("ghost", c), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.list_users("alice", c), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("127.0.0.1"), 1), Outcome::ok);
    connected("bob", 2);
    connected("carol", 3);
    ASSERT_EQ(reg.disconnect("bob"), Outcome::ok);
    ASSERT_EQ(reg.list_users("alice", c), Outcome::ok);
    EXPECT_EQ(c.count(), 2u);  // the requester is included, bob is not
    EXPECT_EQ(drain(c), (std::vector<std::string>{"alice", "127.0.0.1", "1", "carol", "127.0.0.1", "3"}));
}

TEST_F(RegistryTest, ListContentCodesAndOrder)
{
    ListCursor c;
    EXPECT_EQ(reg.list_content("ghost", "alice", c), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.list_content("alice", "alice", c), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("127.0.0.1"), 1), Outcome::ok);
    EXPECT_EQ(reg.list_content("alice", "ghost", c), Outcome::no_such_target);
    ASSERT_EQ(reg.register_user("bob"), Outcome::ok);  // a target need not be connected
    EXPECT_EQ(reg.list_content("alice", "bob", c), Outcome::ok);
    EXPECT_EQ(c.count(), 0u);
    for (const char* p : {"/c", "/a", "/b"})
        ASSERT_EQ(reg.publish("alice", p, ""), Outcome::ok);
    ASSERT_EQ(reg.remove("alice", "/a"), Outcome::ok);
    ASSERT_EQ(reg.publish("alice", "/a", ""), Outcome::ok);
    EXPECT_EQ(content("alice"), (std::vector<std::string>{"/c", "/b", "/a"}));
}

TEST_F(RegistryTest, GetUserInfo)
{
    Address ip;
    std::uint16_t port = 0;
    EXPECT_EQ(reg.get_user_info("ghost", "alice", ip, port), Outcome::no_such_user);
    ASSERT_EQ(reg.register_user("alice"), Outcome::ok);
    EXPECT_EQ(reg.get_user_info("alice", "alice", ip, port), Outcome::not_connected);
    ASSERT_EQ(reg.connect("alice", ipv4("192.168.1.20"), 5555), Outcome::ok);
    EXPECT_EQ(reg.get_user_info("alice", "ghost", ip, port), Outcome::no_such_target);
    ASSERT_EQ(reg.register_user("bob"), Outcome::ok);
    EXPECT_EQ(reg.get_user_info("alice", "bob", ip, port), Outcome::target_offline);
    EXPECT_EQ(port, 0);
    EXPECT_EQ(reg.get_user_info("alice", "alice", ip, port), Outcome::ok);
    EXPECT_EQ(ip.str(), "192.168.1.20");
    EXPECT_EQ(port, 5555);
}

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

// A paused cursor streams the list as it was, whatever happens meanwhile.
TEST_F(RegistryTest, PausedCursorSeesASnapshot)
{
    for (int i = 0; i < 100; ++i)
        connected(("u" + std::to_string(i)).c_str(), static_cast<std::uint16_t>(1000 + i));
    ListCursor c;
    ASSERT_EQ(reg.list_users("u0", c), Outcome::ok);
    ASSERT_EQ(c.count(), 100u);
    std::string body;
    ASSERT_FALSE(c.fill(body, 50));  // a few entries only
    // Churn: remove users behind and ahead of the cursor, add new ones, reconnect one.
    for (int i = 0; i < 100; i += 2)
        ASSERT_EQ(reg.unregister_user("u" + std::to_string(i)), Outcome::ok);
    ASSERT_EQ(reg.disconnect("u1"), Outcome::ok);
    ASSERT_EQ(reg.connect("u1", ipv4("127.0.0.1"), 1), Outcome::ok);
    connected("late");
    EXPECT_GT(reg.retained_count(), 0u);
    while (!c.fill(body, body.size() + 37)) {
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

TEST_F(RegistryTest, PausedContentCursorSurvivesUnregister)
{
    connected("alice");
    connected("bob");
    for (int i = 0; i < 50; ++i)
        ASSERT_EQ(reg.publish("bob", "/file" + std::to_string(i), "d"), Outcome::ok);
    ListCursor c;
    ASSERT_EQ(reg.list_content("alice", "bob", c), Outcome::ok);
    std::string body;
    ASSERT_FALSE(c.fill(body, 30));
    ASSERT_EQ(reg.remove("bob", "/file49"), Outcome::ok);
    ASSERT_EQ(reg.unregister_user("bob"), Outcome::ok);
    while (!c.fill(body, body.size() + 10)) {
    }
    auto f = fields_of(body);
    ASSERT_EQ(f.size(), 50u);
    EXPECT_EQ(f[49], "/file49");
    EXPECT_EQ(reg.retained_count(), 0u);
    ListCursor again;
    EXPECT_EQ(reg.list_content("alice", "bob", again), Outcome::no_such_target);
}

TEST_F(RegistryTest, OverlappingCursorsFreeInOrder)
{
    connected("alice");
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(reg.publish("alice", "/f" + std::to_string(i), ""), Outcome::ok);
    ListCursor a, b;
    std::string ba, bb;
    ASSERT_EQ(reg.list_content("alice", "alice", a), Outcome::ok);
    ASSERT_FALSE(a.fill(ba, 5));
    ASSERT_EQ(reg.remove("alice", "/f10"), Outcome::ok);
    ASSERT_EQ(reg.list_content("alice", "alice", b), Outcome::ok);
    ASSERT_FALSE(b.fill(bb, 5));
    ASSERT_EQ(reg.remove("alice", "/f11"), Outcome::ok);
    EXPECT_EQ(reg.retained_count(), 2u);
    a = ListCursor();  // releasing the older cursor frees what only it could see
    EXPECT_EQ(reg.retained_count(), 1u);
    while (!b.fill(bb, bb.size() + 5)) {
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

}  // namespace
}  // namespace peerdex
