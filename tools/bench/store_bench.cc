// peerdex-store-bench: the tracker's store in process, without sockets (docs/PERFORMANCE.md,
// "Durable state"). N virtual users live the load generator's user life (REGISTER, CONNECT,
// two PUBLISH, LIST_CONTENT, LIST_USERS, DISCONNECT, UNREGISTER) against the store that
// the same options would give the tracker, in lock-step rounds: each round asks one step
// of every user, then turns the loop until all of them are answered. With --state a round
// is then one batch, larger than the tracker's own under N clients (there, requests also
// join while a commit is under way), so the figure is a lower bound of what the durable
// store costs. It prints the process's CPU time per operation (the loop and the thread
// pool together, from its own accounting) and operations per second, so that what the
// store costs can be told apart from what the sockets cost.
#include <sys/resource.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "store.hh"

namespace {

using namespace peerdex;

double cpu_seconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

constexpr int kSteps = 8;  // one user's life

struct Bench {
    std::unique_ptr<Store> store;
    std::size_t waiting = 0;
    std::size_t failed = 0;

    static void answered(void* ctx, std::uint64_t token, StoreReply&& reply)
    {
        auto* b = static_cast<Bench*>(ctx);
        --b->waiting;
        // Every step of the life succeeds; the lists' streams are dropped unread.
        if (reply.outcome != Outcome::ok) {
            if (b->failed++ == 0)
                std::fprintf(stderr, "peerdex-store-bench: step %d of a life failed\n", static_cast<int>(token));
        }
    }

    void step(const std::string& user, int s)
    {
        const Completion done(answered, this, static_cast<std::uint64_t>(s));
        const Requester by{};
        ++waiting;
        switch (s) {
        case 0: store->register_user(user, by, done); break;
        case 1: store->connect(user, by, 4000, done); break;
        case 2: store->publish(user, by, "/home/" + user + "/a.ogg", "first", ContentMeta{}, done); break;
        case 3: store->publish(user, by, "/home/" + user + "/b.ogg", "second", ContentMeta{}, done); break;
        case 4: store->list_content(user, user, done); break;
        case 5: store->list_users(user, done); break;
        case 6: store->disconnect(user, by, done); break;
        default: store->unregister_user(user, by, done); break;
        }
    }
};

// A count from 1 to `max`, all digits; 0 when it is not one.
std::size_t count_arg(const char* text, std::size_t max)
{
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *text == '-' || v == 0 || v > max)
        return 0;
    return static_cast<std::size_t>(v);
}

int usage(FILE* to = stderr, int status = 2)
{
    std::fprintf(to,
                 "usage: peerdex-store-bench [--state FILE [--sync full|normal]] [--users N] [--rounds R]\n"
                 "  N users (1-100000, default 64) live REGISTER ... UNREGISTER against the store; each\n"
                 "  round asks one step of every user and waits for every answer (1-100000000 rounds,\n"
                 "  default 40000). FILE is replaced.\n");
    return status;
}

}  // namespace

int main(int argc, char** argv)
{
    StoreConfig config;
    std::size_t users = 64, rounds = 40000;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help")
            return usage(stdout, 0);
        if (i + 1 >= argc)
            return usage();
        if (a == "--state") {
            config.state = argv[++i];
        } else if (a == "--sync") {
            const std::string v = argv[++i];
            if (v != "full" && v != "normal")
                return usage();
            config.sync_full = v == "full";
        } else if (a == "--users") {
            if ((users = count_arg(argv[++i], 100000)) == 0)
                return usage();
        } else if (a == "--rounds") {
            if ((rounds = count_arg(argv[++i], 100000000)) == 0)
                return usage();
        } else {
            return usage();
        }
    }
    if (!config.state.empty())
        for (const char* suffix : {"", "-wal", "-shm"})
            std::remove((config.state + suffix).c_str());
    uv_loop_t loop;
    uv_loop_init(&loop);
    Bench b;
    std::string error;
    b.store = make_store(&loop, config, error);
    if (!b.store) {
        std::fprintf(stderr, "peerdex-store-bench: %s\n", error.c_str());
        return 1;
    }
    std::vector<std::string> names;
    for (std::size_t u = 0; u < users; ++u)
        names.push_back("bench" + std::to_string(u));
    const double cpu0 = cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    std::size_t ops = 0;
    for (std::size_t r = 0; r < rounds; ++r) {
        // The users are spread over the life, as closed-loop clients soon are: user u
        // begins its first life at round u % 8.
        for (std::size_t u = 0; u < users; ++u)
            if (r >= u % kSteps) {
                b.step(names[u], static_cast<int>((r - u % kSteps) % kSteps));
                ++ops;
            }
        while (b.waiting > 0)
            uv_run(&loop, UV_RUN_ONCE);
    }
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    bool closed = false;
    b.store->close([](void* ctx) { *static_cast<bool*>(ctx) = true; }, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    b.store.reset();
    uv_loop_close(&loop);
    std::printf("store=%s sync=%s users=%zu ops=%zu ops_per_s=%.0f cpu_per_op_us=%.3f failed=%zu\n",
                config.state.empty() ? "memory" : "sqlite", config.state.empty() ? "-" : config.sync_full ? "full" : "normal", users, ops,
                static_cast<double>(ops) / wall, cpu / static_cast<double>(ops) * 1e6, b.failed);
    return b.failed == 0 && closed ? 0 : 1;
}
