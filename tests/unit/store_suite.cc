// The behaviour every store must have (store/store.hh), run against each backend: every
// result of every operation in the protocol page's order of checks, publication order, list
// snapshots that do not change while streamed, and exactly one completion per request.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <functional>
#include <string>
#include <vector>

#include "addresses.hh"
#include "store.hh"
#ifdef PEERDEX_HAVE_REDIS
#include "redis_store.hh"
#endif
#ifdef PEERDEX_HAVE_SQLITE
#include <sqlite3.h>
#endif

namespace peerdex {
namespace {

using test::ipv4;

// Collects list entries as text ("name ip port" or "path"), `chunk` entries per pull.
class Collect final : public ListSink {
public:
    explicit Collect(std::size_t chunk) : chunk_(chunk) {}
    void user(std::string_view name, const Address& ip, std::uint16_t port) override
    {
        entries.push_back(std::string(name) + " " + ip.str() + " " + std::to_string(port));
        ++in_chunk_;
    }
    void content(std::string_view path, std::string_view description, const ContentMeta& meta) override
    {
        entries.push_back(std::string(path) + (description.empty() ? "" : " (" + std::string(description) + ")") +
                          text(meta));
        ++in_chunk_;
    }
    void hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
             std::string_view description, const ContentMeta& meta) override
    {
        entries.push_back(std::string(user) + " " + ip.str() + " " + std::to_string(port) + " " + std::string(path) +
                          " (" + std::string(description) + ")" + text(meta));
        ++in_chunk_;
    }
    void source(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                std::uint64_t size) override
    {
        entries.push_back(std::string(user) + " " + ip.str() + " " + std::to_string(port) + " " + std::string(path) +
                          " " + std::to_string(size));
        ++in_chunk_;
    }
    // " [size]" or " [size id]" when known: nothing at all for a publication of the course protocol.
    static std::string text(const ContentMeta& meta)
    {
        if (!meta.has_size)
            return meta.has_id ? " [an id without a size]" : "";
        return " [" + std::to_string(meta.size) + (meta.has_id ? " " + content_id_text(meta.id) : "") + "]";
    }
    bool full() const override { return in_chunk_ >= chunk_; }
    void next_chunk() { in_chunk_ = 0; }

    std::vector<std::string> entries;

private:
    std::size_t chunk_;
    std::size_t in_chunk_ = 0;
};

// Closes the store and runs the loop until everything has closed.
void close_store(uv_loop_t& loop, std::unique_ptr<Store>& store)
{
    bool closed = false;
    store->close([](void* ctx) { *static_cast<bool*>(ctx) = true; }, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_TRUE(closed);
    store.reset();
    EXPECT_EQ(uv_loop_close(&loop), 0);
}

// The shared store's suite runs against a real redis-server of its own (the one the build
// found), on a unix socket in a temporary directory; emptied before each test.
class RedisServer {
public:
    static RedisServer& get()
    {
        static RedisServer server;
        return server;
    }
    bool up() const { return pid_ > 0; }
    const std::string& why() const { return why_; }
    std::string target() const { return "unix:" + dir_ + "/redis.sock"; }
    bool flush() const
    {
        const std::string cli = "redis-cli -s '" + dir_ + "/redis.sock' flushall >/dev/null";
        return std::system(cli.c_str()) == 0;
    }
    ~RedisServer()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        if (!dir_.empty())
            std::system(("rm -rf '" + dir_ + "'").c_str());
    }

private:
    RedisServer()
    {
        const char* program = std::getenv("PEERDEX_REDIS_SERVER");
        if (!program || !*program) {
            why_ = "no redis-server was found when this was built";
            return;
        }
        char tmpl[] = "/tmp/peerdex-store-suite-redis-XXXXXX";
        if (!::mkdtemp(tmpl)) {
            why_ = "no temporary directory";
            return;
        }
        dir_ = tmpl;
        int out[2];
        if (::pipe(out) != 0)
            return;
        const std::string sock = dir_ + "/redis.sock";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::dup2(out[1], 2);
            ::execl(program, program, "--port", "0", "--unixsocket", sock.c_str(), "--dir", dir_.c_str(), "--save",
                    "", "--appendonly", "no", "--logfile", "", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        // Ready when it says so (its log line), not after a guessed wait.
        std::string seen;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (seen.find("ready to accept connections") == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{out[0], POLLIN, 0};
            char buf[4096];
            ssize_t n = 0;
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0 ||
                (n = ::read(out[0], buf, sizeof buf)) <= 0) {
                why_ = "redis-server did not start: " + seen;
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
                pid_ = -1;
                break;
            }
            for (ssize_t i = 0; i < n; ++i)
                seen.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(buf[i]))));
        }
        // Its later log lines go nowhere; the pipe stays open so it never gets SIGPIPE.
        ::fcntl(out[0], F_SETFD, FD_CLOEXEC);
    }
    std::string dir_;
    std::string why_;
    pid_t pid_ = -1;
};

struct Answer {
    int calls = 0;
    StoreReply reply;
};

class StoreSuite : public ::testing::TestWithParam<std::string> {
protected:
    // The durable store keeps its file in a directory of its own, removed after.
    StoreConfig config()
    {
        if (GetParam() == "redis")
            return {RedisServer::get().target(), "", true};
        if (GetParam() != "sqlite")
            return {GetParam(), "", true};
        if (dir_.empty()) {
            char tmpl[] = "/tmp/peerdex-store-suite-XXXXXX";
            if (::mkdtemp(tmpl))
                dir_ = tmpl;
        }
        return {"", dir_ + "/state.db", true};
    }
    ~StoreSuite() override
    {
        if (!dir_.empty())
            std::system(("rm -rf '" + dir_ + "'").c_str());
    }
    // Closes the store and opens it again from what it stored (durable stores only).
    void reopen()
    {
        close_store(loop_, store_);
        ASSERT_EQ(uv_loop_init(&loop_), 0);
        std::string error;
        store_ = make_store(&loop_, config(), error);
        ASSERT_TRUE(store_) << error;
    }

    void SetUp() override
    {
        if (GetParam() == "redis") {
            if (!RedisServer::get().up())
                GTEST_SKIP() << RedisServer::get().why();
            ASSERT_TRUE(RedisServer::get().flush());
        }
        ASSERT_EQ(uv_loop_init(&loop_), 0);
        std::string error;
        store_ = make_store(&loop_, config(), error);
        ASSERT_TRUE(store_) << error;
    }
    void TearDown() override
    {
        if (store_)
            close_store(loop_, store_);
    }

    static Completion to(Answer& a)
    {
        return Completion(
            [](void* ctx, std::uint64_t, StoreReply&& r) {
                auto* answer = static_cast<Answer*>(ctx);
                ++answer->calls;
                answer->reply = std::move(r);
            },
            &a, 0);
    }
    // Runs loop turns until `done` holds (a bounded number: a store that never answers fails).
    void turn_until(const std::function<bool()>& done)
    {
        for (int i = 0; i < 1000 && !done(); ++i)
            uv_run(&loop_, UV_RUN_ONCE);  // waits for the pool's work, if any
        ASSERT_TRUE(done()) << "the store never answered";
    }
    // One request; its answer, after checking that it came exactly once.
    StoreReply call(const std::function<void(Store&, Completion)>& request)
    {
        Answer a;
        request(*store_, to(a));
        turn_until([&] { return a.calls > 0; });
        for (int i = 0; i < 3; ++i)  // a second completion would come on a later turn
            uv_run(&loop_, UV_RUN_NOWAIT);
        EXPECT_EQ(a.calls, 1) << "a completion must be called exactly once";
        return std::move(a.reply);
    }

    // The steps of a user's life both model tests take at random, applied to the store and
    // to the model: REGISTER (kind 0), CONNECT (1), DISCONNECT (2), UNREGISTER (3) and
    // DELETE of one of its publications (4).
    template <class Model, class Below>
    void lifecycle_step(Model& model, const std::string& user, std::uint32_t kind, Below& below)
    {
        auto* m = model.count(user) ? &model[user] : nullptr;
        switch (kind) {
        case 0:
            if (!m) {
                ASSERT_EQ(register_user(user), Outcome::ok);
                model[user];
            }
            return;
        case 1:
            if (m && !m->connected) {
                const auto port = static_cast<std::uint16_t>(1000 + below(1000));
                ASSERT_EQ(connect(user, "127.0.0.1", port), Outcome::ok);
                m->connected = true;
                m->port = port;
            }
            return;
        case 2:
            if (m && m->connected) {
                ASSERT_EQ(disconnect(user), Outcome::ok);
                m->connected = false;
            }
            return;
        case 3:
            if (m && below(4) == 0) {
                ASSERT_EQ(unregister_user(user), Outcome::ok);
                model.erase(user);
            }
            return;
        default:
            if (m && m->connected && !m->pubs.empty()) {
                const std::size_t i = below(static_cast<std::uint32_t>(m->pubs.size()));
                ASSERT_EQ(remove(user, m->pubs[i].path), Outcome::ok);
                m->pubs.erase(m->pubs.begin() + static_cast<std::ptrdiff_t>(i));
            }
            return;
        }
    }
    Outcome register_user(const std::string& u)
    {
        return call([&](Store& s, Completion d) { s.register_user(u, by_, d); }).outcome;
    }
    Outcome unregister_user(const std::string& u)
    {
        return call([&](Store& s, Completion d) { s.unregister_user(u, by_, d); }).outcome;
    }
    Outcome connect(const std::string& u, const char* ip = "127.0.0.1", std::uint16_t port = 4000)
    {
        Requester by = by_;
        by.ip = ipv4(ip);
        return call([&](Store& s, Completion d) { s.connect(u, by, port, d); }).outcome;
    }
    Outcome disconnect(const std::string& u)
    {
        return call([&](Store& s, Completion d) { s.disconnect(u, by_, d); }).outcome;
    }
    Outcome publish(const std::string& u, const std::string& path, const std::string& description = "",
                    const ContentMeta& meta = kUnknownContent)
    {
        return call([&](Store& s, Completion d) { s.publish(u, by_, path, description, meta, d); }).outcome;
    }
    Outcome remove(const std::string& u, const std::string& path)
    {
        return call([&](Store& s, Completion d) { s.remove(u, by_, path, d); }).outcome;
    }
    StoreReply list_users(const std::string& requester)
    {
        return call([&](Store& s, Completion d) { s.list_users(requester, d); });
    }
    StoreReply list_content(const std::string& requester, const std::string& target)
    {
        return call([&](Store& s, Completion d) { s.list_content(requester, target, d); });
    }
    StoreReply get_user_info(const std::string& requester, const std::string& target)
    {
        return call([&](Store& s, Completion d) { s.get_user_info(requester, target, d); });
    }
    void connected(const std::string& u, std::uint16_t port = 4000)
    {
        ASSERT_EQ(register_user(u), Outcome::ok);
        ASSERT_EQ(connect(u, "127.0.0.1", port), Outcome::ok);
    }

    // Pulls one chunk of `chunk` entries (or to the end); true at the end.
    bool pull(ListStream& stream, Collect& into)
    {
        into.next_chunk();
        for (;;) {
            bool woken = false;
            const Wakeup ready{[](void* ctx, std::uint64_t) { *static_cast<bool*>(ctx) = true; }, &woken, 0};
            switch (stream.pull(into, ready)) {
            case ListStream::Pull::end:
                return true;
            case ListStream::Pull::failed:
                ADD_FAILURE() << "the stream failed";
                return true;
            case ListStream::Pull::more:
                EXPECT_TRUE(into.full()) << "a stream pauses only when the sink is full";
                return false;
            case ListStream::Pull::later:
                turn_until([&] { return woken; });
                break;
            }
        }
    }
    std::vector<std::string> entries(StoreReply reply, std::size_t chunk = 1000)
    {
        EXPECT_EQ(reply.outcome, Outcome::ok);
        if (!reply.list) {
            ADD_FAILURE() << "an ok list answer carries a stream";
            return {};
        }
        Collect c(chunk);
        while (!pull(*reply.list, c)) {
        }
        EXPECT_EQ(c.entries.size(), reply.list->count()) << "the count announces exactly the entries streamed";
        return c.entries;
    }
    StoreCounts counts() const { return store_->counts(); }

    uv_loop_t loop_{};
    std::unique_ptr<Store> store_;
    Requester by_{ipv4("127.0.0.1"), {}};  // who sends the requests of the helpers
    std::string dir_;
};

TEST_P(StoreSuite, Register)
{
    EXPECT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(register_user("alice"), Outcome::name_in_use);
    EXPECT_EQ(register_user("Alice"), Outcome::ok);  // case-sensitive
    EXPECT_EQ(counts().users, 2u);
}

TEST_P(StoreSuite, Unregister)
{
    EXPECT_EQ(unregister_user("ghost"), Outcome::no_such_user);
    connected("alice");
    ASSERT_EQ(publish("alice", "/a", "d"), Outcome::ok);
    EXPECT_EQ(unregister_user("alice"), Outcome::ok);  // connected or not
    EXPECT_EQ(counts().users, 0u);
    EXPECT_EQ(counts().connected, 0u);
    EXPECT_EQ(counts().publications, 0u);
    EXPECT_EQ(unregister_user("alice"), Outcome::no_such_user);
    // The name is free again and its publications are gone.
    connected("alice");
    EXPECT_TRUE(entries(list_content("alice", "alice")).empty());
}

TEST_P(StoreSuite, Connect)
{
    EXPECT_EQ(connect("ghost", "10.0.0.1", 1), Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(connect("alice", "10.0.0.1", 1234), Outcome::ok);
    EXPECT_EQ(connect("alice", "10.0.0.2", 999), Outcome::already_connected);
    EXPECT_EQ(entries(list_users("alice")), std::vector<std::string>{"alice 10.0.0.1 1234"});
}

TEST_P(StoreSuite, PublishChecksInCodeOrder)
{
    EXPECT_EQ(publish("ghost", "/a"), Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(publish("alice", "/a"), Outcome::not_connected);
    ASSERT_EQ(connect("alice"), Outcome::ok);
    EXPECT_EQ(publish("alice", "/a", "first"), Outcome::ok);
    EXPECT_EQ(publish("alice", "/a", "again"), Outcome::already_published);
    connected("bob");
    EXPECT_EQ(publish("bob", "/a", "bob may publish the same name"), Outcome::ok);
    EXPECT_EQ(counts().publications, 2u);
    // The description is kept with the publication, the first one given.
    EXPECT_EQ(entries(list_content("bob", "alice")), std::vector<std::string>{"/a (first)"});
}

TEST_P(StoreSuite, Delete)
{
    EXPECT_EQ(remove("ghost", "/a"), Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(remove("alice", "/a"), Outcome::not_connected);
    ASSERT_EQ(connect("alice"), Outcome::ok);
    EXPECT_EQ(remove("alice", "/a"), Outcome::not_published);
    ASSERT_EQ(publish("alice", "/a"), Outcome::ok);
    EXPECT_EQ(remove("alice", "/a"), Outcome::ok);
    EXPECT_EQ(remove("alice", "/a"), Outcome::not_published);
    EXPECT_EQ(counts().publications, 0u);
}

TEST_P(StoreSuite, Disconnect)
{
    EXPECT_EQ(disconnect("ghost"), Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(disconnect("alice"), Outcome::not_connected);
    ASSERT_EQ(connect("alice"), Outcome::ok);
    ASSERT_EQ(publish("alice", "/kept"), Outcome::ok);
    EXPECT_EQ(disconnect("alice"), Outcome::ok);
    EXPECT_EQ(disconnect("alice"), Outcome::not_connected);
    EXPECT_EQ(counts().connected, 0u);
    // Publications survive DISCONNECT, and the user may CONNECT again.
    connected("bob");
    EXPECT_EQ(entries(list_content("bob", "alice")), std::vector<std::string>{"/kept"});
    EXPECT_EQ(connect("alice", "10.9.9.9", 7), Outcome::ok);
}

TEST_P(StoreSuite, ListUsersCodesAndOrder)
{
    EXPECT_EQ(list_users("ghost").outcome, Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(list_users("alice").outcome, Outcome::not_connected);
    ASSERT_EQ(connect("alice", "127.0.0.1", 1), Outcome::ok);
    connected("bob", 2);
    connected("carol", 3);
    ASSERT_EQ(disconnect("bob"), Outcome::ok);
    ASSERT_EQ(connect("bob", "127.0.0.2", 4), Outcome::ok);  // back at the end: connection order
    StoreReply r = list_users("alice");
    ASSERT_TRUE(r.list);
    EXPECT_EQ(r.list->count(), 3u);
    EXPECT_EQ(entries(std::move(r)),
              (std::vector<std::string>{"alice 127.0.0.1 1", "carol 127.0.0.1 3", "bob 127.0.0.2 4"}));
}

TEST_P(StoreSuite, ListContentCodesAndPublicationOrder)
{
    EXPECT_EQ(list_content("ghost", "alice").outcome, Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(list_content("alice", "alice").outcome, Outcome::not_connected);
    ASSERT_EQ(connect("alice"), Outcome::ok);
    EXPECT_EQ(list_content("alice", "ghost").outcome, Outcome::no_such_target);
    ASSERT_EQ(register_user("bob"), Outcome::ok);  // a target need not be connected
    EXPECT_TRUE(entries(list_content("alice", "bob")).empty());
    for (const char* p : {"/c", "/a", "/b"})
        ASSERT_EQ(publish("alice", p), Outcome::ok);
    ASSERT_EQ(remove("alice", "/a"), Outcome::ok);
    ASSERT_EQ(publish("alice", "/a"), Outcome::ok);
    EXPECT_EQ(entries(list_content("alice", "alice")), (std::vector<std::string>{"/c", "/b", "/a"}));
}

TEST_P(StoreSuite, GetUserInfo)
{
    EXPECT_EQ(get_user_info("ghost", "alice").outcome, Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(get_user_info("alice", "alice").outcome, Outcome::not_connected);
    ASSERT_EQ(connect("alice", "192.168.1.20", 5555), Outcome::ok);
    EXPECT_EQ(get_user_info("alice", "ghost").outcome, Outcome::no_such_target);
    ASSERT_EQ(register_user("bob"), Outcome::ok);
    EXPECT_EQ(get_user_info("alice", "bob").outcome, Outcome::target_offline);
    StoreReply r = get_user_info("alice", "alice");
    EXPECT_EQ(r.outcome, Outcome::ok);
    EXPECT_EQ(r.ip.str(), "192.168.1.20");
    EXPECT_EQ(r.port, 5555);
}

// Arguments are valid only during the call: a store must keep its own copies.
TEST_P(StoreSuite, ArgumentsMayChangeAfterTheCall)
{
    std::string name = "alice", path = "/a";
    Answer reg, pub;
    store_->register_user(name, by_, to(reg));
    name = "XXXXX";
    turn_until([&] { return reg.calls > 0; });
    name = "alice";
    ASSERT_EQ(connect(name), Outcome::ok);
    store_->publish(name, by_, path, "", kUnknownContent, to(pub));
    name.assign(100, 'y');  // reallocates: the old bytes are gone
    path = "/zzz";
    turn_until([&] { return pub.calls > 0; });
    EXPECT_EQ(pub.reply.outcome, Outcome::ok);
    EXPECT_EQ(entries(list_content("alice", "alice")), std::vector<std::string>{"/a"});
}

// An answered list streams the moment it was answered, however long it waits before its
// first chunk and whatever changes meanwhile.
TEST_P(StoreSuite, ListIsASnapshotWhileStreamed)
{
    const int n = 600;  // more than one chunk of any store (the shared store reads 256 at a time)
    for (int i = 0; i < n; ++i)
        connected("u" + std::to_string(i), static_cast<std::uint16_t>(1000 + i));
    StoreReply before = list_users("u0");  // not pulled at all until after the churn
    StoreReply during = list_users("u0");
    ASSERT_TRUE(before.list && during.list);
    Collect c(7);
    ASSERT_FALSE(pull(*during.list, c));  // a few entries only
    for (int i = 0; i < n; i += 2)
        ASSERT_EQ(unregister_user("u" + std::to_string(i)), Outcome::ok);
    ASSERT_EQ(disconnect("u1"), Outcome::ok);
    ASSERT_EQ(connect("u1", "127.0.0.1", 1), Outcome::ok);
    connected("late");
    while (!pull(*during.list, c)) {
    }
    std::vector<std::string> expected;
    for (int i = 0; i < n; ++i)
        expected.push_back("u" + std::to_string(i) + " 127.0.0.1 " + std::to_string(1000 + i));
    EXPECT_EQ(c.entries, expected);
    EXPECT_EQ(entries(std::move(before), 13), expected);
    // New lists see the present.
    EXPECT_EQ(entries(list_users("u1")).size(), static_cast<std::size_t>(n / 2 + 1));
}

TEST_P(StoreSuite, ContentSnapshotSurvivesUnregister)
{
    connected("alice");
    connected("bob");
    const int n = 600;  // more than one chunk of any store
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(publish("bob", "/file" + std::to_string(i)), Outcome::ok);
    StoreReply r = list_content("alice", "bob");
    ASSERT_TRUE(r.list);
    Collect c(5);
    ASSERT_FALSE(pull(*r.list, c));
    ASSERT_EQ(remove("bob", "/file" + std::to_string(n - 1)), Outcome::ok);
    ASSERT_EQ(unregister_user("bob"), Outcome::ok);
    while (!pull(*r.list, c)) {
    }
    ASSERT_EQ(c.entries.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(c.entries[n - 1], "/file" + std::to_string(n - 1));
    EXPECT_EQ(list_content("alice", "bob").outcome, Outcome::no_such_target);
}

// A stream dropped half-way (its session closed) costs nothing more and changes nothing.
TEST_P(StoreSuite, AbandonedStreamIsHarmless)
{
    connected("alice");
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(publish("alice", "/f" + std::to_string(i)), Outcome::ok);
    {
        StoreReply r = list_content("alice", "alice");
        Collect c(3);
        ASSERT_FALSE(pull(*r.list, c));
        ASSERT_EQ(remove("alice", "/f0"), Outcome::ok);
    }
    EXPECT_EQ(entries(list_content("alice", "alice")).size(), 19u);
}

// Requests of different users answer independently; each answer is its own.
TEST_P(StoreSuite, ManyRequestsInFlight)
{
    std::vector<Answer> answers(200);
    for (int i = 0; i < 200; ++i)
        store_->register_user("n" + std::to_string(i % 100), by_, to(answers[i]));
    turn_until([&] {
        for (auto& a : answers)
            if (a.calls == 0)
                return false;
        return true;
    });
    for (int i = 0; i < 200; ++i) {
        EXPECT_EQ(answers[i].calls, 1);
        EXPECT_EQ(answers[i].reply.outcome, i < 100 ? Outcome::ok : Outcome::name_in_use) << i;
    }
}

// Liveness: the walk gives every connected user once per round, in connection order, in
// chunks of at most `max`; a short chunk ends the round and the next call starts over.
TEST_P(StoreSuite, WalkConnectedGoesRoundEveryConnectedUser)
{
    const auto walk = [&](std::size_t max) {
        return entries(call([&](Store& s, Completion d) { s.walk_connected(max, d); }));
    };
    EXPECT_TRUE(walk(2).empty());  // nobody connected: a round of nothing
    for (int i = 0; i < 5; ++i)
        connected("u" + std::to_string(i), static_cast<std::uint16_t>(100 + i));
    ASSERT_EQ(register_user("offline"), Outcome::ok);  // registered only: never walked
    using V = std::vector<std::string>;
    EXPECT_EQ(walk(2), (V{"u0 127.0.0.1 100", "u1 127.0.0.1 101"}));
    // Changes during the round: the next user leaves, a new one arrives at the end.
    ASSERT_EQ(disconnect("u2"), Outcome::ok);
    connected("u5", 105);
    EXPECT_EQ(walk(2), (V{"u3 127.0.0.1 103", "u4 127.0.0.1 104"}));
    EXPECT_EQ(walk(2), (V{"u5 127.0.0.1 105"}));  // short: the round is over
    EXPECT_EQ(walk(10), (V{"u0 127.0.0.1 100", "u1 127.0.0.1 101", "u3 127.0.0.1 103", "u4 127.0.0.1 104",
                           "u5 127.0.0.1 105"}));
    // A round that ends exactly on a full chunk ends with an empty one.
    EXPECT_EQ(walk(5).size(), 5u);
    EXPECT_TRUE(walk(5).empty());
    // The user the walk would give next leaves (and the last one with it): the round ends.
    EXPECT_EQ(walk(4).size(), 4u);
    ASSERT_EQ(unregister_user("u5"), Outcome::ok);
    EXPECT_TRUE(walk(4).empty());
    EXPECT_EQ(walk(4).size(), 4u);
}

TEST_P(StoreSuite, ExpireDisconnectsOnlyTheProbedConnection)
{
    const auto expire = [&](const std::string& u, const char* ip, std::uint16_t port) {
        const Address a = ipv4(ip);
        return call([&](Store& s, Completion d) { s.expire(u, a, port, d); }).outcome;
    };
    EXPECT_EQ(expire("ghost", "127.0.0.1", 1), Outcome::no_such_user);
    connected("alice", 4000);
    connected("bob", 5000);
    ASSERT_EQ(publish("alice", "/a", "kept"), Outcome::ok);
    // Another endpoint than the one connected: alice reconnected since the probe began.
    EXPECT_EQ(expire("alice", "127.0.0.1", 4001), Outcome::not_connected);
    EXPECT_EQ(expire("alice", "127.0.0.2", 4000), Outcome::not_connected);
    EXPECT_EQ(counts().connected, 2u);
    EXPECT_EQ(expire("alice", "127.0.0.1", 4000), Outcome::ok);
    // Exactly as DISCONNECT: offline, still registered, publications kept.
    EXPECT_EQ(counts().connected, 1u);
    EXPECT_EQ(counts().users, 2u);
    EXPECT_EQ(entries(list_users("bob")), std::vector<std::string>{"bob 127.0.0.1 5000"});
    EXPECT_EQ(entries(list_content("bob", "alice")), std::vector<std::string>{"/a (kept)"});
    EXPECT_EQ(get_user_info("bob", "alice").outcome, Outcome::target_offline);
    EXPECT_EQ(disconnect("alice"), Outcome::not_connected);  // a DISCONNECT that lost the race
    EXPECT_EQ(expire("alice", "127.0.0.1", 4000), Outcome::not_connected);
    // A fresh connection afterwards, at the end of the list.
    EXPECT_EQ(connect("alice", "127.0.0.1", 4002), Outcome::ok);
    EXPECT_EQ(entries(list_users("bob")), (std::vector<std::string>{"bob 127.0.0.1 5000", "alice 127.0.0.1 4002"}));
}

// SEARCH through the store (peerdex-protocol(7), SEARCH): the requester's codes first,
// then the query's, and the hits in their order.
SearchQuery search_query(const std::string& text)
{
    SearchQuery q;
    EXPECT_EQ(parse_query(text, q), QueryFault::none) << text;
    return q;
}

TEST_P(StoreSuite, TheOperatorListsAndSearchesWithoutBeingAUser)
{
    // The status page's reads (kOperator): no requester checks, the same answers a
    // connected user gets; every other verb sees no such user.
    using V = std::vector<std::string>;
    EXPECT_EQ(entries(list_users(std::string(kOperator))), V{});
    connected("alice", 4001);
    connected("bob", 4002);
    ASSERT_EQ(publish("bob", "/music/song.ogg", "live"), Outcome::ok);
    ASSERT_EQ(register_user("carol"), Outcome::ok);  // not connected: not listed
    StoreReply r = list_users(std::string(kOperator));
    ASSERT_TRUE(r.list);
    EXPECT_EQ(r.list->count(), 2u);
    EXPECT_EQ(entries(std::move(r)), (V{"alice 127.0.0.1 4001", "bob 127.0.0.1 4002"}));
    const SearchQuery q = search_query("song");
    EXPECT_EQ(entries(call([&](Store& s, Completion d) { s.search(kOperator, {&q, 10}, d); })),
              V{"bob 127.0.0.1 4002 /music/song.ogg (live)"});
    EXPECT_EQ(list_content(std::string(kOperator), "bob").outcome, Outcome::no_such_user);
    EXPECT_EQ(get_user_info(std::string(kOperator), "bob").outcome, Outcome::no_such_user);
}

TEST_P(StoreSuite, SearchCodesOrderAndConnectedOwnersOnly)
{
    const auto search = [&](const std::string& requester, const std::string& text, std::size_t limit) {
        const SearchQuery q = search_query(text);
        return call([&](Store& s, Completion d) { s.search(requester, {&q, limit}, d); });
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(search("ghost", "song", 10).outcome, Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(search("alice", "song", 10).outcome, Outcome::not_connected);
    ASSERT_EQ(connect("alice", "127.0.0.1", 4001), Outcome::ok);
    // A query out of the rules is refused after the requester's checks, and changes nothing.
    EXPECT_EQ(call([&](Store& s, Completion d) { s.search("alice", {nullptr, 10}, d); }).outcome, Outcome::failed);
    EXPECT_EQ(call([&](Store& s, Completion d) { s.search("ghost", {nullptr, 10}, d); }).outcome,
              Outcome::no_such_user);
    EXPECT_TRUE(entries(search("alice", "song", 10)).empty());
    connected("bob", 35911);
    ASSERT_EQ(publish("bob", "/music/Song_2.ogg", "live at home"), Outcome::ok);
    ASSERT_EQ(publish("bob", "/docs/songbook.pdf", "chords"), Outcome::ok);
    ASSERT_EQ(publish("alice", "/song/notes.txt", "mine"), Outcome::ok);  // "song" in a directory only
    const std::string songbook = "bob 127.0.0.1 35911 /docs/songbook.pdf (chords)";
    const std::string song2 = "bob 127.0.0.1 35911 /music/Song_2.ogg (live at home)";
    const std::string notes = "alice 127.0.0.1 4001 /song/notes.txt (mine)";
    // File-name matches first, newest first; then the rest (the requester's own included).
    EXPECT_EQ(entries(search("alice", "song", 10)), (V{songbook, song2, notes}));
    EXPECT_EQ(entries(search("alice", "song", 2)), (V{songbook, song2}));
    EXPECT_EQ(entries(search("alice", "song -chords", 10)), (V{song2, notes}));
    EXPECT_EQ(entries(search("alice", "HOME", 10)), (V{song2}));  // a description token
    EXPECT_EQ(entries(search("alice", "so 2", 10)), (V{song2}));
    // DISCONNECT hides bob's hits; CONNECT shows them again, as old as they were.
    ASSERT_EQ(disconnect("bob"), Outcome::ok);
    EXPECT_EQ(entries(search("alice", "song", 10)), (V{notes}));
    ASSERT_EQ(connect("bob", "127.0.0.2", 35912), Outcome::ok);
    const std::string songbook2 = "bob 127.0.0.2 35912 /docs/songbook.pdf (chords)";
    const std::string song22 = "bob 127.0.0.2 35912 /music/Song_2.ogg (live at home)";
    EXPECT_EQ(entries(search("alice", "song", 10)), (V{songbook2, song22, notes}));
    // DELETE and UNREGISTER take hits away; a new PUBLISH of the same path is the newest.
    ASSERT_EQ(remove("bob", "/music/Song_2.ogg"), Outcome::ok);
    EXPECT_EQ(entries(search("alice", "song", 10)), (V{songbook2, notes}));
    ASSERT_EQ(publish("bob", "/music/Song_2.ogg", "again"), Outcome::ok);
    EXPECT_EQ(entries(search("alice", "song", 10)),
              (V{"bob 127.0.0.2 35912 /music/Song_2.ogg (again)", songbook2, notes}));
    ASSERT_EQ(unregister_user("bob"), Outcome::ok);
    EXPECT_EQ(entries(search("alice", "song", 10)), (V{notes}));
    // A search changes nothing.
    EXPECT_EQ(counts().publications, 1u);
}

// Size and content id (a peerdex/2 PUBLISH, peerdex-protocol(7), SESSIONS) are kept per
// publication and given back by LIST_CONTENT and SEARCH; a publication made without them
// has neither.
const char* const kId = "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827";
const char* const kOtherId = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

ContentMeta meta_of(const std::string& size, const std::string& id = "")
{
    ContentMeta m;
    EXPECT_TRUE(parse_content_meta(size, id, m)) << size << " " << id;
    return m;
}

TEST_P(StoreSuite, SizeAndContentIdComeBackInListsAndSearch)
{
    using V = std::vector<std::string>;
    connected("alice", 4001);
    connected("bob", 35911);
    ASSERT_EQ(publish("bob", "/music/Song.ogg", "live", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("bob", "/docs/songbook.pdf", "chords", meta_of("0")), Outcome::ok);  // a size alone
    ASSERT_EQ(publish("bob", "/old/song.txt", ""), Outcome::ok);                          // neither
    ASSERT_EQ(publish("bob", "/big.iso", "", meta_of("9223372036854775807", kOtherId)), Outcome::ok);
    const std::string song = std::string("/music/Song.ogg (live) [5 ") + kId + "]";
    const std::string book = "/docs/songbook.pdf (chords) [0]";
    const std::string big = std::string("/big.iso [9223372036854775807 ") + kOtherId + "]";
    EXPECT_EQ(entries(list_content("alice", "bob")), (V{song, book, "/old/song.txt", big}));
    const SearchQuery q = search_query("song");
    const auto search = [&] { return entries(call([&](Store& st, Completion d) { st.search("alice", {&q, 10}, d); })); };
    const std::string at = "bob 127.0.0.1 35911 ";
    EXPECT_EQ(search(), (V{at + "/old/song.txt ()", at + book, at + song}));
    // A path already published keeps what it had; published again after DELETE, what it has now.
    EXPECT_EQ(publish("bob", "/music/Song.ogg", "live", meta_of("6", kOtherId)), Outcome::already_published);
    EXPECT_EQ(publish("bob", "/old/song.txt", "", meta_of("7")), Outcome::already_published);
    EXPECT_EQ(entries(list_content("alice", "bob")), (V{song, book, "/old/song.txt", big}));
    ASSERT_EQ(remove("bob", "/music/Song.ogg"), Outcome::ok);
    ASSERT_EQ(publish("bob", "/music/Song.ogg", "live"), Outcome::ok);
    ASSERT_EQ(remove("bob", "/old/song.txt"), Outcome::ok);
    ASSERT_EQ(publish("bob", "/old/song.txt", "", meta_of("7", kId)), Outcome::ok);
    const std::string song_now = "/music/Song.ogg (live)", old_now = std::string("/old/song.txt [7 ") + kId + "]";
    EXPECT_EQ(entries(list_content("alice", "bob")), (V{book, big, song_now, old_now}));
    EXPECT_EQ(search(), (V{at + "/old/song.txt () [7 " + kId + "]", at + song_now, at + book}));
}

// SOURCES (peerdex-protocol(7), SOURCES): the connected users' publications of one id,
// newest first, up to the limit; the requester's checks first, then the request's.
TEST_P(StoreSuite, SourcesOfAnIdCodesOrderAndConnectedOwnersOnly)
{
    using V = std::vector<std::string>;
    Digest id, other;
    ASSERT_TRUE(parse_content_id(kId, id));
    ASSERT_TRUE(parse_content_id(kOtherId, other));
    const auto sources = [&](const std::string& requester, const Digest* which, std::size_t limit) {
        return call([&](Store& s, Completion d) { s.sources(requester, {which, limit}, d); });
    };
    EXPECT_EQ(sources("ghost", &id, 10).outcome, Outcome::no_such_user);
    EXPECT_EQ(sources("ghost", nullptr, 10).outcome, Outcome::no_such_user);
    ASSERT_EQ(register_user("alice"), Outcome::ok);
    EXPECT_EQ(sources("alice", &id, 10).outcome, Outcome::not_connected);
    EXPECT_EQ(sources("alice", nullptr, 10).outcome, Outcome::not_connected);
    ASSERT_EQ(connect("alice", "127.0.0.1", 4001), Outcome::ok);
    // An id or limit out of the rules is refused after the requester's checks.
    EXPECT_EQ(sources("alice", nullptr, 10).outcome, Outcome::failed);
    EXPECT_EQ(sources("alice", &id, 0).outcome, Outcome::failed);
    EXPECT_TRUE(entries(sources("alice", &id, 10)).empty());  // an id nobody published
    connected("bob", 35911);
    connected("carol", 35912);
    connected("dave", 35913);
    ASSERT_EQ(publish("bob", "/music/Song.ogg", "live", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("carol", "/a/song.ogg", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("dave", "/d/song.ogg", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("carol", "/other.iso", "", meta_of("9", kOtherId)), Outcome::ok);
    ASSERT_EQ(publish("bob", "/old/song.ogg", "song", meta_of("5")), Outcome::ok);  // a size, no id
    ASSERT_EQ(publish("bob", "/copy/Song.ogg", "", meta_of("5", kId)), Outcome::ok);  // twice, two paths
    ASSERT_EQ(publish("alice", "/mine.ogg", "", meta_of("5", kId)), Outcome::ok);    // the requester's own
    ASSERT_EQ(disconnect("dave"), Outcome::ok);
    const std::string bob1 = "bob 127.0.0.1 35911 /music/Song.ogg 5", bob2 = "bob 127.0.0.1 35911 /copy/Song.ogg 5";
    const std::string carol = "carol 127.0.0.1 35912 /a/song.ogg 5", mine = "alice 127.0.0.1 4001 /mine.ogg 5";
    EXPECT_EQ(entries(sources("alice", &id, 10)), (V{mine, bob2, carol, bob1}));
    EXPECT_EQ(entries(sources("alice", &id, 2)), (V{mine, bob2}));
    EXPECT_EQ(entries(sources("alice", &id, 3), 1), (V{mine, bob2, carol}));  // streamed one by one
    EXPECT_EQ(entries(sources("alice", &other, 10)), (V{"carol 127.0.0.1 35912 /other.iso 9"}));
    // CONNECT shows dave's again, as old as it was, at the new endpoint.
    ASSERT_EQ(connect("dave", "127.0.0.2", 4444), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &id, 10)), (V{mine, bob2, "dave 127.0.0.2 4444 /d/song.ogg 5", carol, bob1}));
    // DELETE and UNREGISTER take sources away; published again, a path is the newest.
    ASSERT_EQ(remove("bob", "/music/Song.ogg"), Outcome::ok);
    ASSERT_EQ(unregister_user("dave"), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &id, 10)), (V{mine, bob2, carol}));
    ASSERT_EQ(remove("carol", "/a/song.ogg"), Outcome::ok);
    ASSERT_EQ(publish("carol", "/a/song.ogg", "", meta_of("5", kId)), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &id, 10)), (V{carol, mine, bob2}));
    ASSERT_EQ(unregister_user("carol"), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &other, 10)), V{});
    ASSERT_EQ(remove("alice", "/mine.ogg"), Outcome::ok);
    ASSERT_EQ(remove("bob", "/copy/Song.ogg"), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &id, 10)), V{});
    // The same path published again without an id is no source.
    ASSERT_EQ(publish("bob", "/copy/Song.ogg", "", meta_of("5")), Outcome::ok);
    EXPECT_EQ(entries(sources("alice", &id, 10)), V{});
    // SOURCES changes nothing.
    EXPECT_EQ(counts().publications, 2u);
}

// A list longer than one chunk of any store (the shared store's snapshot path) carries them too.
TEST_P(StoreSuite, SizeAndContentIdInALongList)
{
    connected("alice");
    const int n = 300;
    std::vector<std::string> expected;
    for (int i = 0; i < n; ++i) {
        const std::string path = "/f" + std::to_string(i);
        const ContentMeta m = i % 3 == 0 ? kUnknownContent : i % 3 == 1 ? meta_of(std::to_string(i)) : meta_of(std::to_string(i), kId);
        ASSERT_EQ(publish("alice", path, "d", m), Outcome::ok);
        expected.push_back(path + " (d)" + Collect::text(m));
    }
    EXPECT_EQ(entries(list_content("alice", "alice"), 7), expected);
}

// The model test: random PUBLISH, DELETE, UNREGISTER, REGISTER, CONNECT and DISCONNECT, and
// after each step a random query whose answer must equal a brute-force scan of a model of
// the registry, in the order of the rules.
TEST_P(StoreSuite, SearchEqualsABruteForceScan)
{
    struct Pub {
        std::string path, description;
        std::uint64_t age;
    };
    struct ModelUser {
        bool connected = false;
        std::uint16_t port = 0;
        std::vector<Pub> pubs;
    };
    std::map<std::string, ModelUser> model;
    std::uint64_t clock = 0;
    std::uint32_t seed = 12345;
    const auto below = [&](std::uint32_t n) {
        seed = seed * 1103515245u + 12345u;
        return (seed >> 8) % n;
    };
    const char* words[] = {"song", "Songbook", "so", "live", "home", "mp3", "ogg", "2", "22", "caf\xc3\xa9", "x"};
    const auto word = [&] { return std::string(words[below(std::size(words))]); };
    connected("observer", 1);
    model["observer"].connected = true;
    model["observer"].port = 1;
    const int steps = GetParam() == "sqlite" ? 1000 : 4000;
    for (int step = 0; step < steps; ++step) {
        const std::string user = "u" + std::to_string(below(6));
        ModelUser* m = model.count(user) ? &model[user] : nullptr;
        const std::uint32_t kind = below(10);
        switch (kind) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4:
            lifecycle_step(model, user, kind, below);
            ASSERT_FALSE(HasFatalFailure());
            break;
        default:
            if (m && m->connected) {
                const std::string path = "/" + word() + (below(2) ? "/" : "_") + word() + "." + word();
                const std::string description = below(2) ? word() + " " + word() : "";
                const bool taken = std::any_of(m->pubs.begin(), m->pubs.end(), [&](const Pub& p) { return p.path == path; });
                ASSERT_EQ(publish(user, path, description), taken ? Outcome::already_published : Outcome::ok);
                if (!taken)
                    m->pubs.push_back({path, description, ++clock});
            }
        }
        std::string text = word();
        for (std::uint32_t extra = below(3); extra > 0; --extra)
            text += (below(3) == 0 ? " -" : " ") + word().substr(0, 1 + below(3));
        SearchQuery q;
        if (parse_query(text, q) != QueryFault::none)
            continue;
        const std::size_t limit = 1 + below(12);
        // The brute force: every publication of a connected user, in the rules' order.
        struct Hit {
            bool name;
            std::uint64_t age;
            std::string text;
        };
        std::vector<Hit> all;
        for (const auto& [name, u] : model) {
            if (!u.connected)
                continue;
            for (const Pub& p : u.pubs) {
                const Match how = match(q, p.path, p.description);
                if (how != Match::none)
                    all.push_back({how == Match::name, p.age,
                                   name + " 127.0.0.1 " + std::to_string(u.port) + " " + p.path + " (" +
                                       p.description + ")"});
            }
        }
        std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
            return a.name != b.name ? a.name : a.age > b.age;
        });
        std::vector<std::string> expected;
        for (std::size_t i = 0; i < all.size() && i < limit; ++i)
            expected.push_back(all[i].text);
        StoreReply reply = call([&](Store& s, Completion d) { s.search("observer", {&q, limit}, d); });
        ASSERT_EQ(entries(std::move(reply)), expected) << "query '" << text << "', step " << step;
    }
}

// SOURCES's model test: random PUBLISH (with one of three ids, or none), DELETE, UNREGISTER,
// REGISTER, CONNECT and DISCONNECT, and after each step the sources of a random id must be
// the model's connected publications of it, newest first, cut at a random limit.
TEST_P(StoreSuite, SourcesEqualABruteForceScan)
{
    struct Pub {
        std::string path;
        int id;  // index in ids, -1: none
        std::uint64_t age;
    };
    struct ModelUser {
        bool connected = false;
        std::uint16_t port = 0;
        std::vector<Pub> pubs;
    };
    const char* const texts[] = {kId, kOtherId, "sha256:0000000000000000000000000000000000000000000000000000000000000001"};
    Digest ids[3];
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(parse_content_id(texts[i], ids[i]));
    std::map<std::string, ModelUser> model;
    std::uint64_t clock = 0;
    std::uint32_t seed = 54321;
    const auto below = [&](std::uint32_t n) {
        seed = seed * 1103515245u + 12345u;
        return (seed >> 8) % n;
    };
    connected("observer", 1);
    model["observer"].connected = true;
    model["observer"].port = 1;
    const int steps = GetParam() == "sqlite" ? 800 : 3000;
    for (int step = 0; step < steps; ++step) {
        const std::string user = "u" + std::to_string(below(5));
        ModelUser* m = model.count(user) ? &model[user] : nullptr;
        const std::uint32_t kind = below(10);
        switch (kind) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4:
            lifecycle_step(model, user, kind, below);
            ASSERT_FALSE(HasFatalFailure());
            break;
        default:
            if (m && m->connected) {
                const std::string path = "/f" + std::to_string(below(8));
                const int id = static_cast<int>(below(4)) - 1;
                const bool taken = std::any_of(m->pubs.begin(), m->pubs.end(), [&](const Pub& p) { return p.path == path; });
                const ContentMeta meta = id < 0 ? meta_of("3") : meta_of("3", texts[id]);
                ASSERT_EQ(publish(user, path, "", meta), taken ? Outcome::already_published : Outcome::ok);
                if (!taken)
                    m->pubs.push_back({path, id, ++clock});
            }
        }
        const int id = static_cast<int>(below(3));
        const std::size_t limit = 1 + below(12);
        std::vector<std::pair<std::uint64_t, std::string>> all;
        for (const auto& [name, u] : model)
            for (const Pub& p : u.pubs)
                if (u.connected && p.id == id)
                    all.push_back({p.age, name + " 127.0.0.1 " + std::to_string(u.port) + " " + p.path + " 3"});
        std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        std::vector<std::string> expected;
        for (std::size_t i = 0; i < all.size() && i < limit; ++i)
            expected.push_back(all[i].second);
        StoreReply reply = call([&](Store& s, Completion d) { s.sources("observer", {&ids[id], limit}, d); });
        ASSERT_EQ(entries(std::move(reply)), expected) << "id " << id << ", step " << step;
    }
}

// What a durable store acknowledged is there after it is closed and opened again: users,
// connections in connection order, publications in publication order, and nothing removed.
class DurableSuite : public StoreSuite {};

TEST_P(DurableSuite, KeepsWhatItAcknowledged)
{
    connected("carol", 3);
    connected("alice", 1);
    connected("bob", 2);
    ASSERT_EQ(register_user("dave"), Outcome::ok);  // registered, never connected
    for (const char* p : {"/z", "/y", "/x"})
        ASSERT_EQ(publish("alice", p, std::string("about ") + p), Outcome::ok);
    ASSERT_EQ(remove("alice", "/y"), Outcome::ok);
    ASSERT_EQ(publish("alice", "/y"), Outcome::ok);
    ASSERT_EQ(publish("bob", "/b"), Outcome::ok);
    ASSERT_EQ(disconnect("bob"), Outcome::ok);  // offline, publications kept
    ASSERT_EQ(disconnect("carol"), Outcome::ok);
    ASSERT_EQ(connect("carol", "10.0.0.3", 33), Outcome::ok);  // now last
    connected("eve");
    ASSERT_EQ(unregister_user("eve"), Outcome::ok);
    reopen();
    EXPECT_EQ(counts().users, 4u);
    EXPECT_EQ(counts().publications, 4u);
    EXPECT_EQ(entries(list_users("alice")),
              (std::vector<std::string>{"alice 127.0.0.1 1", "carol 10.0.0.3 33"}));
    EXPECT_EQ(entries(list_content("alice", "alice")),
              (std::vector<std::string>{"/z (about /z)", "/x (about /x)", "/y"}));
    EXPECT_EQ(entries(list_content("alice", "bob")), std::vector<std::string>{"/b"});
    EXPECT_EQ(register_user("dave"), Outcome::name_in_use);
    EXPECT_EQ(register_user("eve"), Outcome::ok);
    EXPECT_EQ(get_user_info("alice", "bob").outcome, Outcome::target_offline);
    // The search index is built on load, newest publication first; bob is offline.
    const SearchQuery about = search_query("about");
    EXPECT_EQ(entries(call([&](Store& s, Completion d) { s.search("alice", {&about, 10}, d); })),
              (std::vector<std::string>{"alice 127.0.0.1 1 /x (about /x)", "alice 127.0.0.1 1 /z (about /z)"}));
    // And the next connection goes after the ones restored.
    ASSERT_EQ(connect("bob", "127.0.0.2", 22), Outcome::ok);
    // An expiry is stored like a DISCONNECT.
    const Address carol_ip = test::ipv4("10.0.0.3");
    ASSERT_EQ(call([&](Store& s, Completion d) { s.expire("carol", carol_ip, 33, d); }).outcome, Outcome::ok);
    reopen();
    EXPECT_EQ(entries(list_users("alice")),
              (std::vector<std::string>{"alice 127.0.0.1 1", "bob 127.0.0.2 22"}));
    EXPECT_EQ(get_user_info("alice", "carol").outcome, Outcome::target_offline);
}

TEST_P(DurableSuite, KeepsSizesAndContentIds)
{
    connected("alice", 1);
    ASSERT_EQ(publish("alice", "/a", "x", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("alice", "/b", "x"), Outcome::ok);
    ASSERT_EQ(publish("alice", "/c", "x", meta_of("9223372036854775807")), Outcome::ok);
    reopen();
    const std::vector<std::string> expected = {std::string("/a (x) [5 ") + kId + "]", "/b (x)",
                                               "/c (x) [9223372036854775807]"};
    EXPECT_EQ(entries(list_content("alice", "alice")), expected);
    const SearchQuery x = search_query("x");
    EXPECT_EQ(entries(call([&](Store& s, Completion d) { s.search("alice", {&x, 10}, d); })),
              (std::vector<std::string>{"alice 127.0.0.1 1 /c (x) [9223372036854775807]", "alice 127.0.0.1 1 /b (x)",
                                        std::string("alice 127.0.0.1 1 /a (x) [5 ") + kId + "]"}));
}

// SOURCES after a restart: the index by id is rebuilt from what was stored, in publication
// order (the newest first), without what was deleted.
TEST_P(DurableSuite, KeepsSourcesInOrder)
{
    connected("alice", 1);
    connected("bob", 2);
    ASSERT_EQ(publish("alice", "/a", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("bob", "/b", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("alice", "/c", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(publish("bob", "/d", "", meta_of("5", kId)), Outcome::ok);
    ASSERT_EQ(remove("bob", "/d"), Outcome::ok);
    reopen();
    Digest id;
    ASSERT_TRUE(parse_content_id(kId, id));
    EXPECT_EQ(entries(call([&](Store& s, Completion d) { s.sources("alice", {&id, 10}, d); })),
              (std::vector<std::string>{"alice 127.0.0.1 1 /c 5", "bob 127.0.0.1 2 /b 5", "alice 127.0.0.1 1 /a 5"}));
}

#ifdef PEERDEX_HAVE_SQLITE
// A file of schema version 2 (before sizes and ids), written as that tracker wrote it, is
// migrated in place at start: its publications kept, unknown; new ones keep theirs.
TEST_P(DurableSuite, MigratesAVersion2File)
{
    close_store(loop_, store_);
    const std::string path = config().state;
    for (const char* suffix : {"", "-wal", "-shm"})
        std::remove((path + suffix).c_str());
    const auto sql = [&](const char* text) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        char* msg = nullptr;
        EXPECT_EQ(sqlite3_exec(db, text, nullptr, nullptr, &msg), SQLITE_OK) << (msg ? msg : "");
        sqlite3_free(msg);
        sqlite3_close(db);
    };
    sql("PRAGMA journal_mode=WAL;"
        "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, ip TEXT, port INTEGER, connected INTEGER, owner TEXT,"
        " key BLOB) WITHOUT ROWID;"
        "CREATE TABLE publications (seq INTEGER PRIMARY KEY, user TEXT NOT NULL, path TEXT NOT NULL,"
        " description TEXT NOT NULL, UNIQUE (user, path));"
        "INSERT INTO users VALUES('alice', '127.0.0.1', 1, 1, '127.0.0.1', NULL),"
        " ('bob', NULL, NULL, NULL, '127.0.0.1', NULL);"
        "INSERT INTO publications(user, path, description) VALUES('bob', '/old', 'kept'), ('alice', '/mine', '');"
        "PRAGMA application_id=1346656305; PRAGMA user_version=2;");
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    std::string error;
    store_ = make_store(&loop_, config(), error);
    ASSERT_TRUE(store_) << error;
    EXPECT_EQ(entries(list_content("alice", "bob")), std::vector<std::string>{"/old (kept)"});
    ASSERT_EQ(publish("alice", "/new", "", meta_of("5", kId)), Outcome::ok);
    reopen();
    EXPECT_EQ(entries(list_content("alice", "alice")),
              (std::vector<std::string>{"/mine", std::string("/new [5 ") + kId + "]"}));
    close_store(loop_, store_);
    // What the file holds now: version 3, NULL for what is unknown.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT (SELECT user_version FROM pragma_user_version), path, ifnull(size, 'NULL'),"
                                 " ifnull(content_id, 'NULL') FROM publications ORDER BY seq",
                                 -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    std::vector<std::string> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
        std::string row;
        for (int i = 0; i < 4; ++i)
            row += std::string(i ? " " : "") + reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        rows.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    EXPECT_EQ(rows, (std::vector<std::string>{"3 /old NULL NULL", "3 /mine NULL NULL", std::string("3 /new 5 ") + kId}));
}
#endif

const std::vector<std::string> kStores = {
    "memory",
    "delayed",
#ifdef PEERDEX_HAVE_SQLITE
    "sqlite",
#endif
#ifdef PEERDEX_HAVE_REDIS
    "redis",
#endif
};

const std::vector<std::string> kDurableStores = {
#ifdef PEERDEX_HAVE_SQLITE
    "sqlite",
#endif
};

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DurableSuite);  // a build without SQLite
INSTANTIATE_TEST_SUITE_P(Durable, DurableSuite, ::testing::ValuesIn(kDurableStores),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

INSTANTIATE_TEST_SUITE_P(Stores, StoreSuite, ::testing::ValuesIn(kStores),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(StoreSelection, UnknownNameIsRefusedWithTheChoices)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    std::string error;
    EXPECT_FALSE(make_store(&loop, {"bogus", "", true}, error));
    EXPECT_NE(error.find("memory"), std::string::npos) << error;
    EXPECT_TRUE(make_store(&loop, {}, error));  // the default
    EXPECT_EQ(uv_loop_close(&loop), 0);
}

// The delayed store answers on a later turn, the requests of one turn in reverse order: the
// session layer must put answers back in request order itself.
TEST(DelayedStore, AnswersLaterAndOutOfOrder)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    std::string error;
    auto store = make_store(&loop, {"delayed", "", true}, error);
    std::vector<int> order;
    struct Ctx {
        std::vector<int>* order;
        int id;
    } a{&order, 1}, b{&order, 2};
    auto note = [](void* ctx, std::uint64_t, StoreReply&&) {
        auto* c = static_cast<Ctx*>(ctx);
        c->order->push_back(c->id);
    };
    store->register_user("x", Requester{}, Completion(note, &a, 0));
    store->register_user("y", Requester{}, Completion(note, &b, 0));
    EXPECT_TRUE(order.empty()) << "answered before the call returned";
    uv_run(&loop, UV_RUN_NOWAIT);
    EXPECT_EQ(order, (std::vector<int>{2, 1}));
    close_store(loop, store);
}

}  // namespace
}  // namespace peerdex

#ifdef PEERDEX_HAVE_REDIS
namespace peerdex {
namespace {

TEST(RedisTarget, ParsesEveryForm)
{
    RedisTarget t;
    std::string error;
    ASSERT_TRUE(parse_redis_target("redis://127.0.0.1", t, error)) << error;
    EXPECT_EQ(t.host, "127.0.0.1");
    EXPECT_EQ(t.port, 6379);
    EXPECT_EQ(t.db, 0);
    ASSERT_TRUE(parse_redis_target("redis://cache.example:7000/3", t, error)) << error;
    EXPECT_EQ(t.host, "cache.example");
    EXPECT_EQ(t.port, 7000);
    EXPECT_EQ(t.db, 3);
    ASSERT_TRUE(parse_redis_target("redis://[::1]:6380", t, error)) << error;
    EXPECT_EQ(t.host, "::1");
    EXPECT_EQ(t.port, 6380);
    ASSERT_TRUE(parse_redis_target("unix:/run/redis/redis.sock", t, error)) << error;
    EXPECT_EQ(t.unix_path, "/run/redis/redis.sock");
    EXPECT_TRUE(t.host.empty());
    EXPECT_TRUE(is_redis_target("redis://x"));
    EXPECT_TRUE(is_redis_target("unix:/x"));
    EXPECT_FALSE(is_redis_target("memory"));
}

TEST(RedisTarget, RefusesWhatItCannotReach)
{
    RedisTarget t;
    for (const char* bad : {"redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:x",
                            "redis://h/db", "redis://[::1", "redis://[::1]x", "unix:", "unix:relative.sock",
                            "http://h", "h:6379"}) {
        std::string error;
        EXPECT_FALSE(parse_redis_target(bad, t, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

}  // namespace
}  // namespace peerdex
#endif
